"""The Python client over a faked HTTP transport (`responses`): identity, retries that honour
Retry-After and never pay twice, typed errors, paging, wait and a checked download."""

from __future__ import annotations

import os
import queue
import stat
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from botocore.credentials import Credentials

from tests.client_fakes import (
    API,
    DOWNLOAD_URL,
    TASK_ID,
    VIDEO_BYTES,
    error_body,
    task_body,
)
from veo_relay_client import Client, TaskError, errors
from veo_relay_client.auth import SigV4


class FakeClock:
    """The client's sleep and clock: time passes only when the client sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client(clock: FakeClock) -> Client:
    return Client(API, sleep=clock.sleep, clock=clock)


@pytest.fixture
def http() -> Any:
    with responses.RequestsMock() as mock:
        yield mock


def test_create_sends_only_what_is_given_with_a_fresh_idempotency_key(
    client: Client, http: Any
) -> None:
    # Given the API accepts creates
    http.post(f"{API}/v1/videos", json=task_body("queued"), status=202)
    http.post(f"{API}/v1/videos", json=task_body("queued"), status=202)
    # When two videos are created
    first = client.create("a red fox in snow", provider="kie", resolution="1080p")
    client.create("a red fox in snow", provider="kie", resolution="1080p")
    # Then the body has the options given and no others, and each create has its own key
    sent = [call.request for call in http.calls]
    assert (
        sent[0].body == b'{"prompt": "a red fox in snow", "provider": "kie", "resolution": "1080p"}'
    )
    keys = [request.headers["Idempotency-Key"] for request in sent]
    assert keys[0] and keys[0] != keys[1]
    assert first.id == TASK_ID and first.status == "queued"


def test_a_create_retried_after_503_and_429_reuses_its_key_and_waits_retry_after(
    client: Client, clock: FakeClock, http: Any
) -> None:
    # Given the API is busy, then throttles with Retry-After, then accepts
    http.post(f"{API}/v1/videos", json=error_body("service_unavailable"), status=503)
    http.post(
        f"{API}/v1/videos", json=error_body("throttled"), status=429, headers={"Retry-After": "7"}
    )
    http.post(f"{API}/v1/videos", json=task_body("in_progress"), status=202)
    # When one create is made
    task = client.create("a fox", idempotency_key=None)
    # Then it was sent three times under one key, waiting as the 429 asked
    keys = {call.request.headers["Idempotency-Key"] for call in http.calls}
    assert len(http.calls) == 3 and len(keys) == 1
    assert clock.sleeps[1] == 7
    assert 0 < clock.sleeps[0] <= 0.5  # no Retry-After: a short jittered backoff
    assert task.status == "in_progress"


def test_a_given_idempotency_key_is_sent_as_given(client: Client, http: Any) -> None:
    http.post(f"{API}/v1/videos/{TASK_ID}/extend", json=task_body("queued"), status=202)
    client.extend(TASK_ID, "the fox dives", idempotency_key="my-key-1")
    assert http.calls[0].request.headers["Idempotency-Key"] == "my-key-1"


def test_retries_are_bounded(clock: FakeClock, http: Any) -> None:
    # Given an API that stays unavailable
    client = Client(API, max_retries=2, sleep=clock.sleep, clock=clock)
    for _ in range(3):
        http.get(f"{API}/v1/videos/{TASK_ID}", json=error_body("provider_unavailable"), status=503)
    # When a task is read / Then after two retries the provider's error is raised
    with pytest.raises(errors.ProviderUnavailable) as raised:
        client.get(TASK_ID)
    assert len(http.calls) == 3
    assert raised.value.status == 503


def test_a_retry_after_longer_than_the_client_waits_is_raised_at_once(
    client: Client, clock: FakeClock, http: Any
) -> None:
    # Given a 429 asking for more than max_retry_wait (60 s)
    http.post(
        f"{API}/v1/videos", json=error_body("throttled"), status=429, headers={"Retry-After": "90"}
    )
    # When a create is made / Then the Throttled error says when to try again, without a wait
    with pytest.raises(errors.Throttled) as raised:
        client.create("a fox")
    assert raised.value.retry_after == 90
    assert clock.sleeps == []


def test_connection_errors_are_retried_then_raised(
    client: Client, clock: FakeClock, http: Any
) -> None:
    # Given the API cannot be reached once, then answers
    http.get(f"{API}/v1/videos/{TASK_ID}", body=requests.ConnectionError("refused"))
    http.get(f"{API}/v1/videos/{TASK_ID}", json=task_body())
    # When a task is read / Then the retry reads it
    assert client.get(TASK_ID).id == TASK_ID
    assert len(clock.sleeps) == 1


def test_an_unreachable_api_is_a_connection_failure(clock: FakeClock, http: Any) -> None:
    client = Client(API, max_retries=1, sleep=clock.sleep, clock=clock)
    for _ in range(2):
        http.get(f"{API}/v1/videos/{TASK_ID}", body=requests.ConnectionError("refused"))
    with pytest.raises(errors.ConnectionFailed):
        client.get(TASK_ID)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            422,
            error_body("invalid_request", "resolution: 4k is not offered"),
            errors.InvalidRequest,
        ),
        (400, error_body("invalid_request"), errors.InvalidRequest),
        (401, error_body("unauthorized"), errors.Unauthorized),
        (402, error_body("budget_exceeded"), errors.BudgetExceeded),
        (404, error_body("not_found"), errors.NotFound),
        (409, error_body("conflict"), errors.Conflict),
        (413, error_body("payload_too_large"), errors.PayloadTooLarge),
        (415, error_body("unsupported_media_type"), errors.UnsupportedMediaType),
        (500, error_body("internal_error"), errors.InternalError),
        (502, error_body("content_violation"), errors.ContentViolation),
        (502, error_body("insufficient_credits"), errors.InsufficientCredits),
        (502, error_body("generation_failed"), errors.GenerationFailed),
        (502, error_body("timeout"), errors.ProviderTimeout),
        (502, error_body("task_not_found"), errors.ProviderTaskNotFound),
        (502, error_body("provider_error"), errors.ProviderError),
        # The provider refusing our key is the provider's error, not the caller's.
        (502, error_body("unauthorized"), errors.ProviderError),
        (502, error_body("invalid_request"), errors.ProviderError),
        # API Gateway's own answers: {"message": ...}, no code.
        (
            403,
            {"message": "The security token included in the request is invalid."},
            errors.Forbidden,
        ),
        (502, {"message": "Internal server error"}, errors.ProviderError),
    ],
)
def test_each_error_answer_is_its_own_exception_carrying_status_code_and_message(
    status: int, body: dict[str, Any], expected: type[errors.VeoRelayError], http: Any
) -> None:
    # Given the API answers with an error
    http.get(f"{API}/v1/videos/{TASK_ID}", json=body, status=status)
    # When a task is read / Then that error's class is raised, with what the API said
    with pytest.raises(errors.VeoRelayError) as raised:
        Client(API, max_retries=0).get(TASK_ID)
    assert type(raised.value) is expected
    assert raised.value.status == status
    detail = body.get("error") or {}
    assert raised.value.message == detail.get("message", body.get("message"))
    if detail:
        assert raised.value.code == detail["code"]


def test_an_unknown_code_is_still_a_veo_relay_error_with_its_code(http: Any) -> None:
    http.get(f"{API}/v1/videos/{TASK_ID}", json=error_body("gone_fishing", "later"), status=418)
    with pytest.raises(errors.VeoRelayError) as raised:
        Client(API).get(TASK_ID)
    assert (raised.value.status, raised.value.code, raised.value.message) == (
        418,
        "gone_fishing",
        "later",
    )


def test_list_reads_every_page_passing_the_cursor(client: Client, http: Any) -> None:
    # Given two pages of tasks
    first = [task_body(id=f"vid_{i:024x}") for i in range(2)]
    http.get(
        f"{API}/v1/videos",
        json={"items": first, "next_cursor": "c1"},
        match=[responses.matchers.query_param_matcher({"limit": "100", "status": "completed"})],
    )
    http.get(
        f"{API}/v1/videos",
        json={"items": [task_body(id="vid_" + "f" * 24)], "next_cursor": None},
        match=[
            responses.matchers.query_param_matcher(
                {"limit": "100", "status": "completed", "cursor": "c1"}
            )
        ],
    )
    # When the caller's tasks are listed
    ids = [task.id for task in client.list(status="completed")]
    # Then both pages are read, in order
    assert ids == [f"vid_{0:024x}", f"vid_{1:024x}", "vid_" + "f" * 24]


def test_the_local_stack_is_told_the_principal_and_nothing_is_signed(http: Any) -> None:
    http.get(f"{API}/v1/usage", json=_usage())
    http.get(f"{API}/v1/usage", json=_usage())
    Client(API, principal="alice").usage()
    Client(API).usage()
    first, second = (call.request.headers for call in http.calls)
    assert first["X-Local-Principal"] == "alice" and "Authorization" not in first
    assert "X-Local-Principal" not in second  # the stack's default, local-user


def test_a_deployed_stack_is_signed_for_execute_api_in_its_urls_region(http: Any) -> None:
    # Given a deployed API's URL and the caller's credentials
    url = "https://abc123.execute-api.eu-west-1.amazonaws.com"
    credentials = Credentials("AKIDEXAMPLE", "secret")
    client = Client(url, auth=SigV4(credentials, "eu-west-1"), max_retries=0)
    http.post(f"{url}/v1/videos", json=task_body("queued"), status=202)
    # When a create is sent
    client.create("a fox")
    # Then it is signed, the Idempotency-Key within the signature, and no local header
    headers = http.calls[0].request.headers
    authorization = headers["Authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/execute-api/aws4_request" in authorization
    assert "idempotency-key" in authorization.split("SignedHeaders=")[1]
    assert "X-Local-Principal" not in headers


def test_a_deployed_stack_finds_the_region_in_its_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    client = Client("https://abc123.execute-api.ap-south-1.amazonaws.com/")
    assert isinstance(client._auth, SigV4) and client._auth._region == "ap-south-1"


def test_a_principal_is_refused_for_a_deployed_stack() -> None:
    with pytest.raises(ValueError, match="signature"):
        Client("https://api.example.com", principal="alice")


# wait ------------------------------------------------------------------------------------------


def test_wait_polls_with_growing_jittered_pauses_until_the_task_ends(
    client: Client, clock: FakeClock, http: Any
) -> None:
    # Given a task that runs for a few reads, then completes
    for status in ("queued", "in_progress", "in_progress", "storing", "completed"):
        http.get(f"{API}/v1/videos/{TASK_ID}", json=task_body(status))
    seen: list[str] = []
    # When it is waited for
    task = client.wait(
        TASK_ID, interval=1, max_interval=3, on_update=lambda t: seen.append(t.status)
    )
    # Then every state was seen, and each pause lies in its jittered, capped step
    assert task.status == "completed" and task.video is not None
    assert seen == ["queued", "in_progress", "in_progress", "storing", "completed"]
    for pause, step in zip(clock.sleeps, (1, 2, 3, 3), strict=True):
        assert step / 2 <= pause <= step


def test_wait_returns_a_failed_task(client: Client, http: Any) -> None:
    http.get(f"{API}/v1/videos/{TASK_ID}", json=task_body("failed"))
    task = client.wait(TASK_ID)
    assert task.error is not None and task.error.code == "content_violation"


def test_wait_times_out_with_the_last_state_seen(
    client: Client, clock: FakeClock, http: Any
) -> None:
    # Given a task that never ends
    http.get(f"{API}/v1/videos/{TASK_ID}", json=task_body("in_progress"))
    # When it is waited for, for 10 s / Then WaitTimeout carries it, after about 10 s
    with pytest.raises(errors.WaitTimeout) as raised:
        client.wait(TASK_ID, timeout=10, interval=1, max_interval=2)
    assert raised.value.task.status == "in_progress"
    assert 10 <= clock.now <= 12


def test_a_webhook_notification_ends_the_wait_at_once(http: Any) -> None:
    # Given a task that completes, and a webhook receiver that has just been told so
    http.get(f"{API}/v1/videos/{TASK_ID}", json=task_body("in_progress"))
    http.get(f"{API}/v1/videos/{TASK_ID}", json=task_body("completed"))
    notifications: queue.Queue[Any] = queue.Queue()
    notifications.put({"type": "video.completed", "data": task_body("completed")})
    notifications.put({"type": "video.completed", "data": task_body("completed")})  # a retry
    started = time.monotonic()
    # When the task is waited for with a poll interval of a minute
    task = Client(API).wait(TASK_ID, interval=60, notifications=notifications)
    # Then the notification, not the poll, ended the pause; the task was read from the API
    assert task.status == "completed"
    assert time.monotonic() - started < 5
    assert len(http.calls) == 2
    assert notifications.empty()  # the duplicate is answered by the same read


# download --------------------------------------------------------------------------------------


def test_download_streams_the_video_checks_it_and_reports_progress(
    client: Client, http: Any, tmp_path: Path
) -> None:
    # Given a completed task and its stored video
    http.get(f"{API}/v1/videos/{TASK_ID}", json=task_body("completed"))
    http.get(DOWNLOAD_URL, body=VIDEO_BYTES, headers={"Content-Length": str(len(VIDEO_BYTES))})
    progress: list[tuple[int, int | None]] = []
    target = tmp_path / "out" / "fox.mp4"
    # When it is downloaded
    client.download(TASK_ID, target, on_progress=lambda done, total: progress.append((done, total)))
    # Then the file holds the video, nothing else is left beside it, and progress reached the end
    assert target.read_bytes() == VIDEO_BYTES
    assert [p.name for p in target.parent.iterdir()] == ["fox.mp4"]
    assert progress[-1] == (len(VIDEO_BYTES), len(VIDEO_BYTES))
    # The presigned URL carries its own authorisation: nothing of ours goes with it
    assert "X-Local-Principal" not in http.calls[1].request.headers


def test_a_downloaded_file_has_the_mode_any_new_file_gets(http: Any, tmp_path: Path) -> None:
    # Given the usual umask
    http.get(f"{API}/v1/videos/{TASK_ID}", json=task_body("completed"))
    http.get(DOWNLOAD_URL, body=VIDEO_BYTES)
    previous = os.umask(0o022)
    try:
        # When a video is downloaded
        Client(API).download(TASK_ID, tmp_path / "fox.mp4")
    finally:
        os.umask(previous)
    # Then others may read it, as any file the user creates (not a private temporary file)
    assert stat.S_IMODE((tmp_path / "fox.mp4").stat().st_mode) == 0o644


def test_a_download_whose_sha256_does_not_match_leaves_no_file(http: Any, tmp_path: Path) -> None:
    # Given the bytes served are not the stored video's (same size)
    http.get(f"{API}/v1/videos/{TASK_ID}", json=task_body("completed"))
    http.get(DOWNLOAD_URL, body=VIDEO_BYTES[:-1] + b"y")
    target = tmp_path / "fox.mp4"
    target.write_bytes(b"an older file")
    # When it is downloaded / Then ChecksumMismatch, no partial file, the older file untouched
    with pytest.raises(errors.ChecksumMismatch):
        Client(API, principal="alice").download(TASK_ID, target)
    assert [p.name for p in tmp_path.iterdir()] == ["fox.mp4"]
    assert target.read_bytes() == b"an older file"


def test_a_refused_download_url_is_a_download_failure(http: Any, tmp_path: Path) -> None:
    http.get(f"{API}/v1/videos/{TASK_ID}", json=task_body("completed"))
    http.get(DOWNLOAD_URL, status=403, body=b"<Error>Request has expired</Error>")
    with pytest.raises(errors.DownloadFailed) as raised:
        Client(API).download(TASK_ID, tmp_path / "fox.mp4")
    assert raised.value.status == 403
    assert list(tmp_path.iterdir()) == []


def test_a_task_not_completed_has_nothing_to_download(http: Any, tmp_path: Path) -> None:
    http.get(f"{API}/v1/videos/{TASK_ID}", json=task_body("in_progress"))
    with pytest.raises(errors.TaskNotCompleted, match="in_progress"):
        Client(API).download(TASK_ID, tmp_path / "fox.mp4")


# the rest of the routes ------------------------------------------------------------------------


def test_cancel_delete_usage_capabilities_and_the_webhook_secret(http: Any) -> None:
    client = Client(API)
    cancelled = task_body("failed", error={"code": "cancelled", "message": "cancelled"})
    http.post(f"{API}/v1/videos/{TASK_ID}/cancel", json=cancelled)
    http.delete(f"{API}/v1/videos/{TASK_ID}", status=204)
    http.get(
        f"{API}/v1/usage",
        json=_usage(),
        match=[responses.matchers.query_param_matcher({"month": "2026-12"})],
    )
    http.get(f"{API}/v1/capabilities", json={"providers": {"kie": {}}, "auto_order": ["kie"]})
    http.get(f"{API}/v1/webhook-secret", json={"secret": "whsec_abc"})
    http.post(f"{API}/v1/webhook-secret/rotate", json={"secret": "whsec_def"})

    assert client.cancel(TASK_ID).error == TaskError(code="cancelled", message="cancelled")
    client.delete(TASK_ID)
    usage = client.usage("2026-12")
    assert (usage.month, usage.spent_usd, usage.budget_usd, usage.tasks["completed"]) == (
        "2026-12",
        0.2,
        None,
        1,
    )
    assert client.capabilities()["auto_order"] == ["kie"]
    assert client.webhook_secret() == "whsec_abc"
    assert client.rotate_webhook_secret() == "whsec_def"


def test_a_delete_whose_answer_was_lost_is_done_when_its_retry_finds_nothing(
    client: Client, http: Any
) -> None:
    # Given a DELETE that went through but whose answer was lost, so its retry is 404
    http.delete(f"{API}/v1/videos/{TASK_ID}", body=requests.ConnectionError("reset"))
    http.delete(f"{API}/v1/videos/{TASK_ID}", json=error_body("not_found"), status=404)
    # When the task is deleted / Then that is the delete's success
    client.delete(TASK_ID)
    assert len(http.calls) == 2


def test_a_delete_of_an_unknown_task_is_not_found(http: Any) -> None:
    http.delete(f"{API}/v1/videos/{TASK_ID}", json=error_body("not_found"), status=404)
    with pytest.raises(errors.NotFound):
        Client(API).delete(TASK_ID)


def test_delete_of_a_task_in_flight_is_a_conflict(http: Any) -> None:
    http.delete(f"{API}/v1/videos/{TASK_ID}", json=error_body("conflict", "in flight"), status=409)
    with pytest.raises(errors.Conflict, match="in flight"):
        Client(API).delete(TASK_ID)


def _usage() -> dict[str, Any]:
    return {
        "month": "2026-12",
        "spent_usd": 0.2,
        "reserved_usd": 0.0,
        "budget_usd": None,
        "tasks": {"queued": 0, "in_progress": 0, "storing": 0, "completed": 1, "failed": 0},
    }
