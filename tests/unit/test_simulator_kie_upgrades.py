"""kie's simulator: the lite tier's limits, get-1080p-video and get-4k-video (providers.md §2.2,
§2.5-2.7), driven in-process on a clock the test moves."""

from __future__ import annotations

from typing import Any

import pytest

from offline.simulator import iter_mp4, resolution_of
from tests.simulator_harness import DELAY, ORIGIN, Harness, harness_for

PROCESSING_1080P = (
    "1080P is processing. It should be ready in 1-2 minutes. Please check back shortly."
)
PROCESSING_4K = "4k is processing. It should be ready in 5-10 minutes. Please check back shortly."
CALLBACK_URL = "https://relay.example/v1/callbacks/kie/token"


@pytest.fixture
def kie(monkeypatch: pytest.MonkeyPatch) -> Harness:
    return harness_for("kie", monkeypatch)


def generate(kie: Harness, prompt: str = "a fox", **fields: Any) -> str:
    answer = kie.call("POST", "/api/v1/veo/generate", {"prompt": prompt, **fields})
    assert answer["code"] == 200, answer
    return str(answer["data"]["taskId"])


def finished(kie: Harness, prompt: str = "a fox", **fields: Any) -> str:
    task_id = generate(kie, prompt, **fields)
    kie.clock.advance(DELAY)
    return task_id


def record(kie: Harness, task_id: str) -> dict[str, Any]:
    answer = kie.call("GET", "/api/v1/veo/record-info", taskId=task_id)
    assert answer["code"] == 200, answer
    return answer["data"]  # type: ignore[no-any-return]


def get_1080p(kie: Harness, task_id: str, **query: str) -> dict[str, Any]:
    response = kie.respond("GET", "/api/v1/veo/get-1080p-video", taskId=task_id, **query)
    assert response.status == 200  # kie's answers are all HTTP 200
    return response.body


def get_4k(kie: Harness, task_id: str, **fields: Any) -> dict[str, Any]:
    response = kie.respond("POST", "/api/v1/veo/get-4k-video", {"taskId": task_id, **fields})
    assert response.status == 200
    return response.body


def extend(kie: Harness, task_id: str) -> dict[str, Any]:
    return kie.call("POST", "/api/v1/veo/extend", {"taskId": task_id, "prompt": "on"})


def resolution_served(kie: Harness, task_id: str) -> str:
    video = kie.simulator.task(task_id).video
    return resolution_of(next(iter_mp4(video.size, video.seed, resolution=video.resolution)))


# --- the lite tier -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"generationType": "REFERENCE_2_VIDEO", "imageUrls": ["https://img.example/a.png"]},
            "REFERENCE_2_VIDEO supports only veo3_fast and 16:9",
        ),
        ({"resolution": "4k"}, "veo3_lite has no 4k resolution"),
    ],
)
def test_lite_refuses_reference_images_and_4k_at_generation(
    kie: Harness, fields: dict[str, Any], message: str
):
    # Given a lite generation asking for what lite does not have
    body = {"prompt": "a fox", "model": "veo3_lite", **fields}

    # When it is submitted
    response = kie.respond("POST", "/api/v1/veo/generate", body)

    # Then kie's HTTP 200 carries a 422 that says why, and nothing is created
    assert (response.status, response.body) == (200, {"code": 422, "msg": message, "data": None})
    assert kie.simulator.tasks() == []


def test_lite_generates_at_720p_and_1080p(kie: Harness):
    # Given lite generations at the default resolution and at 1080p / When they finish
    default_id = finished(kie, model="veo3_lite")
    hd_id = finished(kie, model="veo3_lite", resolution="1080p")

    # Then each is a video of its resolution
    assert record(kie, default_id)["response"]["resolution"] == "720p"
    assert record(kie, hd_id)["response"]["resolution"] == "1080p"
    assert resolution_served(kie, hd_id) == "1080p"


def test_a_lite_video_cannot_be_extended(kie: Harness):
    # Given a finished lite video / When it is extended
    answer = extend(kie, finished(kie, model="veo3_lite"))

    # Then refused with a 422 saying so
    assert answer == {"code": 422, "msg": "veo3_lite videos cannot be extended", "data": None}


# --- get-1080p-video -----------------------------------------------------------------------------


def test_1080p_is_processing_until_the_upgrade_delay_has_passed_then_ready(kie: Harness):
    # Given a finished 720p video
    task_id = finished(kie)

    # When its 1080p is asked for at once, just before the delay, and after it
    first = get_1080p(kie, task_id, index="0")
    kie.clock.advance(DELAY - 0.1)
    before = get_1080p(kie, task_id)
    kie.clock.advance(0.1)
    ready = get_1080p(kie, task_id)

    # Then it is kie's non-200 body code while processing, then the resultUrl (singular)
    assert first == before == {"code": 400, "msg": PROCESSING_1080P, "data": None}
    upgrade = kie.simulator.upgrade_task(task_id, "1080p")
    assert ready == {
        "code": 200,
        "msg": "success",
        "data": {"resultUrl": f"{ORIGIN}/files/1080p/{upgrade.task_id}.mp4"},
    }
    assert resolution_served(kie, upgrade.task_id) == "1080p"

    # And each call is counted on the original, whose own record stays 720p
    original = kie.simulator.task(task_id)
    assert original.requests_1080p == 3
    assert [request.response_code for request in original.upgrade_requests] == [400, 400, 200]
    assert original.task_id_1080p == upgrade.task_id and upgrade.parent_task_id == task_id
    assert record(kie, task_id)["response"]["resolution"] == "720p"
    assert resolution_served(kie, task_id) == "720p"


def test_1080p_takes_the_delay_tag_of_the_original(kie: Harness):
    # Given a finished video tagged with a 5 s delay, whose 1080p has been asked for
    task_id = finished(kie, "a fox [sim:delay=5]")
    kie.clock.advance(5)
    get_1080p(kie, task_id)

    # When asked again after the default delay, and after 5 s
    kie.clock.advance(DELAY)
    early = get_1080p(kie, task_id)
    kie.clock.advance(5 - DELAY)
    late = get_1080p(kie, task_id)

    # Then it is ready only after 5 s
    assert (early["code"], late["code"]) == (400, 200)


@pytest.mark.parametrize(
    ("task_id", "index", "message"),
    [
        ("veo_task_missing", "0", "record is null"),
        (None, "0", "record status is not success"),
        (None, "1", "index must be 0: a task has one video"),
        ("", "0", "taskId is required"),
    ],
)
def test_1080p_needs_a_known_succeeded_task(
    kie: Harness, task_id: str | None, index: str, message: str
):
    # Given a task still rendering (used when no other id is given)
    running_id = generate(kie)

    # When its 1080p, or that of another id, is asked for
    answer = get_1080p(kie, running_id if task_id is None else task_id, index=index)

    # Then refused with a 422, and no upgrade started
    assert answer == {"code": 422, "msg": message, "data": None}
    assert [task.kind for task in kie.simulator.tasks()] == ["generate"]


def test_a_video_served_in_1080p_cannot_be_extended_but_one_still_upgrading_can(kie: Harness):
    # Given a video whose 1080p was served, and one whose 1080p is still processing
    served_id, processing_id = finished(kie), finished(kie)
    get_1080p(kie, served_id)
    kie.clock.advance(DELAY)
    get_1080p(kie, served_id)
    get_1080p(kie, processing_id)

    # When both are extended
    refused, accepted = extend(kie, served_id), extend(kie, processing_id)

    # Then only the upgraded one is refused
    assert refused == {
        "code": 422,
        "msg": "a video upgraded to 1080p cannot be extended",
        "data": None,
    }
    assert accepted["code"] == 200


def test_upgrade_never_keeps_1080p_processing(kie: Harness):
    # Given a finished video tagged [sim:upgrade-never], whose 1080p was asked for
    task_id = finished(kie, "a fox [sim:upgrade-never]")
    get_1080p(kie, task_id)

    # When asked again a day later
    kie.clock.advance(24 * 3600)
    answer = get_1080p(kie, task_id)

    # Then it is still processing
    assert answer == {"code": 400, "msg": PROCESSING_1080P, "data": None}


# --- get-4k-video --------------------------------------------------------------------------------


def test_the_first_4k_request_starts_a_4k_task_that_record_info_reports(kie: Harness):
    # Given a finished video
    task_id = finished(kie)

    # When its 4K is asked for
    answer = get_4k(kie, task_id, index=0, callBackUrl=CALLBACK_URL)

    # Then a new task id comes back, with no URLs yet, and record-info reports it generating
    uhd_id = answer["data"]["taskId"]
    assert answer == {
        "code": 200,
        "msg": "success",
        "data": {"taskId": uhd_id, "resultUrls": None, "imageUrls": None},
    }
    assert uhd_id != task_id
    rendering = record(kie, uhd_id)
    assert (rendering["successFlag"], rendering["response"]) == (0, None)
    assert rendering["mediaIds"] == [f"media_{uhd_id}"]

    # And once its delay has passed, record-info gives its 4K video
    kie.clock.advance(DELAY)
    done = record(kie, uhd_id)
    assert done["successFlag"] == 1
    assert done["response"]["resultUrls"] == [f"{ORIGIN}/files/4k/{uhd_id}.mp4"]
    assert done["response"]["resolution"] == "4k"
    assert resolution_served(kie, uhd_id) == "4k"
    assert record(kie, task_id)["response"]["resolution"] == "720p"


def test_repeated_4k_requests_answer_422_with_the_state_and_start_nothing_more(kie: Harness):
    # Given a finished video whose 4K was asked for
    task_id = finished(kie)
    uhd_id = get_4k(kie, task_id)["data"]["taskId"]

    # When asked again while processing and once done
    processing = get_4k(kie, task_id)
    kie.clock.advance(DELAY)
    done = get_4k(kie, task_id, callBackUrl=CALLBACK_URL)

    # Then both are body code 422: processing, then done with the URLs
    assert processing == {
        "code": 422,
        "msg": PROCESSING_4K,
        "data": {"taskId": uhd_id, "resultUrls": None, "imageUrls": None},
    }
    assert done == {
        "code": 422,
        "msg": "The video has been generated successfully",
        "data": {
            "taskId": uhd_id,
            "resultUrls": [f"{ORIGIN}/files/4k/{uhd_id}.mp4"],
            "imageUrls": [],
        },
    }

    # And there is one 4K task, each request counted on the original
    assert [task.kind for task in kie.simulator.tasks()] == ["generate", "upgrade_4k"]
    original = kie.simulator.task(task_id)
    assert (original.requests_4k, original.task_id_4k) == (3, uhd_id)
    assert [request.response_code for request in original.upgrade_requests] == [200, 422, 422]
    assert kie.simulator.upgrade_task(task_id, "4k").parent_task_id == task_id
    assert kie.scheduled == {}  # the later callBackUrl started no callback either


ORIGINAL = "the finished task's id"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"taskId": "veo_task_missing"}, "record is null"),
        ({"index": 0}, "taskId is required"),
        ({"taskId": ORIGINAL, "index": 2}, "index must be 0: a task has one video"),
        (
            {"taskId": ORIGINAL, "callBackUrl": "ftp://relay.example/cb"},
            "callBackUrl must be an http(s) URL",
        ),
    ],
)
def test_4k_refuses_bad_requests(kie: Harness, body: dict[str, Any], message: str):
    # Given a finished video
    task_id = finished(kie)

    # When a bad 4K request is sent
    if body.get("taskId") == ORIGINAL:
        body = body | {"taskId": task_id}
    answer = kie.call("POST", "/api/v1/veo/get-4k-video", body)

    # Then refused with a 422, and nothing is counted or started
    assert answer == {"code": 422, "msg": message, "data": None}
    assert kie.simulator.task(task_id).requests_4k == 0
    assert [task.kind for task in kie.simulator.tasks()] == ["generate"]


def test_4k_needs_a_succeeded_task_that_is_not_lite(kie: Harness):
    # Given a task still rendering and a finished lite video
    running_id = generate(kie, "slow [sim:delay=10]")
    lite_id = finished(kie, model="veo3_lite")

    # When their 4K is asked for
    running, lite = get_4k(kie, running_id), get_4k(kie, lite_id)

    # Then both are refused with a 422, and no 4K task exists
    assert running == {"code": 422, "msg": "record status is not success", "data": None}
    assert lite == {"code": 422, "msg": "veo3_lite videos have no 4K version", "data": None}
    assert [task.kind for task in kie.simulator.tasks()] == ["generate", "generate"]


def test_a_video_whose_4k_was_asked_for_can_still_be_extended(kie: Harness):
    # Given a finished video with a finished 4K (only 1080p is documented to forbid extending)
    task_id = finished(kie)
    get_4k(kie, task_id)
    kie.clock.advance(DELAY)

    # When it is extended / Then accepted
    assert extend(kie, task_id)["code"] == 200


def test_the_4k_callback_has_the_callbacks_page_shape_by_default(kie: Harness):
    # Given a 4K task with a callback URL
    uhd_id = get_4k(kie, finished(kie), callBackUrl=CALLBACK_URL)["data"]["taskId"]

    # When it finishes and calls back
    kie.clock.advance(DELAY)
    body = kie.deliver_callback(uhd_id)

    # Then the body is data.taskId + data.info.resultUrls/imageUrls, recorded on the 4K task
    url = f"{ORIGIN}/files/4k/{uhd_id}.mp4"
    assert body == {
        "code": 200,
        "msg": "4K Video generated successfully.",
        "data": {"taskId": uhd_id, "info": {"resultUrls": [url], "imageUrls": []}},
    }
    (attempt,) = kie.simulator.task(uhd_id).callbacks
    assert (attempt.url, attempt.status_code) == (CALLBACK_URL, 200)


def test_the_snake_tag_gives_the_4k_callback_the_openapi_schema_shape(kie: Harness):
    # Given a 4K task of a video tagged [sim:4k-callback=snake]
    task_id = finished(kie, "a fox [sim:4k-callback=snake]")
    uhd_id = get_4k(kie, task_id, callBackUrl=CALLBACK_URL)["data"]["taskId"]

    # When it finishes and calls back
    kie.clock.advance(DELAY)
    body = kie.deliver_callback(uhd_id)

    # Then the body is snake_case, with media ids
    assert body == {
        "code": 200,
        "msg": "4K Video generated successfully.",
        "data": {
            "task_id": uhd_id,
            "result_urls": [f"{ORIGIN}/files/4k/{uhd_id}.mp4"],
            "media_ids": [f"media_{uhd_id}"],
            "image_urls": [],
        },
    }


def test_the_4k_fail_tag_fails_the_4k_task_and_calls_back_code_500(kie: Harness):
    # Given a 4K task of a video tagged [sim:4k-fail]
    task_id = finished(kie, "a fox [sim:4k-fail]")
    uhd_id = get_4k(kie, task_id, callBackUrl=CALLBACK_URL)["data"]["taskId"]

    # When it has finished
    kie.clock.advance(DELAY)
    body = kie.deliver_callback(uhd_id)
    repeat = get_4k(kie, task_id)

    # Then it calls back the failure, record-info says failed, a repeat says unavailable
    unavailable = "The 4K version of this video is unavailable."
    assert body == {"code": 500, "msg": unavailable, "data": {"taskId": uhd_id}}
    failed = record(kie, uhd_id)
    assert (failed["successFlag"], failed["errorCode"], failed["response"]) == (2, 500, None)
    assert (repeat["code"], repeat["msg"], repeat["data"]["resultUrls"]) == (422, unavailable, None)


def test_upgrade_never_keeps_the_4k_task_generating_without_a_callback(kie: Harness):
    # Given a 4K task of a video tagged [sim:upgrade-never], with a callback URL
    task_id = finished(kie, "a fox [sim:upgrade-never]")
    uhd_id = get_4k(kie, task_id, callBackUrl=CALLBACK_URL)["data"]["taskId"]

    # When a day has passed
    kie.clock.advance(24 * 3600)

    # Then it is still generating, and no callback was ever scheduled
    assert record(kie, uhd_id)["successFlag"] == 0
    assert get_4k(kie, task_id)["msg"] == PROCESSING_4K
    assert kie.scheduled == {}
