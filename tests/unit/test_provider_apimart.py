"""Contract tests for the APIMart adapter, fed the shapes reference/providers.md §3 and the
remix seed page document. No sockets: a FakeHttp answers with hand-built responses."""

from __future__ import annotations

import json

import pytest

from tests.unit.test_provider_common import FakeHttp, http_response
from veo_relay.errors import InvalidCallback, ProviderError
from veo_relay.providers.apimart import ApimartProvider
from veo_relay.providers.base import (
    ExtensionRequest,
    GenerationRequest,
    ProviderState,
    Submission,
    TaskKind,
)

CALLBACK = "https://relay.example/v1/callbacks/apimart/vid_1.token"
TASK_ID = "task_01K8SGYNNNVBQTXNR4MM964S7K"


def submitted(task_id: str = TASK_ID) -> dict:
    """The current docs' submit answer: `data` is an array."""
    return {"code": 200, "data": [{"status": "submitted", "task_id": task_id}]}


def api_error(status: int, message: str, error_type: str) -> dict:
    return {"error": {"code": status, "message": message, "type": error_type}}


def generation(**overrides) -> GenerationRequest:
    fields = {
        "prompt": "a cat running on grass",
        "mode": "fast",
        "generation_type": "TEXT_2_VIDEO",
        "aspect_ratio": "16:9",
        "resolution": "720p",
    }
    return GenerationRequest(**(fields | overrides))


def extension(**overrides) -> ExtensionRequest:
    fields = {
        "parent_provider_task_id": TASK_ID,
        "parent_model": "veo3.1-fast",
        "prompt": "The cat continues running on the grass",
        "mode": "fast",
        "aspect_ratio": "16:9",
        "resolution": "720p",
    }
    return ExtensionRequest(**(fields | overrides))


def task(status: str, **fields) -> dict:
    data = {
        "id": TASK_ID,
        "status": status,
        "progress": 100 if status == "completed" else 40,
        "created": 1763088289,
        "estimated_time": 300,
    }
    return {"code": 200, "data": data | fields}


# ------------------------------------------------------------------------------------ submit


def test_a_text_generation_posts_the_documented_body_and_no_callback():
    # Given apimart accepting the task
    http = FakeHttp(http_response(200, submitted()))

    # When a fast text-to-video task is submitted, even with a callback URL, seed and watermark
    request = generation(seed=1234, watermark="brand")
    submission = ApimartProvider(http).submit_generation(request, CALLBACK)

    # Then the body has apimart's fields only: duration is the number 8, and no callback, seed
    # or watermark field exists to send
    assert (http.only_call.method, http.only_call.path) == ("POST", "/v1/videos/generations")
    assert http.only_call.body == {
        "model": "veo3.1-fast",
        "prompt": "a cat running on grass",
        "duration": 8,
        "aspect_ratio": "16:9",
        "resolution": "720p",
    }
    assert submission == Submission(TASK_ID, "veo3.1-fast")


@pytest.mark.parametrize(
    ("mode", "generation_type", "images", "model", "apimart_type"),
    [
        ("quality", "FIRST_AND_LAST_FRAMES_2_VIDEO", 2, "veo3.1-quality", "frame"),
        ("fast", "FIRST_AND_LAST_FRAMES_2_VIDEO", 1, "veo3.1-fast", "frame"),
        ("fast", "REFERENCE_2_VIDEO", 3, "veo3.1-fast", "reference"),
    ],
)
def test_an_image_generation_names_its_generation_type(
    mode, generation_type, images, model, apimart_type
):
    # Given apimart accepting the task
    http = FakeHttp(http_response(200, submitted()))
    urls = tuple(f"https://img.example/{i}.png" for i in range(images))

    # When an image-driven task is submitted
    submission = ApimartProvider(http).submit_generation(
        generation(
            mode=mode, generation_type=generation_type, image_urls=urls, aspect_ratio="9:16"
        ),
        None,
    )

    # Then image_urls and generation_type (frame/reference) are sent, with the mode's model
    assert http.only_call.body == {
        "model": model,
        "prompt": "a cat running on grass",
        "duration": 8,
        "aspect_ratio": "9:16",
        "resolution": "720p",
        "image_urls": list(urls),
        "generation_type": apimart_type,
    }
    assert submission.model == model


@pytest.mark.parametrize(
    "answer",
    [
        submitted("task_new"),
        # The older doc version's object.
        {
            "code": 200,
            "data": {
                "id": "task_new",
                "status": "pending",
                "progress": 0,
                "object": "video.generation.task",
                "model": "veo3.1-fast",
                "created": 1763088289,
                "type": "video",
                "task_info": {"can_cancel": True, "estimated_time": 300},
            },
        },
    ],
)
def test_the_task_id_is_read_from_an_array_or_an_object(answer):
    # Given apimart answering `data` as an array (current) or an object (older docs)
    http = FakeHttp(http_response(200, answer))

    # When a task is submitted
    submission = ApimartProvider(http).submit_generation(generation(), None)

    # Then the task id is found either way
    assert submission.provider_task_id == "task_new"


@pytest.mark.parametrize(
    "answer", [{"code": 200, "data": []}, {"code": 200, "data": [{}]}, {"code": 200}]
)
def test_an_acceptance_without_a_task_id_is_a_provider_error(answer):
    # Given a 200 that names no task
    http = FakeHttp(http_response(200, answer))

    # When a task is submitted
    with pytest.raises(ProviderError) as refused:
        ApimartProvider(http).submit_generation(generation(), None)

    # Then it is the provider's error, not proof that nothing exists
    assert (refused.value.code, refused.value.created_nothing) == ("provider_error", False)


@pytest.mark.parametrize(
    ("status", "body", "code", "retryable", "created_nothing"),
    [
        (
            402,
            api_error(402, "Insufficient balance", "payment_required"),
            "insufficient_credits",
            False,
            True,
        ),
        (
            401,
            api_error(401, "Invalid API key", "authentication_error"),
            "unauthorized",
            False,
            True,
        ),
        (
            400,
            api_error(
                400,
                "veo3.1-quality does not support generation_type reference",
                "invalid_request_error",
            ),
            "invalid_request",
            False,
            True,
        ),
        (
            429,
            api_error(429, "Rate limit exceeded", "rate_limit_error"),
            "rate_limited",
            True,
            True,
        ),
        (
            500,
            api_error(500, "Internal server error", "server_error"),
            "provider_error",
            True,
            False,
        ),
        (
            503,
            api_error(503, "Service temporarily unavailable", "service_unavailable"),
            "provider_unavailable",
            True,
            True,
        ),
    ],
)
def test_a_refused_submit_maps_the_http_status_and_keeps_the_openai_style_error(
    status, body, code, retryable, created_nothing
):
    # Given apimart refusing with a real HTTP status and an OpenAI-style error body
    http = FakeHttp(http_response(status, body))

    # When a task is submitted
    with pytest.raises(ProviderError) as refused:
        ApimartProvider(http).submit_generation(generation(), None)

    # Then the status decides the refusal, and the error's message and code are kept
    error = refused.value
    assert (error.code, error.retryable, error.created_nothing) == (
        code,
        retryable,
        created_nothing,
    )
    assert error.raw_message == body["error"]["message"]
    assert error.raw_code == str(status)


def test_a_string_error_code_is_kept_as_the_raw_code():
    # Given an error body whose code is a word, not a number
    body = {"error": {"code": "model_not_found", "message": "no such model", "type": "invalid"}}
    http = FakeHttp(http_response(404, body))

    # When a task is submitted
    with pytest.raises(ProviderError) as refused:
        ApimartProvider(http).submit_generation(generation(), None)

    # Then the word is kept for audit; the status still decides our code
    assert (refused.value.raw_code, refused.value.code) == ("model_not_found", "task_not_found")


def test_a_gateway_error_page_is_an_unknown_outcome():
    # Given an HTML 504 from a gateway
    http = FakeHttp(http_response(504, text="<html>timeout</html>", content_type="text/html"))

    # When a task is submitted
    with pytest.raises(ProviderError) as refused:
        ApimartProvider(http).submit_generation(generation(), None)

    # Then it may be retried but does not prove that nothing was created
    error = refused.value
    assert (error.code, error.retryable, error.created_nothing) == (
        "provider_unavailable",
        True,
        False,
    )


# ------------------------------------------------------------------------------------- remix


def test_an_extension_remixes_the_parent_with_the_parents_model():
    # Given apimart accepting the remix
    http = FakeHttp(http_response(200, submitted("task_01JQXYZ9999NEWEXTENDID")))

    # When a fast parent is continued in "quality" mode, with a 9:16 ratio and a callback URL
    submission = ApimartProvider(http).submit_extension(
        extension(mode="quality", aspect_ratio="9:16", seed=1234), CALLBACK
    )

    # Then the remix route gets the parent's model (it must match), the ratio, the whole video
    assert (http.only_call.method, http.only_call.path) == (
        "POST",
        f"/v1/videos/{TASK_ID}/remix",
    )
    assert http.only_call.body == {
        "model": "veo3.1-fast",
        "prompt": "The cat continues running on the grass",
        "aspect_ratio": "9:16",
        "resolution": "720p",
        "raw": False,
    }
    assert submission == Submission("task_01JQXYZ9999NEWEXTENDID", "veo3.1-fast")


def test_an_extension_without_a_known_parent_model_uses_the_modes_model():
    # Given a parent whose model was not recorded
    http = FakeHttp(http_response(200, submitted("task_child")))

    # When it is continued in quality mode
    submission = ApimartProvider(http).submit_extension(
        extension(parent_model="", mode="quality"), None
    )

    # Then the mode's model is sent
    assert http.only_call.body["model"] == submission.model == "veo3.1-quality"


def test_a_task_id_cannot_leave_its_path_segment():
    # Given a parent task id with path characters in it
    http = FakeHttp(http_response(200, submitted("task_child")))

    # When it is continued
    ApimartProvider(http).submit_extension(extension(parent_provider_task_id="../x?y"), None)

    # Then it is quoted into one segment
    assert http.only_call.path == "/v1/videos/..%2Fx%3Fy/remix"


@pytest.mark.parametrize(
    ("status", "message", "code"),
    [
        (404, "Task not found", "task_not_found"),
        (400, "model must match the original task's model (veo3.1-fast)", "invalid_request"),
        (400, "The original video task status must be success", "invalid_request"),
    ],
)
def test_a_refused_remix_created_nothing(status, message, code):
    # Given apimart refusing the remix
    http = FakeHttp(http_response(status, api_error(status, message, "invalid_request_error")))

    # When the extension is submitted
    with pytest.raises(ProviderError) as refused:
        ApimartProvider(http).submit_extension(extension(), None)

    # Then it maps through the taxonomy and nothing was created
    assert (refused.value.code, refused.value.created_nothing) == (code, True)


# ------------------------------------------------------------------------------------ status


@pytest.mark.parametrize("kind", [TaskKind.GENERATE, TaskKind.EXTEND])
def test_the_task_route_is_the_status_route_for_every_kind(kind):
    # Given a task still processing
    http = FakeHttp(http_response(200, task("processing")))

    # When its status is read
    ApimartProvider(http).read_status(TASK_ID, kind)

    # Then /v1/tasks/{id} was asked, in English
    assert (http.only_call.method, http.only_call.path) == ("GET", f"/v1/tasks/{TASK_ID}")
    assert http.only_call.params == {"language": "en"}


@pytest.mark.parametrize("status", ["submitted", "pending", "processing"])
def test_an_unfinished_task_is_running(status):
    # Given a task that has not finished
    http = FakeHttp(http_response(200, task(status)))

    # When its status is read
    result = ApimartProvider(http).read_status(TASK_ID, TaskKind.GENERATE)

    # Then it is running, as far along as apimart says
    assert (result.state, result.video_urls, result.error) == (ProviderState.RUNNING, (), None)
    assert result.progress == 40


@pytest.mark.parametrize(
    "progress, read", [(0, 0), (99.6, 99), (150, 100), (-3, 0), (None, None), ("40", None)]
)
def test_progress_is_0_to_100_or_unknown(progress, read):
    http = FakeHttp(http_response(200, task("processing", progress=progress)))
    assert ApimartProvider(http).read_status(TASK_ID, TaskKind.GENERATE).progress == read


@pytest.mark.parametrize("resolution", ["1080p", "4k"])
def test_the_resolution_is_a_field_of_the_generation_and_of_the_remix(resolution):
    answer = {"code": 200, "data": [{"status": "submitted", "task_id": TASK_ID}]}
    http = FakeHttp(http_response(200, answer), http_response(200, answer))
    provider = ApimartProvider(http)
    provider.submit_generation(generation(resolution=resolution), None)
    provider.submit_extension(extension(resolution=resolution), None)
    assert [call.body["resolution"] for call in http.calls] == [resolution, resolution]


def test_a_completed_task_reads_the_url_array():
    # Given the documented completed video task: url is an array of strings
    body = task(
        "completed",
        result={
            "videos": [
                {"url": ["https://upload.apimart.ai/f/video/a.mp4"], "expires_at": 1763174708}
            ]
        },
        completed=1763088408,
        actual_time=119,
    )
    http = FakeHttp(http_response(200, body))

    # When its status is read
    result = ApimartProvider(http).read_status(TASK_ID, TaskKind.GENERATE)

    # Then the URL is the video
    assert result.state is ProviderState.SUCCEEDED
    assert result.video_urls == ("https://upload.apimart.ai/f/video/a.mp4",)


@pytest.mark.parametrize(
    ("cost", "read"), [(0.123, 0.123), (2, 2.0), (0, None), (-1, None), ("0.1", None), (True, None)]
)
def test_the_cost_a_completed_task_reports_is_its_own_figure_or_unknown(cost, read):
    # Given a completed task reporting its cost (a third-party fixture's field)
    videos = [{"url": ["https://upload.apimart.ai/f/video/a.mp4"]}]
    body = task("completed", result={"videos": videos}, cost=cost)

    # When its status is read, Then a positive number is the cost in USD, anything else unknown
    result = ApimartProvider(FakeHttp(http_response(200, body))).read_status(
        TASK_ID, TaskKind.GENERATE
    )
    assert result.cost_usd == read


def test_a_completed_task_also_accepts_a_url_string():
    # Given an older answer whose url is one string, and a second video with an array
    body = task(
        "completed",
        result={
            "videos": [
                {"url": "https://upload.apimart.ai/f/video/a.mp4"},
                {"url": ["https://upload.apimart.ai/f/video/b.mp4"]},
            ]
        },
    )
    http = FakeHttp(http_response(200, body))

    # When its status is read
    result = ApimartProvider(http).read_status(TASK_ID, TaskKind.EXTEND)

    # Then both shapes give their URLs, in order
    assert result.video_urls == (
        "https://upload.apimart.ai/f/video/a.mp4",
        "https://upload.apimart.ai/f/video/b.mp4",
    )


@pytest.mark.parametrize(
    "result", [None, {}, {"videos": []}, {"videos": [{"url": []}]}, {"videos": [{"url": None}]}]
)
def test_a_completed_task_without_a_url_is_a_provider_error(result):
    # Given "completed" without any video URL
    http = FakeHttp(http_response(200, task("completed", result=result)))

    # When its status is read
    with pytest.raises(ProviderError) as failed:
        ApimartProvider(http).read_status(TASK_ID, TaskKind.GENERATE)

    # Then that is the provider's error
    assert failed.value.code == "provider_error"


@pytest.mark.parametrize(
    ("error", "code", "provider_code"),
    [
        (
            {"code": "task_failed", "message": "Video generation failed"},
            "generation_failed",
            "task_failed",
        ),
        (
            {"code": "task_failed", "message": "Prompt flagged by the content policy"},
            "content_violation",
            "task_failed",
        ),
        ({"code": 500, "message": "Upstream timed out"}, "timeout", "500"),
    ],
)
def test_a_failed_task_reports_its_error(error, code, provider_code):
    # Given a failed task with its error object
    http = FakeHttp(http_response(200, task("failed", error=error)))

    # When its status is read
    result = ApimartProvider(http).read_status(TASK_ID, TaskKind.GENERATE)

    # Then the task failed with our code and apimart's kept
    assert result.state is ProviderState.FAILED
    assert result.error is not None
    assert (result.error.code, result.error.provider_code) == (code, provider_code)
    assert result.error.provider_message == error["message"]
    assert error["message"] not in result.error.message  # the provider's words: audit only


def test_a_cancelled_task_failed():
    # Given a cancelled task, with no error object
    http = FakeHttp(http_response(200, task("cancelled")))

    # When its status is read
    result = ApimartProvider(http).read_status(TASK_ID, TaskKind.GENERATE)

    # Then it failed, and says it was cancelled
    assert result.state is ProviderState.FAILED
    assert result.error is not None
    assert (result.error.code, result.error.provider_code) == ("generation_failed", "cancelled")
    assert "cancelled" in result.error.message


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (404, "task_not_found", False),
        (500, "provider_error", True),
        (503, "provider_unavailable", True),
    ],
)
def test_a_refused_status_read_maps_through_the_taxonomy(status, code, retryable):
    # Given the task route refusing
    http = FakeHttp(http_response(status, api_error(status, "no", "error")))

    # When the status is read
    with pytest.raises(ProviderError) as refused:
        ApimartProvider(http).read_status(TASK_ID, TaskKind.GENERATE)

    # Then the poller learns whether to keep asking
    assert (refused.value.code, refused.value.retryable) == (code, retryable)


def test_an_error_under_http_200_is_not_taken_for_a_status():
    # Given an HTTP 200 whose body carries only an error object
    body = {"error": {"code": "busy", "message": "try later", "type": "server_error"}}
    http = FakeHttp(http_response(200, body))

    # When the status is read
    with pytest.raises(ProviderError) as refused:
        ApimartProvider(http).read_status(TASK_ID, TaskKind.GENERATE)

    # Then it is a passing trouble, to be asked again
    assert (refused.value.retryable, refused.value.raw_message) == (True, "try later")


# ----------------------------------------------------------------------- callbacks and rules


def test_apimart_sends_no_callbacks():
    # Given the apimart adapter
    provider = ApimartProvider(FakeHttp())

    # When anything arrives on its callback route
    # Then it is refused: apimart documents no callbacks for veo3.1
    assert provider.supports_callbacks is False
    with pytest.raises(InvalidCallback):
        provider.parse_callback(json.dumps({"data": {"task_id": TASK_ID}}).encode(), {})


def test_apimart_takes_no_seed_and_no_quality_reference():
    # Given the apimart adapter
    rules = ApimartProvider(FakeHttp()).capabilities

    # Then a seed cannot be honoured, and REFERENCE_2_VIDEO needs fast (and 16:9)
    assert rules.seed_range is None
    assert rules.reference_modes == ("fast",)
    assert rules.reference_aspect_ratios == ("16:9",)
    assert rules.max_prompt_length == 10000
