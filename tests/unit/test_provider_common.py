"""What every provider adapter shares: the error taxonomy and `build_provider`.

Also home of the fakes the per-provider contract tests use: `FakeHttp` (a ProviderHttp that
records each request and answers from a script) and `http_response` (a hand-built
`requests.Response`). No test here opens a socket.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from veo_relay.providers import build_provider
from veo_relay.providers.apimart import ApimartProvider
from veo_relay.providers.apixo import ApixoProvider
from veo_relay.providers.http import ProviderHttp
from veo_relay.providers.kie import KieProvider
from veo_relay.providers.taxonomy import code_for_failure, error_for_status
from veo_relay.settings import ProviderSettings, RateLimit

BASE_URL = "https://provider.example"
LAYER = Path(__file__).resolve().parents[2] / "layers" / "shared"

# ------------------------------------------------------------------------------------- fakes


@dataclass
class Call:
    method: str
    path: str
    body: dict[str, Any] | None = None
    params: dict[str, str] | None = None


class FakeHttp(ProviderHttp):
    """Answers each request with the next scripted response and records what was asked."""

    def __init__(self, *responses: requests.Response) -> None:
        super().__init__(BASE_URL, lambda: "test-key")
        self.calls: list[Call] = []
        self._responses = list(responses)

    @property
    def session(self) -> requests.Session:  # type: ignore[override]
        raise AssertionError("contract tests never reach a real session")

    def reply(self, *responses: requests.Response) -> FakeHttp:
        self._responses.extend(responses)
        return self

    def post(self, path: str, body: dict[str, Any], deadline: Any = None) -> requests.Response:
        self.calls.append(Call("POST", path, body=json.loads(json.dumps(body))))
        return self._next()

    def get(self, path: str, params: dict[str, str] | None = None) -> requests.Response:
        self.calls.append(Call("GET", path, params=dict(params) if params is not None else None))
        return self._next()

    @property
    def only_call(self) -> Call:
        assert len(self.calls) == 1, self.calls
        return self.calls[0]

    def _next(self) -> requests.Response:
        assert self._responses, "the fake provider has no scripted answer left"
        return self._responses.pop(0)


def http_response(
    status: int, body: Any = None, *, text: str | None = None, content_type: str | None = None
) -> requests.Response:
    """A `requests.Response` as the session would return it: JSON `body`, or raw `text`."""
    response = requests.Response()
    response.status_code = status
    if text is not None:
        response._content = text.encode()
        response.headers["Content-Type"] = content_type or "text/plain; charset=UTF-8"
    else:
        response._content = json.dumps(body).encode()
        response.headers["Content-Type"] = content_type or "application/json"
    response.encoding = "utf-8"
    response.url = BASE_URL + "/"
    return response


# ---------------------------------------------------------------------------------- taxonomy


@pytest.mark.parametrize(
    ("status", "code", "retryable", "created_nothing"),
    [
        (400, "invalid_request", False, True),
        (401, "unauthorized", False, True),
        (402, "insufficient_credits", False, True),
        (403, "unauthorized", False, True),
        (404, "task_not_found", False, True),
        (422, "invalid_request", False, True),
        (429, "rate_limited", True, True),
        (455, "provider_unavailable", True, True),
        (500, "provider_error", True, False),
        (501, "generation_failed", False, False),
        (502, "provider_unavailable", True, False),
        (503, "provider_unavailable", True, True),
        (504, "provider_unavailable", True, False),
        (505, "provider_unavailable", False, True),
        (418, "invalid_request", False, False),
        (599, "provider_error", False, False),
    ],
)
def test_a_status_maps_to_code_retryability_and_whether_nothing_was_created(
    status, code, retryable, created_nothing
):
    # Given a provider refusal with only a status and a bland message
    # When it is mapped
    error = error_for_status(status, "refused")

    # Then the taxonomy decides all three, and the raw status is kept for audit
    assert (error.code, error.retryable, error.created_nothing) == (
        code,
        retryable,
        created_nothing,
    )
    assert error.raw_code == str(status)
    assert error.raw_message == "refused"


@pytest.mark.parametrize(
    ("status", "message", "code"),
    [
        (400, "Insufficient credits", "insufficient_credits"),
        (400, "TaskId not found, expired or not a veo-3-1 task.", "task_not_found"),
        (400, "TASKID_ERROR: TaskId not found, expired or not a veo-3-1 task.", "task_not_found"),
        (422, "record is null", "task_not_found"),
        (422, "recordInfo is null", "task_not_found"),
        (422, "Temporarily supports records within 14 days", "task_not_found"),
        (
            400,
            "Your prompt was flagged by Website as violating content policies.",
            "content_violation",
        ),
        (422, "Ratio error", "invalid_request"),
        # A refusal never becomes "timeout": that code means the submit's outcome is unknown.
        (400, "upstream timeout, try again", "invalid_request"),
        # Only input refusals are refined: a 403's "policy" is a permission problem.
        (403, "policy violation or missing permission", "unauthorized"),
    ],
)
def test_an_input_refusal_with_a_specific_message_maps_to_that(status, message, code):
    # Given a 400/422 whose message says more than its status
    # When it is mapped
    error = error_for_status(status, message)

    # Then the message decides the code; the status still decides the flags
    assert error.code == code
    assert error.created_nothing is True


def test_an_explicit_code_overrides_the_taxonomy():
    # Given an adapter that knows better than the status
    # When it names the code
    error = error_for_status(409, "TASKID_ERROR", "TASKID_ERROR", code="task_not_found")

    # Then that code is used and the raw code is kept
    assert (error.code, error.raw_code) == ("task_not_found", "TASKID_ERROR")


@pytest.mark.parametrize(
    ("raw_code", "message", "code"),
    [
        ("CONTENT_VIOLATION", "Content violates usage policy", "content_violation"),
        ("SensitiveContentDetected", None, "content_violation"),
        ("NSFW", None, "content_violation"),
        ("PROCESSING_TIMEOUT", None, "timeout"),
        ("INSUFFICIENT_CREDITS", None, "insufficient_credits"),
        ("TASKID_ERROR", None, "task_not_found"),
        ("GENERATION_FAILED", "Generation failed", "generation_failed"),
        (
            "400",
            "Your prompt was flagged by Website as violating content policies.",
            "content_violation",
        ),
        ("500", "Internal Error, Please try again later.", "generation_failed"),
        ("501", "Video generation failed.", "generation_failed"),
        ("408", "no upstream result", "timeout"),
        ("task_failed", "Upstream request timed out", "timeout"),
        ("task_failed", "Video generation failed", "generation_failed"),
        ("cancelled", None, "generation_failed"),
        (None, None, "generation_failed"),
    ],
)
def test_a_task_failure_maps_by_code_then_by_message(raw_code, message, code):
    # Given a failed task's provider code and message
    # When they are mapped
    # Then the code's own markers win, and a bare number or generic code defers to the message
    assert code_for_failure(raw_code, message) == code


# ---------------------------------------------------------------------------- build_provider


def _settings(name: str) -> ProviderSettings:
    return ProviderSettings(
        name=name,
        base_url=BASE_URL,
        api_key=None,
        download_origins=frozenset(),
        rate_limit=RateLimit(10, 10),
        first_wait_seconds=90,
    )


def _no_key_yet() -> str | None:
    raise AssertionError("a key is read for a request or a callback, not when building")


@pytest.mark.parametrize(
    ("name", "adapter", "supports_callbacks"),
    [
        ("apixo", ApixoProvider, True),
        ("kie", KieProvider, True),
        ("apimart", ApimartProvider, False),
    ],
)
def test_build_provider_builds_each_adapter_without_reading_the_key(
    name, adapter, supports_callbacks
):
    # Given the provider's settings and a key source that must not be called yet
    # When the provider is built
    provider = build_provider(_settings(name), _no_key_yet, _no_key_yet)

    # Then it is that adapter, named after the provider, with its own rules
    assert isinstance(provider, adapter)
    assert provider.name == name
    assert provider.supports_callbacks is supports_callbacks
    assert provider.capabilities.max_prompt_length == 10000


def test_build_provider_hands_kie_its_webhook_key_read_at_each_callback():
    # Given kie, whose callback key source has no key yet
    keys: list[str | None] = [None]
    provider = build_provider(_settings("kie"), _no_key_yet, lambda: keys[-1])
    body = json.dumps({"code": 200, "msg": "ok", "data": {"taskId": "veo_task_abc"}}).encode()

    # When an unsigned callback arrives, it is taken (kie's signing is off)
    provider.parse_callback(body, {})

    # When the key is then put into the secret, the next unsigned callback is refused
    from veo_relay.errors import InvalidCallback

    keys.append("secret")
    with pytest.raises(InvalidCallback):
        provider.parse_callback(body, {})


def test_build_provider_refuses_an_unknown_name():
    # Given settings for a provider nobody wrote
    # When it is built
    # Then that is a programming error
    with pytest.raises(ValueError, match="unknown provider"):
        build_provider(_settings("nope"), _no_key_yet, _no_key_yet)


def test_adapter_modules_are_imported_only_when_their_provider_is_built():
    # Given a fresh interpreter (so this process's imports do not count)
    script = textwrap.dedent(
        """
        import sys
        from veo_relay.providers import build_provider
        from veo_relay.settings import ProviderSettings, RateLimit
        adapters = {"veo_relay.providers." + n for n in ("apixo", "kie", "apimart")}
        before = sorted(adapters & set(sys.modules))
        settings = ProviderSettings(
            "kie", "https://k.example", None, frozenset(), RateLimit(1, 1), first_wait_seconds=90
        )
        build_provider(settings, lambda: None)
        after = sorted(adapters & set(sys.modules))
        print(before, after)
        """
    )

    # When the providers package is imported and one provider is built
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(LAYER)},
    )

    # Then no adapter module loads with the package, and building kie loads kie's alone
    assert result.stdout.strip() == "[] ['veo_relay.providers.kie']"


def test_requests_is_imported_only_when_a_provider_is_built():
    # Given a fresh interpreter (so this process's imports do not count)
    script = textwrap.dedent(
        """
        import sys
        from veo_relay.providers import build_provider
        from veo_relay.providers.base import ProviderState
        from veo_relay.settings import ProviderSettings, RateLimit
        before = "requests" in sys.modules
        settings = ProviderSettings(
            "apixo", "https://a.example", None, frozenset(), RateLimit(1, 1), first_wait_seconds=90
        )
        build_provider(settings, lambda: None)
        print(before, "requests" in sys.modules)
        """
    )

    # When the providers package and its types are imported, then one provider is built
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(LAYER)},
    )

    # Then the HTTP transport loads with the provider, not with the package (a cold start that
    # only needs the types, such as the API's reads, never pays for it)
    assert result.stdout.strip() == "False True"
