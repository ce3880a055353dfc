"""The apixo adapter over its real HTTP layer (ProviderHttp and a requests.Session), fed the shapes
reference/providers.md §1 documents. A fake transport adapter answers with hand-built
`requests.Response`s, so the wire details are checked without a socket."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest
import requests
from requests.adapters import BaseAdapter
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError

from tests.helpers import apixo_status_body
from veo_relay import deadlines
from veo_relay.deadlines import Deadline
from veo_relay.errors import InvalidCallback, ProviderError
from veo_relay.providers.apixo import ApixoProvider
from veo_relay.providers.base import GenerationRequest, ProviderState, TaskKind
from veo_relay.providers.http import ProviderHttp

BASE = "https://api.apixo.ai"
KEY = "sk-apixo-test"
CALLBACK = "https://relay.example/v1/callbacks/apixo/vid_1.secret"
REQUEST = GenerationRequest(
    prompt="a fox", mode="fast", generation_type="TEXT_2_VIDEO", aspect_ratio="16:9"
)
Answer = Callable[[requests.PreparedRequest], requests.Response]


class FakeTransport(BaseAdapter):
    """Records every prepared request; answers each with the next scripted answer."""

    def __init__(self, *answers: Answer | Exception) -> None:
        super().__init__()
        self.answers = list(answers)
        self.sent: list[requests.PreparedRequest] = []
        self.timeouts: list[Any] = []

    def send(self, request, **kwargs):  # type: ignore[no-untyped-def]
        self.sent.append(request)
        self.timeouts.append(kwargs.get("timeout"))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        response = answer(request)
        response.request = request
        response.url = request.url
        return response

    def close(self) -> None:
        pass


def reply(status: int, body: Any, content_type: str = "application/json") -> Answer:
    def build(request: requests.PreparedRequest) -> requests.Response:
        response = requests.Response()
        response.status_code = status
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        response.raw = io.BytesIO(raw)
        response.headers["Content-Type"] = content_type
        response.encoding = "utf-8"
        return response

    return build


def redirect(status: int, location: str) -> Answer:
    def build(request: requests.PreparedRequest) -> requests.Response:
        response = reply(status, b"")(request)
        response.headers["Location"] = location
        return response

    return build


INTERNAL_PAGE = b"root:x:0:0 internal admin console, build 4.2, token=abc123"


def apixo(*answers: Answer | Exception, key: Callable[[], str | None] = lambda: KEY):
    http = ProviderHttp(BASE, key)
    transport = FakeTransport(*answers)
    http.session.mount("https://", transport)
    http.session.mount("http://", transport)
    return ApixoProvider(http), transport


def refused_connection() -> requests.ConnectionError:
    """What requests raises for a refused connection (urllib3's error, wrapped)."""
    return requests.ConnectionError(
        MaxRetryError(
            None,  # type: ignore[arg-type]
            f"{BASE}/api/v1/generateTask/veo-3-1",
            NewConnectionError(None, "Connection refused"),  # type: ignore[arg-type]
        )
    )


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The pauses between a submit's connect attempts, recorded instead of slept."""
    from veo_relay.providers import http

    slept: list[float] = []
    monkeypatch.setattr(http.time, "sleep", slept.append)
    return slept


def refusal(call: Callable[[], Any]) -> ProviderError:
    with pytest.raises(ProviderError) as raised:
        call()
    return raised.value


class TestSubmit:
    def test_a_callback_mode_submit_goes_out_as_documented(self):
        # Given apixo accepting the task
        provider, transport = apixo(
            reply(200, {"code": 200, "message": "success", "data": {"taskId": "task_123"}})
        )

        # When a generation is submitted in callback mode
        submission = provider.submit_generation(REQUEST, CALLBACK)

        # Then its task id is returned
        assert submission.provider_task_id == "task_123"
        # And the request was a JSON POST to the documented path, with our key as a bearer token
        [sent] = transport.sent
        assert sent.method == "POST"
        assert sent.url == f"{BASE}/api/v1/generateTask/veo-3-1"
        assert sent.headers["Authorization"] == f"Bearer {KEY}"
        assert sent.headers["Content-Type"] == "application/json"
        assert json.loads(sent.body) == {
            "request_type": "callback",
            "callback_url": CALLBACK,
            "input": {
                "mode": "fast",
                "prompt": "a fox",
                "generationType": "TEXT_2_VIDEO",
                "aspect_ratio": "16:9",
            },
        }

    @pytest.mark.parametrize(
        ("status", "message", "code", "retryable"),
        [
            (400, "Invalid request", "invalid_request", False),
            (401, "Invalid or missing API Key", "unauthorized", False),
            (402, "Insufficient balance", "insufficient_credits", False),
            (429, "Rate limit exceeded", "rate_limited", True),
            (500, "Internal server error", "provider_error", True),
            (503, "Service temporarily unavailable", "provider_unavailable", True),
        ],
    )
    def test_an_http_error_with_a_message_envelope_is_a_provider_error(
        self, status, message, code, retryable
    ):
        # Given apixo refusing with its envelope and a real HTTP status
        provider, _ = apixo(reply(status, {"code": status, "message": message, "data": None}))

        # When a generation is submitted
        error = refusal(lambda: provider.submit_generation(REQUEST, CALLBACK))

        # Then the refusal carries our code and apixo's status; apixo's words are kept for audit
        # but are not in the message a client may see
        assert error.code == code
        assert error.retryable is retryable
        assert error.raw_code == str(status)
        assert error.raw_message == message
        assert message not in str(error)
        assert str(status) in str(error)

    def test_a_validation_detail_is_kept(self):
        body = {
            "code": 400,
            "message": "Invalid request",
            "data": {"error": "Missing required field: input.prompt"},
        }
        provider, _ = apixo(reply(400, body))
        error = refusal(lambda: provider.submit_generation(REQUEST, None))
        assert error.code == "invalid_request"
        assert "Missing required field: input.prompt" in (error.raw_message or "")

    @pytest.mark.parametrize("data", [{}, None, {"taskId": ""}, {"taskId": 123}, {"id": "task_1"}])
    def test_an_acceptance_without_a_task_id_is_a_provider_error(self, data):
        provider, _ = apixo(reply(200, {"code": 200, "message": "success", "data": data}))
        assert refusal(lambda: provider.submit_generation(REQUEST, CALLBACK)).code == (
            "provider_error"
        )

    def test_a_gateway_html_page_is_a_provider_error(self):
        provider, _ = apixo(reply(502, b"<html>Bad Gateway</html>", "text/html"))
        error = refusal(lambda: provider.submit_generation(REQUEST, CALLBACK))
        assert error.code in ("provider_unavailable", "provider_error")
        assert error.retryable

    def test_a_gateway_page_is_not_copied_into_the_message(self):
        # Given apixo's address answering a bare text page (a gateway's, or anything else's)
        provider, _ = apixo(reply(500, INTERNAL_PAGE, "text/plain"))

        # When a generation is submitted
        error = refusal(lambda: provider.submit_generation(REQUEST, CALLBACK))

        # Then the page is kept for audit but is not in the message a client may be shown
        assert error.raw_message == INTERNAL_PAGE.decode()
        assert "internal admin" not in str(error) and "abc123" not in str(error)

    @pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
    def test_a_redirect_is_not_followed(self, status):
        # Given apixo's address redirecting to loopback, where an internal page would answer
        provider, transport = apixo(
            redirect(status, "http://127.0.0.1:8080/internal"),
            reply(500, INTERNAL_PAGE, "text/plain"),
        )

        # When a generation is submitted
        error = refusal(lambda: provider.submit_generation(REQUEST, CALLBACK))

        # Then only the submit was sent, and the redirect is a provider error that names no body
        assert [r.url for r in transport.sent] == [f"{BASE}/api/v1/generateTask/veo-3-1"]
        assert error.code == "provider_error"
        assert str(status) in str(error) and "internal" not in str(error)
        assert not error.created_nothing  # a redirect proves nothing about the submit

    def test_a_refused_connection_proves_nothing_was_created(self, pauses):
        # Given apixo unreachable (no connection was ever made)
        provider, transport = apixo(*[refused_connection()] * 4)

        # When a generation is submitted
        error = refusal(lambda: provider.submit_generation(REQUEST, CALLBACK))

        # Then the connect was tried four times, with urllib3's backoff, and the submit may be
        # retried elsewhere or later
        assert len(transport.sent) == 4 and pauses == [0.0, 1.0, 2.0]
        assert error.code == "provider_unavailable"
        assert error.retryable and error.created_nothing

    def test_a_refused_connection_is_not_tried_again_past_a_waiting_callers_time(self, pauses):
        # Given apixo unreachable, and a caller whose deadline leaves no time for another connect
        provider, transport = apixo(*[refused_connection()] * 4)
        deadline = Deadline.within(deadlines.MIN_INLINE_SUBMIT_SECONDS + 0.5)

        # When a generation is submitted with that deadline
        error = refusal(lambda: provider.submit_generation(REQUEST, CALLBACK, deadline))

        # Then the connect was tried once more (the pause is 0 s) but not after a 1 s pause
        assert len(transport.sent) == 2 and pauses == [0.0]
        assert error.code == "provider_unavailable" and error.created_nothing

    def test_the_transport_never_repeats_a_post_itself(self):
        # Given the session's retry policy (urllib3 retries a failed connect for any method)
        from veo_relay.providers.http import _STATUS_RETRY

        failed = ConnectTimeoutError("connect timed out")

        # Then a failed GET is retried, a failed POST is handed back at once (to the loop that
        # knows the caller's deadline)
        assert _STATUS_RETRY.increment("GET", BASE, error=failed).total == 2
        with pytest.raises(MaxRetryError):
            _STATUS_RETRY.increment("POST", BASE, error=failed)

    def test_a_submit_gets_the_full_timeouts_without_a_deadline_and_fits_one_with_it(self):
        accepted = {"code": 200, "message": "success", "data": {"taskId": "task_1"}}
        provider, transport = apixo(reply(200, accepted), reply(200, accepted))

        # When one submit has no deadline (the submit queue's) and one 10 s left (the API's)
        provider.submit_generation(REQUEST, CALLBACK)
        provider.submit_generation(REQUEST, CALLBACK, Deadline.within(10.0))

        # Then the first waits as long as ever, the second's connect and read fit in 10 s
        assert transport.timeouts[0] == (3.05, 20.0)
        connect, read = transport.timeouts[1]
        assert connect == 3.05 and 6.5 < read <= 10.0 - 3.05

    def test_a_submit_that_times_out_has_an_unknown_outcome(self):
        # Given apixo receiving the submit but not answering in time
        provider, _ = apixo(requests.ReadTimeout("read timed out"))

        # Then it is not retryable: apixo may have created (and charged for) the task
        error = refusal(lambda: provider.submit_generation(REQUEST, CALLBACK))
        assert error.code == "timeout"
        assert not error.retryable

    def test_the_key_is_read_for_each_request_and_only_then(self):
        # Given a key source that counts its calls
        calls = []

        keys = [KEY]

        def key() -> str:
            calls.append(1)
            return keys[-1]

        http = ProviderHttp(BASE, key)
        provider = ApixoProvider(http)

        # When a callback is parsed, no key is needed
        provider.parse_callback(json.dumps(apixo_status_body("t", "pending")).encode(), {})
        assert calls == []

        # When two requests are made, with the key rotated between them
        transport = FakeTransport(
            reply(200, apixo_status_body("t", "pending")),
            reply(200, apixo_status_body("t", "processing")),
        )
        http.session.mount("https://", transport)
        provider.read_status("t", TaskKind.GENERATE)
        keys.append("rotated-key")
        provider.read_status("t", TaskKind.GENERATE)
        # Then each request read the key (through the secrets cache) and used the current one
        assert calls == [1, 1]
        assert [s.headers["Authorization"] for s in transport.sent] == [
            f"Bearer {KEY}",
            "Bearer rotated-key",
        ]


class TestStatus:
    def test_the_status_is_read_on_the_documented_path_with_the_task_id(self):
        provider, transport = apixo(reply(200, apixo_status_body("task_1", "pending")))
        provider.read_status("task_1", TaskKind.GENERATE)
        [sent] = transport.sent
        assert sent.method == "GET"
        assert sent.url == f"{BASE}/api/v1/statusTask/veo-3-1?taskId=task_1"

    @pytest.mark.parametrize("state", ["pending", "processing"])
    def test_pending_and_processing_are_running(self, state):
        provider, _ = apixo(reply(200, apixo_status_body("task_1", state)))
        status = provider.read_status("task_1", TaskKind.GENERATE)
        assert status.state is ProviderState.RUNNING
        assert status.video_urls == () and status.error is None

    def test_success_parses_the_result_json_string(self):
        # Given the documented success body: resultJson is a JSON *string*
        body = apixo_status_body(
            "task_1", "success", video_url="https://cdn.apixo.ai/output/abc.mp4"
        )
        assert isinstance(body["data"]["resultJson"], str)
        provider, _ = apixo(reply(200, body))

        # When it is read
        status = provider.read_status("task_1", TaskKind.GENERATE)

        # Then the video URL comes out of it
        assert status.state is ProviderState.SUCCEEDED
        assert status.video_urls == ("https://cdn.apixo.ai/output/abc.mp4",)

    @pytest.mark.parametrize("result_json", [None, "", "not json", "{}", '{"resultUrls": []}'])
    def test_success_without_a_usable_result_is_a_provider_error(self, result_json):
        body = apixo_status_body("task_1", "success")
        body["data"]["resultJson"] = result_json
        provider, _ = apixo(reply(200, body))
        assert refusal(lambda: provider.read_status("task_1", TaskKind.GENERATE)).code == (
            "provider_error"
        )

    @pytest.mark.parametrize(
        ("fail_code", "code"),
        [
            ("CONTENT_VIOLATION", "content_violation"),
            ("NSFW_DETECTED", "content_violation"),
            ("SensitiveContentDetected", "content_violation"),
            ("PROCESSING_TIMEOUT", "timeout"),
            ("INSUFFICIENT_CREDITS", "insufficient_credits"),
            ("GENERATION_FAILED", "generation_failed"),
        ],
    )
    def test_a_failure_with_envelope_code_200_is_a_failed_task(self, fail_code, code):
        # Given the documented failure body: envelope code 200, state failed, failCode + failMsg
        body = apixo_status_body("task_1", "failed", fail_code=fail_code, fail_msg="It failed")
        assert body["code"] == 200
        provider, _ = apixo(reply(200, body))

        # When it is read
        status = provider.read_status("task_1", TaskKind.GENERATE)

        # Then the task failed, with our code, and apixo's words kept for audit only
        assert status.state is ProviderState.FAILED
        assert status.error is not None
        assert status.error.code == code
        assert status.error.provider_code == fail_code
        assert status.error.provider_message == "It failed"
        assert "It failed" not in status.error.message

    def test_an_unknown_task_is_task_not_found(self):
        provider, _ = apixo(reply(404, {"code": 404, "message": "Task not found", "data": None}))
        error = refusal(lambda: provider.read_status("task_x", TaskKind.GENERATE))
        assert error.code == "task_not_found"
        assert not error.retryable

    def test_a_status_read_is_not_redirected(self):
        # Given apixo's status route redirecting to the metadata service
        provider, transport = apixo(
            redirect(302, "http://169.254.169.254/latest/meta-data/"),
            reply(500, INTERNAL_PAGE, "text/plain"),
        )

        # When the status is read
        error = refusal(lambda: provider.read_status("task_1", TaskKind.GENERATE))

        # Then one request went out, to apixo, and nothing of the redirect's target is said
        assert len(transport.sent) == 1
        assert transport.sent[0].url.startswith(f"{BASE}/api/v1/statusTask/")
        assert error.code == "provider_error"
        assert "internal" not in str(error)
        # And it is asked again later: a redirect says nothing of the task, which may be paid for
        assert error.retryable


class TestCallback:
    @pytest.mark.parametrize("state", ["success", "failed"])
    def test_a_callback_names_its_task(self, state):
        # Given the documented callback body (the status body, for success and failure alike)
        body = json.dumps(apixo_status_body("task_9", state)).encode()
        provider, transport = apixo()

        # When it is parsed
        notice = provider.parse_callback(body, {"content-type": "application/json"})

        # Then it names the provider task, and apixo was not asked anything
        assert notice.provider_task_id == "task_9"
        assert transport.sent == []

    @pytest.mark.parametrize("body", [b"{}", b'{"data": null}', b'{"data": {"taskId": 5}}', b"[]"])
    def test_a_callback_without_a_task_id_names_none(self, body):
        provider, _ = apixo()
        assert provider.parse_callback(body, {}).provider_task_id is None

    def test_a_callback_that_is_not_json_is_invalid(self):
        provider, _ = apixo()
        with pytest.raises(InvalidCallback):
            provider.parse_callback(b"<html>", {})

    @pytest.mark.parametrize(
        "body",
        [
            b"[" * 1000 + b"]" * 1000,
            b'{"data": ' * 1000 + b"{}" + b"}" * 1000,
            b'{"data": {"taskId": "t", "x": ' + b"[" * 100_000,
        ],
        ids=["arrays", "objects", "unclosed"],
    )
    def test_a_callback_nested_too_deeply_is_invalid_not_a_crash(self, body):
        # Given a callback body nested 1,000 (or 100,000) deep
        provider, _ = apixo()

        # When it is parsed, then it is an invalid callback (not a RecursionError)
        with pytest.raises(InvalidCallback):
            provider.parse_callback(body, {})

    def test_a_callback_with_huge_numbers_is_parsed(self):
        body = b'{"code": ' + b"9" * 5000 + b', "x": 1e999, "data": {"taskId": "task_9"}}'
        provider, _ = apixo()
        assert provider.parse_callback(body, {}).provider_task_id == "task_9"
