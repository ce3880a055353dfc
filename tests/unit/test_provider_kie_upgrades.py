"""Contract tests for kie's upgrades (reference/providers.md §2.6, §2.7): 1080p asked for until it
is answered, 4K as a task of its own. No sockets: a FakeHttp answers."""

from __future__ import annotations

import pytest

from tests.unit.test_provider_common import FakeHttp, http_response
from veo_relay.errors import ProviderError
from veo_relay.providers.base import ProviderState
from veo_relay.providers.kie import KieProvider

TASK = "veo_task_abc"
CALLBACK = "https://relay.example/v1/callbacks/kie/vid_1.token"
URL_1080P = "https://tempfile.aiquickdraw.com/p/abc_1080.mp4"
URL_4K = "https://tempfile.aiquickdraw.com/v/abc_4k.mp4"
NOT_READY = "1080P is processing. It should be ready in 1-2 minutes. Please check back shortly."


def answer(code: int, msg: str = "success", data: object = None):
    return http_response(200, {"code": code, "msg": msg, "data": data})


def upgrades(*responses):
    http = FakeHttp(*responses)
    provider = KieProvider(http)
    return provider.upgrades, http


# ---------------------------------------------------------------------------------- 1080p


def test_1080p_not_ready_is_running_and_asked_again_with_the_documented_query():
    kie, http = upgrades(answer(400, NOT_READY), answer(200, data={"resultUrl": URL_1080P}))

    started = kie.start_upgrade(TASK, "1080p", CALLBACK)
    assert started.upgrade_task_id is None
    assert started.status.state is ProviderState.RUNNING
    status = kie.read_upgrade(TASK, "1080p", None)

    assert status.state is ProviderState.SUCCEEDED and status.video_urls == (URL_1080P,)
    assert [(c.method, c.path, c.params) for c in http.calls] == [
        ("GET", "/api/v1/veo/get-1080p-video", {"taskId": TASK, "index": "0"}),
    ] * 2


@pytest.mark.parametrize("code", [404, 422, 500])
def test_any_other_body_code_of_1080p_means_not_ready_yet(code):
    kie, _ = upgrades(answer(code, "not yet"))
    assert kie.read_upgrade(TASK, "1080p", None).state is ProviderState.RUNNING


def test_a_refused_key_is_an_error_not_a_wait():
    kie, _ = upgrades(answer(401, "Unauthorized"))
    with pytest.raises(ProviderError) as raised:
        kie.read_upgrade(TASK, "1080p", None)
    assert raised.value.code == "unauthorized"


def test_a_1080p_answer_without_its_url_is_a_provider_error():
    kie, _ = upgrades(answer(200, data={}))
    with pytest.raises(ProviderError):
        kie.read_upgrade(TASK, "1080p", None)


# ------------------------------------------------------------------------------------- 4K


def test_4k_is_started_with_the_tasks_callback_url_and_answers_its_task():
    kie, http = upgrades(
        answer(200, data={"taskId": "veo_4k_1", "resultUrls": None, "imageUrls": None})
    )

    started = kie.start_upgrade(TASK, "4k", CALLBACK)

    assert started.upgrade_task_id == "veo_4k_1"
    assert started.status.state is ProviderState.RUNNING
    call = http.only_call
    assert (call.method, call.path) == ("POST", "/api/v1/veo/get-4k-video")
    assert call.body == {"taskId": TASK, "index": 0, "callBackUrl": CALLBACK}


@pytest.mark.parametrize(
    "msg, data, state",
    [
        ("4k is processing. It should be ready in 5-10 minutes.", None, ProviderState.RUNNING),
        (
            "The video has been generated successfully",
            {"resultUrls": [URL_4K], "imageUrls": []},
            ProviderState.SUCCEEDED,
        ),
    ],
)
def test_a_repeated_4k_request_tells_where_that_4k_stands(msg, data, state):
    kie, _ = upgrades(answer(422, msg, data))
    started = kie.start_upgrade(TASK, "4k", None)
    assert started.upgrade_task_id is None and started.status.state is state


def test_another_422_is_a_refusal():
    kie, _ = upgrades(answer(422, "veo3_lite videos have no 4K version"))
    with pytest.raises(ProviderError):
        kie.start_upgrade(TASK, "4k", None)


def test_the_4k_tasks_record_info_is_the_truth():
    record = {"taskId": "veo_4k_1", "successFlag": 1, "response": {"resultUrls": [URL_4K]}}
    kie, http = upgrades(answer(200, data=record))

    status = kie.read_upgrade(TASK, "4k", "veo_4k_1")

    assert status.state is ProviderState.SUCCEEDED and status.video_urls == (URL_4K,)
    assert http.only_call.params == {"taskId": "veo_4k_1"}


def test_a_4k_whose_task_is_unknown_is_running_until_its_callback_names_it():
    kie, http = upgrades()
    assert kie.read_upgrade(TASK, "4k", None).state is ProviderState.RUNNING
    assert http.calls == []


def test_a_failed_4k_task_fails():
    record = {"taskId": "veo_4k_1", "successFlag": 2, "errorCode": 500, "errorMessage": "no 4K"}
    kie, _ = upgrades(answer(200, data=record))
    assert kie.read_upgrade(TASK, "4k", "veo_4k_1").state is ProviderState.FAILED
