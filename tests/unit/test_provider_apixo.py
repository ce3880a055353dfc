"""Contract tests for the apixo adapter, fed the shapes reference/providers.md §1 and the apixo
seed pages document. No sockets: a FakeHttp answers with hand-built responses."""

from __future__ import annotations

import json

import pytest

from tests.helpers import apixo_status_body
from tests.unit.test_provider_common import FakeHttp, http_response
from veo_relay.errors import InvalidCallback, ProviderError
from veo_relay.providers.apixo import ApixoProvider
from veo_relay.providers.base import (
    Capabilities,
    ExtensionRequest,
    GenerationRequest,
    ProviderState,
    Submission,
    TaskKind,
)

CALLBACK = "https://relay.example/v1/callbacks/apixo/vid_1.token"


def accepted(task_id: str = "task_12345678") -> dict:
    return {"code": 200, "message": "success", "data": {"taskId": task_id}}


def generation(**overrides) -> GenerationRequest:
    fields = {
        "prompt": "a cinematic flyover",
        "mode": "quality",
        "generation_type": "TEXT_2_VIDEO",
        "aspect_ratio": "16:9",
    }
    return GenerationRequest(**(fields | overrides))


def extension(**overrides) -> ExtensionRequest:
    fields = {
        "parent_provider_task_id": "task_12345678",
        "parent_model": "veo-3-1",
        "prompt": "continue the chase",
        "mode": "fast",
        "aspect_ratio": "16:9",
    }
    return ExtensionRequest(**(fields | overrides))


# ------------------------------------------------------------------------------------ submit


def test_an_async_generation_posts_the_documented_body():
    # Given apixo accepting the task
    http = FakeHttp(http_response(200, accepted()))

    # When a text-to-video task is submitted without a callback
    submission = ApixoProvider(http).submit_generation(generation(), None)

    # Then the documented body goes to the generate route, and the task id comes back with the
    # model it ran on
    assert http.only_call.path == "/api/v1/generateTask/veo-3-1"
    assert http.only_call.body == {
        "request_type": "async",
        "input": {
            "mode": "quality",
            "prompt": "a cinematic flyover",
            "generationType": "TEXT_2_VIDEO",
            "aspect_ratio": "16:9",
        },
    }
    assert submission == Submission("task_12345678", "veo-3-1")


def test_a_callback_generation_with_every_option_posts_them_all():
    # Given apixo accepting the task
    http = FakeHttp(http_response(200, accepted()))
    request = generation(
        mode="fast",
        generation_type="FIRST_AND_LAST_FRAMES_2_VIDEO",
        aspect_ratio="9:16",
        image_urls=("https://img.example/a.jpg", "https://img.example/b.jpg"),
        seed=1234,
        watermark="© Brand",
    )

    # When it is submitted with a callback URL
    ApixoProvider(http).submit_generation(request, CALLBACK)

    # Then request_type is "callback" beside callback_url, and the input carries every option
    assert http.only_call.body == {
        "request_type": "callback",
        "callback_url": CALLBACK,
        "input": {
            "mode": "fast",
            "prompt": "a cinematic flyover",
            "generationType": "FIRST_AND_LAST_FRAMES_2_VIDEO",
            "aspect_ratio": "9:16",
            "image_urls": ["https://img.example/a.jpg", "https://img.example/b.jpg"],
            "seed": 1234,
            "watermark": "© Brand",
        },
    }


def test_an_extension_posts_to_the_extend_model_with_the_parent_task_id():
    # Given apixo accepting the extension
    http = FakeHttp(http_response(200, accepted("extend_task_12345678")))

    # When a parent's video is continued, with a callback, a seed and a watermark
    submission = ApixoProvider(http).submit_extension(
        extension(mode="quality", seed=1234, watermark="© YourBrand"), CALLBACK
    )

    # Then the extend route gets the documented input and the child runs on the extend model
    assert http.only_call.path == "/api/v1/generateTask/veo-3-1-extend"
    assert http.only_call.body == {
        "request_type": "callback",
        "callback_url": CALLBACK,
        "input": {
            "taskId": "task_12345678",
            "mode": "quality",
            "prompt": "continue the chase",
            "watermark": "© YourBrand",
            "seed": 1234,
        },
    }
    assert submission == Submission("extend_task_12345678", "veo-3-1-extend")


def test_an_async_extension_sends_only_the_required_input():
    # Given apixo accepting the extension
    http = FakeHttp(http_response(200, accepted("extend_task_1")))

    # When it is submitted without callback, seed or watermark
    ApixoProvider(http).submit_extension(extension(), None)

    # Then the body is the documented minimal one
    assert http.only_call.body == {
        "request_type": "async",
        "input": {"taskId": "task_12345678", "mode": "fast", "prompt": "continue the chase"},
    }


@pytest.mark.parametrize(
    ("status", "body"),
    [
        # The extend page's documented error.
        (400, {"code": 400, "message": "TaskId not found, expired or not a veo-3-1 task."}),
        # The same refusal naming the code, as the simulator sends it.
        (
            400,
            {
                "code": 400,
                "message": "TASKID_ERROR: TaskId not found, expired or not a veo-3-1 task.",
                "data": None,
            },
        ),
        # The page does not say which status TASKID_ERROR comes with.
        (422, {"code": 422, "message": "TASKID_ERROR", "data": None}),
        (404, {"code": 404, "message": "Task not found", "data": None}),
    ],
)
def test_an_extension_of_an_unknown_or_expired_parent_is_task_not_found(status, body):
    # Given apixo refusing the parent's task id
    http = FakeHttp(http_response(status, body))

    # When the extension is submitted
    with pytest.raises(ProviderError) as refused:
        ApixoProvider(http).submit_extension(extension(), CALLBACK)

    # Then it is task_not_found, final, and nothing was created
    assert refused.value.code == "task_not_found"
    assert (refused.value.retryable, refused.value.created_nothing) == (False, True)


@pytest.mark.parametrize(
    ("status", "body", "code", "retryable", "created_nothing"),
    [
        (
            400,
            {
                "code": 400,
                "message": "Invalid request",
                "data": {"error": "Missing required field: input.prompt"},
            },
            "invalid_request",
            False,
            True,
        ),
        # The generate page's error example: insufficient credits under a 400.
        (
            400,
            {"code": 400, "message": "Insufficient credits", "data": None},
            "insufficient_credits",
            False,
            True,
        ),
        (401, {"code": 401, "message": "Invalid or missing API Key"}, "unauthorized", False, True),
        (
            402,
            {"code": 402, "message": "Insufficient balance"},
            "insufficient_credits",
            False,
            True,
        ),
        (429, {"code": 429, "message": "Rate limit exceeded"}, "rate_limited", True, True),
        (500, {"code": 500, "message": "Internal server error"}, "provider_error", True, False),
        (503, {"code": 503, "message": "Service unavailable"}, "provider_unavailable", True, True),
    ],
)
def test_a_refused_submit_maps_through_the_taxonomy(status, body, code, retryable, created_nothing):
    # Given apixo refusing with a real HTTP status and its `message` envelope
    http = FakeHttp(http_response(status, body))

    # When a generation is submitted
    with pytest.raises(ProviderError) as refused:
        ApixoProvider(http).submit_generation(generation(), CALLBACK)

    # Then the refusal carries our code, whether to retry, and whether nothing was created
    error = refused.value
    assert (error.code, error.retryable, error.created_nothing) == (
        code,
        retryable,
        created_nothing,
    )
    assert error.raw_code == str(status)
    assert body["message"] in (error.raw_message or "")


def test_a_refusal_detail_is_kept_in_the_raw_message():
    # Given a 400 whose data.error names the field at fault
    body = {"code": 400, "message": "Invalid request", "data": {"error": "Missing input.prompt"}}
    http = FakeHttp(http_response(400, body))

    # When a generation is submitted
    with pytest.raises(ProviderError) as refused:
        ApixoProvider(http).submit_generation(generation(), None)

    # Then both the message and the detail survive for audit
    assert refused.value.raw_message == "Invalid request: Missing input.prompt"


def test_a_non_200_envelope_code_under_http_200_is_a_refusal():
    # Given an HTTP 200 whose envelope code is 401
    http = FakeHttp(http_response(200, {"code": 401, "message": "Invalid API Key", "data": None}))

    # When a generation is submitted
    with pytest.raises(ProviderError) as refused:
        ApixoProvider(http).submit_generation(generation(), None)

    # Then the envelope code decides
    assert (refused.value.code, refused.value.created_nothing) == ("unauthorized", True)


def test_a_gateway_error_page_is_an_unknown_outcome():
    # Given a proxy in front of apixo answering 502 with HTML
    http = FakeHttp(http_response(502, text="<html>Bad Gateway</html>", content_type="text/html"))

    # When a generation is submitted
    with pytest.raises(ProviderError) as refused:
        ApixoProvider(http).submit_generation(generation(), None)

    # Then it is worth retrying, but it does not prove that nothing was created
    error = refused.value
    assert (error.code, error.retryable, error.created_nothing) == (
        "provider_unavailable",
        True,
        False,
    )


def test_an_acceptance_without_a_task_id_is_a_provider_error():
    # Given apixo answering 200 with no taskId
    http = FakeHttp(http_response(200, {"code": 200, "message": "success", "data": {}}))

    # When a generation is submitted
    with pytest.raises(ProviderError) as refused:
        ApixoProvider(http).submit_generation(generation(), None)

    # Then that is a provider error, not proof that nothing exists
    assert (refused.value.code, refused.value.created_nothing) == ("provider_error", False)


# ------------------------------------------------------------------------------------ status


@pytest.mark.parametrize(
    ("kind", "path"),
    [
        (TaskKind.GENERATE, "/api/v1/statusTask/veo-3-1"),
        (TaskKind.EXTEND, "/api/v1/statusTask/veo-3-1-extend"),
    ],
)
def test_status_is_read_on_the_model_path_the_task_was_created_on(kind, path):
    # Given a task still processing
    http = FakeHttp(http_response(200, apixo_status_body("task_1", "processing")))

    # When its status is read
    ApixoProvider(http).read_status("task_1", kind)

    # Then the route names the model of the task's kind
    assert (http.only_call.method, http.only_call.path) == ("GET", path)
    assert http.only_call.params == {"taskId": "task_1"}


@pytest.mark.parametrize("state", ["pending", "processing"])
def test_an_unfinished_task_is_running(state):
    # Given a task that has not finished
    http = FakeHttp(http_response(200, apixo_status_body("task_1", state)))

    # When its status is read
    status = ApixoProvider(http).read_status("task_1", TaskKind.GENERATE)

    # Then it is running, with no URLs and no error
    assert (status.state, status.video_urls, status.error) == (ProviderState.RUNNING, (), None)


def test_a_success_parses_result_json_from_its_string():
    # Given the documented success body: resultJson is a JSON *string*
    body = {
        "code": 200,
        "message": "success",
        "data": {
            "taskId": "extend_task_12345678",
            "state": "success",
            "resultJson": '{"resultUrls":["https://r2.apixo.ai/video_extend.mp4"]}',
            "createTime": 1767965610929,
            "completeTime": 1767965730929,
            "costTime": 120000,
        },
    }
    http = FakeHttp(http_response(200, body))

    # When the extension's status is read
    status = ApixoProvider(http).read_status("extend_task_12345678", TaskKind.EXTEND)

    # Then the video URLs come out of it
    assert status.state is ProviderState.SUCCEEDED
    assert status.video_urls == ("https://r2.apixo.ai/video_extend.mp4",)


def test_a_failed_task_still_has_envelope_code_200():
    # Given the documented failure: envelope code 200, state "failed", failCode + failMsg
    body = {
        "code": 200,
        "message": "success",
        "data": {
            "taskId": "task_12345678",
            "state": "failed",
            "failCode": "CONTENT_VIOLATION",
            "failMsg": "Content violates usage policy",
            "createTime": 1704067200000,
            "completeTime": 1704067205000,
        },
    }
    http = FakeHttp(http_response(200, body))

    # When its status is read
    status = ApixoProvider(http).read_status("task_12345678", TaskKind.GENERATE)

    # Then the task failed (not the read), with the provider's code and words kept for audit,
    # and a message of our own
    assert status.state is ProviderState.FAILED
    assert status.error is not None
    assert status.error.code == "content_violation"
    assert status.error.provider_code == "CONTENT_VIOLATION"
    assert status.error.provider_message == "Content violates usage policy"
    assert status.error.message == "the provider refused the content under its content policy"


def test_an_extension_failing_with_taskid_error_is_task_not_found():
    # Given an extend task that failed because its parent was invalid
    body = apixo_status_body(
        "extend_1", "failed", fail_code="TASKID_ERROR", fail_msg="TaskId not found, expired"
    )
    http = FakeHttp(http_response(200, body))

    # When its status is read
    status = ApixoProvider(http).read_status("extend_1", TaskKind.EXTEND)

    # Then the failure is task_not_found
    assert status.error is not None and status.error.code == "task_not_found"


@pytest.mark.parametrize("result_json", [None, "not json", '{"other": []}', '{"resultUrls": []}'])
def test_a_success_without_result_urls_is_a_provider_error(result_json):
    # Given a success whose resultJson is missing, malformed or empty
    body = apixo_status_body("task_1", "success")
    body["data"]["resultJson"] = result_json
    http = FakeHttp(http_response(200, body))

    # When its status is read
    with pytest.raises(ProviderError) as failed:
        ApixoProvider(http).read_status("task_1", TaskKind.GENERATE)

    # Then that is the provider's error
    assert failed.value.code == "provider_error"


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (404, "task_not_found", False),
        (500, "provider_error", True),
        (503, "provider_unavailable", True),
    ],
)
def test_a_refused_status_read_maps_through_the_taxonomy(status, code, retryable):
    # Given the status route refusing
    http = FakeHttp(http_response(status, {"code": status, "message": "no", "data": None}))

    # When the status is read
    with pytest.raises(ProviderError) as refused:
        ApixoProvider(http).read_status("task_1", TaskKind.GENERATE)

    # Then the poller learns whether to keep asking
    assert (refused.value.code, refused.value.retryable) == (code, retryable)


# --------------------------------------------------------------------------------- callbacks


@pytest.mark.parametrize(
    "body",
    [
        apixo_status_body("task_12345678", "success"),
        apixo_status_body("task_12345678", "failed", fail_code="CONTENT_VIOLATION"),
    ],
)
def test_a_callback_names_the_task_whether_it_succeeded_or_failed(body):
    # Given apixo's callback body (the status body)
    # When it is parsed
    notice = ApixoProvider(FakeHttp()).parse_callback(json.dumps(body).encode(), {})

    # Then it names the provider task, and nothing was asked of apixo
    assert notice.provider_task_id == "task_12345678"


@pytest.mark.parametrize("body", [b"", b"[]", b'{"code": 200}', b'{"data": {"taskId": 7}}'])
def test_a_callback_without_a_task_id_names_none(body):
    # Given a JSON callback that names no task
    # When it is parsed
    notice = ApixoProvider(FakeHttp()).parse_callback(body, {})

    # Then the notice names none (the token in the URL still identifies our task)
    assert notice.provider_task_id is None


def test_a_callback_that_is_not_json_is_invalid():
    # Given a body that is not JSON
    # When it is parsed
    # Then it is refused
    with pytest.raises(InvalidCallback):
        ApixoProvider(FakeHttp()).parse_callback(b"<xml/>", {})


@pytest.mark.parametrize("task_id", ["t" * 257, "task_\u00e9", "task 1", "task\t1", "task\x7f", ""])
def test_a_callback_naming_a_task_id_of_no_valid_form_is_invalid(task_id):
    # Given a callback naming a task id that is too long, or not visible ASCII (it would be stored)
    body = json.dumps(apixo_status_body(task_id, "success")).encode()

    # When it is parsed, then it is refused; 256 visible ASCII characters are not
    with pytest.raises(InvalidCallback):
        ApixoProvider(FakeHttp()).parse_callback(body, {})
    longest = json.dumps(apixo_status_body("~" * 256, "success")).encode()
    assert ApixoProvider(FakeHttp()).parse_callback(longest, {}).provider_task_id == "~" * 256


# ------------------------------------------------------------------------------------- rules


def test_apixo_takes_callbacks_and_the_default_rules():
    # Given the apixo adapter
    provider = ApixoProvider(FakeHttp())

    # Then it takes callbacks; REFERENCE_2_VIDEO needs fast + 16:9; the seed is any uint32
    assert provider.supports_callbacks is True
    assert provider.capabilities == Capabilities(extends_extensions=False)
    assert provider.capabilities.reference_modes == ("fast",)
    assert provider.capabilities.reference_aspect_ratios == ("16:9",)
    assert provider.capabilities.resolutions == ("720p",)
    assert provider.capabilities.seed_range == (0, 4294967295)
    assert provider.capabilities.seed_range is not None
