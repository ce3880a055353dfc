"""Contract tests for the kie.ai adapter, fed the shapes reference/providers.md §2 and the kie
seed pages document. No sockets: a FakeHttp answers with hand-built responses."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from tests.unit.test_provider_common import FakeHttp, http_response
from veo_relay.errors import InvalidCallback, ProviderError
from veo_relay.providers.base import (
    ExtensionRequest,
    GenerationRequest,
    ProviderState,
    Submission,
    TaskKind,
)
from veo_relay.providers.kie import KieProvider

CALLBACK = "https://relay.example/v1/callbacks/kie/vid_1.token"
HMAC_KEY = "whk_test_key"
NOW = 1_795_255_200


def kie(http: FakeHttp | None = None, webhook_hmac_key: str | None = None) -> KieProvider:
    return KieProvider(http or FakeHttp(), webhook_hmac_key=webhook_hmac_key, clock=lambda: NOW)


def envelope(code: int, msg: str, data=None) -> dict:
    return {"code": code, "msg": msg, "data": data}


def generation(**overrides) -> GenerationRequest:
    fields = {
        "prompt": "a cat on a skateboard",
        "mode": "fast",
        "generation_type": "TEXT_2_VIDEO",
        "aspect_ratio": "16:9",
    }
    return GenerationRequest(**(fields | overrides))


def extension(**overrides) -> ExtensionRequest:
    fields = {
        "parent_provider_task_id": "veo_task_abcdef123456",
        "parent_model": "veo3_fast",
        "prompt": "The dog continues running through the park",
        "mode": "fast",
        "aspect_ratio": "16:9",
    }
    return ExtensionRequest(**(fields | overrides))


def record(success_flag: int, **fields) -> dict:
    """record-info's data, as §2.3 documents it."""
    data = {
        "taskId": "veo_task_abc",
        "paramJson": '{"prompt":"cat","model":"veo3_fast"}',
        "createTime": "2025-06-06 10:25:00",
        "completeTime": "2025-06-06 10:30:00" if success_flag else None,
        "successFlag": success_flag,
        "response": None,
        "errorCode": None,
        "errorMessage": "",
        "fallbackFlag": False,
    }
    return envelope(200, "success", data | fields)


# ------------------------------------------------------------------------------------ submit


def test_a_generation_posts_the_documented_body_without_optional_fields():
    # Given kie accepting the task
    http = FakeHttp(http_response(200, envelope(200, "success", {"taskId": "veo_task_abc"})))

    # When a fast text-to-video task is submitted without a callback
    submission = kie(http).submit_generation(generation(), None)

    # Then the body has exactly the required fields (enableTranslation left to kie's default)
    assert (http.only_call.method, http.only_call.path) == ("POST", "/api/v1/veo/generate")
    assert http.only_call.body == {
        "prompt": "a cat on a skateboard",
        "model": "veo3_fast",
        "generationType": "TEXT_2_VIDEO",
        "aspect_ratio": "16:9",
    }
    assert submission == Submission("veo_task_abc", "veo3_fast")


def test_a_generation_with_every_option_uses_kies_field_names():
    # Given kie accepting the task
    http = FakeHttp(http_response(200, envelope(200, "success", {"taskId": "veo_task_abc"})))
    request = generation(
        mode="quality",
        generation_type="FIRST_AND_LAST_FRAMES_2_VIDEO",
        aspect_ratio="9:16",
        image_urls=("https://img.example/a.png", "https://img.example/b.png"),
        seed=12345,
        watermark="MyBrand",
    )

    # When it is submitted with a callback URL
    submission = kie(http).submit_generation(request, CALLBACK)

    # Then imageUrls, seeds (plural), watermark and callBackUrl (capital B) carry them
    assert http.only_call.body == {
        "prompt": "a cat on a skateboard",
        "model": "veo3",
        "generationType": "FIRST_AND_LAST_FRAMES_2_VIDEO",
        "aspect_ratio": "9:16",
        "imageUrls": ["https://img.example/a.png", "https://img.example/b.png"],
        "seeds": 12345,
        "watermark": "MyBrand",
        "callBackUrl": CALLBACK,
    }
    assert submission.model == "veo3"


@pytest.mark.parametrize(
    ("mode", "model"), [("fast", "veo3_fast"), ("quality", "veo3"), ("lite", "veo3_lite")]
)
def test_the_mode_picks_kies_generate_model(mode, model):
    # Given kie accepting the task
    http = FakeHttp(http_response(200, envelope(200, "success", {"taskId": "veo_task_abc"})))

    # When a task in that mode is submitted
    submission = kie(http).submit_generation(generation(mode=mode), None)

    # Then kie's model name is sent and returned
    assert http.only_call.body["model"] == submission.model == model


def test_an_extension_posts_the_documented_body():
    # Given kie accepting the extension
    answer = envelope(200, "success", {"taskId": "veo_extend_task_xyz789"})
    http = FakeHttp(http_response(200, answer))

    # When a parent's video is continued with a seed, a watermark and a callback
    submission = kie(http).submit_extension(extension(seed=12345, watermark="MyBrand"), CALLBACK)

    # Then the extend route gets the documented fields, the model as "fast"/"quality"
    assert (http.only_call.method, http.only_call.path) == ("POST", "/api/v1/veo/extend")
    assert http.only_call.body == {
        "taskId": "veo_task_abcdef123456",
        "prompt": "The dog continues running through the park",
        "model": "fast",
        "seeds": 12345,
        "watermark": "MyBrand",
        "callBackUrl": CALLBACK,
    }
    assert submission == Submission("veo_extend_task_xyz789", "fast")


def test_a_quality_extension_without_options_sends_only_the_required_fields():
    # Given kie accepting the extension
    answer = envelope(200, "success", {"taskId": "veo_extend_task_1"})
    http = FakeHttp(http_response(200, answer))

    # When a quality extension is submitted with nothing optional
    kie(http).submit_extension(extension(mode="quality"), None)

    # Then only taskId, prompt and model are sent
    assert http.only_call.body == {
        "taskId": "veo_task_abcdef123456",
        "prompt": "The dog continues running through the park",
        "model": "quality",
    }


@pytest.mark.parametrize(
    ("body_code", "msg", "code", "retryable", "created_nothing"),
    [
        (401, "Unauthorized - authentication credentials missing", "unauthorized", False, True),
        (402, "Insufficient credits", "insufficient_credits", False, True),
        (422, "Ratio error", "invalid_request", False, True),
        (429, "Rate limited", "rate_limited", True, True),
        (
            455,
            "Service unavailable - System is under maintenance",
            "provider_unavailable",
            True,
            True,
        ),
        (500, "Internal Error, Please try again later.", "provider_error", True, False),
        (501, "Video generation failed.", "generation_failed", False, False),
        (505, "Feature disabled", "provider_unavailable", False, True),
        (
            400,
            "Your prompt was flagged by Website as violating content policies.",
            "content_violation",
            False,
            True,
        ),
    ],
)
def test_an_error_in_the_body_of_an_http_200_is_a_refusal(
    body_code, msg, code, retryable, created_nothing
):
    # Given kie answering HTTP 200 with the error code in the body
    http = FakeHttp(http_response(200, envelope(body_code, msg)))

    # When a generation is submitted
    with pytest.raises(ProviderError) as refused:
        kie(http).submit_generation(generation(), CALLBACK)

    # Then the body code decides the refusal
    error = refused.value
    assert (error.code, error.retryable, error.created_nothing) == (
        code,
        retryable,
        created_nothing,
    )
    assert (error.raw_code, error.raw_message) == (str(body_code), msg)


@pytest.mark.parametrize(
    ("body_code", "msg"),
    [(404, "Original video or task does not exist"), (422, "record is null")],
)
def test_an_extension_of_a_missing_parent_is_task_not_found(body_code, msg):
    # Given kie saying the parent task does not exist
    http = FakeHttp(http_response(200, envelope(body_code, msg)))

    # When the extension is submitted
    with pytest.raises(ProviderError) as refused:
        kie(http).submit_extension(extension(), CALLBACK)

    # Then it is task_not_found and nothing was created
    assert (refused.value.code, refused.value.created_nothing) == ("task_not_found", True)


def test_a_real_http_error_status_is_a_refusal_too():
    # Given kie answering a real HTTP 404 with its envelope
    http = FakeHttp(http_response(404, envelope(404, "Not Found")))

    # When a generation is submitted
    with pytest.raises(ProviderError) as refused:
        kie(http).submit_generation(generation(), None)

    # Then the HTTP status decides
    assert (refused.value.code, refused.value.raw_message) == ("task_not_found", "Not Found")


def test_cloudflares_bare_403_is_an_unauthorized_refusal_that_created_nothing():
    # Given Cloudflare in front of kie refusing the client with a bare text body
    http = FakeHttp(http_response(403, text="error code: 1010"))

    # When a generation is submitted
    with pytest.raises(ProviderError) as refused:
        kie(http).submit_generation(generation(), None)

    # Then it is a final refusal that never reached kie, and says so
    error = refused.value
    assert (error.code, error.retryable, error.created_nothing) == ("unauthorized", False, True)
    assert "Cloudflare" in (error.raw_message or "")
    assert "1010" in (error.raw_message or "")


def test_a_gateway_error_page_is_an_unknown_outcome():
    # Given an HTML 502 from a gateway
    http = FakeHttp(http_response(502, text="<html>502</html>", content_type="text/html"))

    # When a generation is submitted
    with pytest.raises(ProviderError) as refused:
        kie(http).submit_generation(generation(), None)

    # Then it may be retried but does not prove that nothing was created
    error = refused.value
    assert (error.code, error.retryable, error.created_nothing) == (
        "provider_unavailable",
        True,
        False,
    )


@pytest.mark.parametrize(
    "body", [envelope(200, "success", {}), envelope(200, "success", None), {"msg": "success"}]
)
def test_an_acceptance_without_a_task_id_is_a_provider_error(body):
    # Given an HTTP 200 without a taskId (or without an envelope code)
    http = FakeHttp(http_response(200, body))

    # When a generation is submitted
    with pytest.raises(ProviderError) as refused:
        kie(http).submit_generation(generation(), None)

    # Then it is the provider's error, and not proof that nothing exists
    assert (refused.value.code, refused.value.created_nothing) == ("provider_error", False)


# ------------------------------------------------------------------------------------ status


@pytest.mark.parametrize("kind", [TaskKind.GENERATE, TaskKind.EXTEND])
def test_record_info_is_the_status_route_for_every_kind(kind):
    # Given a task still generating (successFlag 0)
    http = FakeHttp(http_response(200, record(0)))

    # When its status is read
    status = kie(http).read_status("veo_task_abc", kind)

    # Then record-info was asked, and the task is running
    assert (http.only_call.method, http.only_call.path) == ("GET", "/api/v1/veo/record-info")
    assert http.only_call.params == {"taskId": "veo_task_abc"}
    assert (status.state, status.video_urls, status.error) == (ProviderState.RUNNING, (), None)


def test_a_success_reads_response_result_urls():
    # Given the documented successful poll
    response = {
        "taskId": "veo_task_abc",
        "resultUrls": ["https://tempfile.aiquickdraw.com/v/x.mp4"],
        "originUrls": [],
        "resolution": "1080p",
    }
    http = FakeHttp(http_response(200, record(1, response=response)))

    # When its status is read
    status = kie(http).read_status("veo_task_abc", TaskKind.GENERATE)

    # Then the result URLs are the video
    assert status.state is ProviderState.SUCCEEDED
    assert status.video_urls == ("https://tempfile.aiquickdraw.com/v/x.mp4",)


@pytest.mark.parametrize(
    "urls",
    ['["https://tempfile.aiquickdraw.com/v/x.mp4"]', "https://tempfile.aiquickdraw.com/v/x.mp4"],
)
def test_result_urls_given_as_a_string_are_accepted(urls):
    # Given resultUrls as a JSON string (the callback schema's type) or one bare URL, with
    # origin URLs beside it
    response = {
        "resultUrls": urls,
        "originUrls": ["https://tempfile.aiquickdraw.com/v/origin.mp4"],
    }
    http = FakeHttp(http_response(200, record(1, response=response)))

    # When its status is read
    status = kie(http).read_status("veo_task_abc", TaskKind.GENERATE)

    # Then the string is parsed, and the origin render is not taken for the result
    assert status.video_urls == ("https://tempfile.aiquickdraw.com/v/x.mp4",)


def test_an_extension_prefers_the_stitched_full_video():
    # Given an extend task's record with both the segment and the full video
    response = {
        "resultUrls": ["https://tempfile.aiquickdraw.com/v/segment.mp4"],
        "fullResultUrls": ["https://tempfile.aiquickdraw.com/v/full.mp4"],
    }
    http = FakeHttp(http_response(200, record(1, response=response)))

    # When the extension's status is read
    status = kie(http).read_status("veo_extend_task_xyz789", TaskKind.EXTEND)

    # Then the full video is the result
    assert status.video_urls == ("https://tempfile.aiquickdraw.com/v/full.mp4",)


@pytest.mark.parametrize("full", [None, [], ""])
def test_an_extension_without_full_result_urls_falls_back_to_result_urls(full):
    # Given an extend task's record without (usable) fullResultUrls
    response = {"resultUrls": ["https://tempfile.aiquickdraw.com/v/ext.mp4"]}
    if full is not None:
        response["fullResultUrls"] = full
    http = FakeHttp(http_response(200, record(1, response=response)))

    # When the extension's status is read
    status = kie(http).read_status("veo_extend_task_xyz789", TaskKind.EXTEND)

    # Then resultUrls is the result
    assert status.video_urls == ("https://tempfile.aiquickdraw.com/v/ext.mp4",)


def test_a_generation_ignores_full_result_urls():
    # Given a generate task's record that (oddly) also has fullResultUrls
    response = {
        "resultUrls": ["https://tempfile.aiquickdraw.com/v/x.mp4"],
        "fullResultUrls": ["https://tempfile.aiquickdraw.com/v/other.mp4"],
    }
    http = FakeHttp(http_response(200, record(1, response=response)))

    # When its status is read as a generation
    status = kie(http).read_status("veo_task_abc", TaskKind.GENERATE)

    # Then resultUrls is the result
    assert status.video_urls == ("https://tempfile.aiquickdraw.com/v/x.mp4",)


@pytest.mark.parametrize(
    "response", [None, {}, {"resultUrls": []}, {"resultUrls": "not json ["}, {"resultUrls": "[]"}]
)
def test_a_success_without_result_urls_is_a_provider_error(response):
    # Given successFlag 1 but no usable URL
    http = FakeHttp(http_response(200, record(1, response=response)))

    # When its status is read
    with pytest.raises(ProviderError) as failed:
        kie(http).read_status("veo_task_abc", TaskKind.GENERATE)

    # Then that is the provider's error
    assert failed.value.code == "provider_error"


@pytest.mark.parametrize(
    ("flag", "error_code", "message", "code", "provider_code"),
    [
        (
            2,
            400,
            "Your prompt was flagged by Website as violating content policies.",
            "content_violation",
            "400",
        ),
        (3, 501, "Video generation failed.", "generation_failed", "501"),
        (2, 500, "Internal Error, Please try again later.", "generation_failed", "500"),
        (2, "null", "Video generation failed.", "generation_failed", None),
        (3, None, "", "generation_failed", None),
        (2, "408", "no upstream result for more than 10 minutes", "timeout", "408"),
    ],
)
def test_a_failed_task_reports_its_error(flag, error_code, message, code, provider_code):
    # Given successFlag 2 or 3 with errorCode as an int, null, the string "null" or a numeral
    body = record(flag, errorCode=error_code, errorMessage=message)
    http = FakeHttp(http_response(200, body))

    # When its status is read
    status = kie(http).read_status("veo_task_abc", TaskKind.GENERATE)

    # Then the task failed with our code; "null" is no code at all
    assert status.state is ProviderState.FAILED
    assert status.error is not None
    assert (status.error.code, status.error.provider_code) == (code, provider_code)
    assert status.error.provider_message == (message or None)
    assert not message or message not in status.error.message  # kie's words: audit only


def test_an_unknown_task_is_task_not_found():
    # Given record-info's answer for a task it does not know
    http = FakeHttp(http_response(200, envelope(422, "record is null")))

    # When its status is read
    with pytest.raises(ProviderError) as refused:
        kie(http).read_status("veo_task_nope", TaskKind.GENERATE)

    # Then it is task_not_found, and asking again will not help
    assert (refused.value.code, refused.value.retryable) == ("task_not_found", False)


@pytest.mark.parametrize(
    ("body_code", "code"),
    [(455, "provider_unavailable"), (500, "provider_error"), (429, "rate_limited")],
)
def test_a_passing_trouble_at_record_info_is_retryable(body_code, code):
    # Given record-info answering maintenance, a server error or a rate limit in the body
    http = FakeHttp(http_response(200, envelope(body_code, "try later")))

    # When the status is read
    with pytest.raises(ProviderError) as refused:
        kie(http).read_status("veo_task_abc", TaskKind.GENERATE)

    # Then the poller is told to keep asking
    assert (refused.value.code, refused.value.retryable) == (code, True)


def test_a_record_without_data_is_a_provider_error():
    # Given a 200 envelope with no data
    http = FakeHttp(http_response(200, envelope(200, "success", None)))

    # When the status is read
    with pytest.raises(ProviderError) as failed:
        kie(http).read_status("veo_task_abc", TaskKind.GENERATE)

    # Then it is the provider's error
    assert failed.value.code == "provider_error"


# --------------------------------------------------------------------------------- callbacks

SUCCESS_CALLBACK = {
    "code": 200,
    "msg": "Veo3.1 video generated successfully.",
    "data": {
        "taskId": "veo_task_abc",
        "info": {
            "resultUrls": ["https://tempfile.aiquickdraw.com/v/v.mp4"],
            "originUrls": ["https://tempfile.aiquickdraw.com/v/o.mp4"],
            "resolution": "1080p",
        },
        "promptJson": '{"aspectRatio":"9:16","model":"veo3_fast","prompt":"cat"}',
        "fallbackFlag": False,
    },
}
FAILURE_CALLBACK = {
    "code": 400,
    "msg": "Your prompt was flagged by Website as violating content policies.",
    "data": {"taskId": "veo_task_abc", "fallbackFlag": False},
}
STRING_URLS_CALLBACK = {
    "code": 200,
    "msg": "Veo3.1 video extension successful.",
    "data": {
        "taskId": "veo_task_abc",
        "info": {"resultUrls": '["https://tempfile.aiquickdraw.com/v/v.mp4"]'},
        "promptJson": {"prompt": "cat"},
    },
}


def signed_headers(task_id: str, timestamp: int | str, key: str = HMAC_KEY) -> dict[str, str]:
    """The signature as kie's webhook-verification page defines it."""
    digest = hmac.new(key.encode(), f"{task_id}.{timestamp}".encode(), hashlib.sha256).digest()
    return {
        "X-Webhook-Timestamp": str(timestamp),
        "X-Webhook-Signature": base64.b64encode(digest).decode(),
    }


@pytest.mark.parametrize("body", [SUCCESS_CALLBACK, FAILURE_CALLBACK, STRING_URLS_CALLBACK])
def test_an_unsigned_callback_names_its_task_when_no_key_is_configured(body):
    # Given no webhook key configured
    # When a success, failure or string-URL callback arrives without signature headers
    notice = kie().parse_callback(json.dumps(body).encode(), {})

    # Then it names kie's task
    assert notice.provider_task_id == "veo_task_abc"


def test_a_callback_using_the_snake_case_task_id_is_understood():
    # Given a callback shaped like the 4K schema (data.task_id)
    body = {"code": 200, "msg": "ok", "data": {"task_id": "veo_task_abc", "result_urls": []}}

    # When it is parsed
    notice = kie().parse_callback(json.dumps(body).encode(), {})

    # Then the task is named
    assert notice.provider_task_id == "veo_task_abc"


def test_a_callback_that_is_not_json_is_invalid():
    # Given a body that is not JSON
    # When it is parsed
    # Then it is refused
    with pytest.raises(InvalidCallback):
        kie().parse_callback(b"not json", {})


@pytest.mark.parametrize(
    "body",
    [b"[" * 1000 + b"]" * 1000, b'{"data": {"info": ' * 1000 + b"1" + b"}}" * 1000],
    ids=["arrays", "objects"],
)
def test_a_callback_nested_too_deeply_is_invalid_not_a_crash(body):
    with pytest.raises(InvalidCallback):
        kie().parse_callback(body, {})


@pytest.mark.parametrize("skew", [0, -299, 299, -300, 300])
def test_a_validly_signed_callback_is_accepted(skew):
    # Given a webhook key, and a callback signed with it at a time within ±300 s of now
    body = json.dumps(SUCCESS_CALLBACK).encode()
    headers = signed_headers("veo_task_abc", NOW + skew)

    # When it is parsed
    notice = kie(webhook_hmac_key=HMAC_KEY).parse_callback(body, headers)

    # Then it is accepted
    assert notice.provider_task_id == "veo_task_abc"


def test_signature_headers_are_matched_whatever_their_case():
    # Given API Gateway's lower-cased header names
    headers = {k.lower(): v for k, v in signed_headers("veo_task_abc", NOW).items()}

    # When the callback is parsed
    notice = kie(webhook_hmac_key=HMAC_KEY).parse_callback(
        json.dumps(FAILURE_CALLBACK).encode(), headers
    )

    # Then the signature is found and verified
    assert notice.provider_task_id == "veo_task_abc"


def _tampered(headers: dict[str, str]) -> dict[str, str]:
    signature = headers["X-Webhook-Signature"]
    flipped = ("B" if signature[0] == "A" else "A") + signature[1:]
    return headers | {"X-Webhook-Signature": flipped}


@pytest.mark.parametrize(
    ("case", "headers"),
    [
        ("wrong signature", _tampered(signed_headers("veo_task_abc", NOW))),
        ("signed with another key", signed_headers("veo_task_abc", NOW, key="other")),
        ("signed for another task", signed_headers("veo_task_other", NOW)),
        ("missing both headers", {}),
        (
            "missing the signature",
            {"X-Webhook-Timestamp": str(NOW)},
        ),
        (
            "missing the timestamp",
            {"X-Webhook-Signature": signed_headers("veo_task_abc", NOW)["X-Webhook-Signature"]},
        ),
        ("stale timestamp", signed_headers("veo_task_abc", NOW - 301)),
        ("future timestamp", signed_headers("veo_task_abc", NOW + 301)),
        ("timestamp in milliseconds", signed_headers("veo_task_abc", NOW * 1000)),
        (
            "timestamp not a number",
            signed_headers("veo_task_abc", NOW) | {"X-Webhook-Timestamp": "yesterday"},
        ),
        # int() of more than 4,300 digits raises ValueError (Python's str-digits limit): a 500
        (
            "timestamp of 5,000 digits",
            signed_headers("veo_task_abc", NOW) | {"X-Webhook-Timestamp": "9" * 5000},
        ),
        # Now, zero-padded and signed as sent: more digits than any Unix time (ms included) has
        ("timestamp of 14 digits", signed_headers("veo_task_abc", f"{NOW:014d}")),
        (
            "timestamp with a sign",
            {
                "X-Webhook-Timestamp": f"+{NOW}",
                "X-Webhook-Signature": signed_headers("veo_task_abc", NOW)["X-Webhook-Signature"],
            },
        ),
    ],
)
def test_a_badly_signed_callback_is_refused(case, headers):
    # Given a webhook key configured
    provider = kie(webhook_hmac_key=HMAC_KEY)

    # When a callback arrives whose signature is wrong, missing or out of the ±300 s window
    # Then it is refused
    with pytest.raises(InvalidCallback):
        provider.parse_callback(json.dumps(SUCCESS_CALLBACK).encode(), headers)


def test_a_signed_callback_naming_no_task_is_refused():
    # Given a webhook key configured and a body without a task id
    body = json.dumps({"code": 200, "msg": "ok", "data": {}}).encode()

    # When it is parsed, whatever the headers
    # Then nothing can be verified, so it is refused
    with pytest.raises(InvalidCallback):
        kie(webhook_hmac_key=HMAC_KEY).parse_callback(body, signed_headers("", NOW))


# ------------------------------------------------------------------------------------- rules


def test_kie_takes_callbacks_and_its_seed_range():
    # Given the kie adapter
    provider = kie()

    # Then it takes callbacks; seeds are 10000-99999; REFERENCE_2_VIDEO needs fast (and 16:9)
    assert provider.supports_callbacks is True
    assert provider.capabilities.seed_range == (10_000, 99_999)
    assert provider.capabilities.reference_modes == ("fast",)
    assert provider.capabilities.reference_aspect_ratios == ("16:9",)
    assert provider.capabilities.seed_range is not None
