"""Unit tests for veo_relay.webhooks: the checks on a client's webhook URL, the queue's messages,
the POST's SSRF defences and the retry schedule. No sockets: DNS is a fake
``socket.getaddrinfo`` and the connection pool (``webhooks.pinned_pool``) a recording fake."""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from aws_lambda_powertools import Logger

from tests.helpers import FakeDns, load_event
from veo_relay import webhooks
from veo_relay.errors import InvalidRequest, TaskNotFound
from veo_relay.safe_urls import RefusedUrl, UnresolvableHost
from veo_relay.tasks import StoredVideo, Task, TaskError, TaskStatus
from veo_relay.webhook_signing import sign
from veo_relay.webhooks import (
    Delivery,
    WebhookGaveUp,
    WebhookOutcome,
    check_webhook_url,
    deliver,
    delivery_from_message,
    post,
)

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
PUBLIC_IP = "93.184.216.34"


# ------------------------------------------------------------------------------------ fixtures


@pytest.fixture(autouse=True, scope="module")
def parent_logger() -> Logger:
    """The module's child logger needs its parent, as a handler module creates it in Lambda."""
    return Logger(service=webhooks.logger.service, level="WARNING")


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    fake = FakeDns(
        {
            "hooks.example.com": [PUBLIC_IP],
            "localhost": ["127.0.0.1"],
            "internal.example.com": ["10.0.0.5"],
            "metadata.example.com": ["169.254.169.254"],
            "mixed.example.com": [PUBLIC_IP, "192.168.1.10"],
            "mapped.example.com": ["::ffff:10.0.0.5"],
            "ula.example.com": ["fd00::1"],
            "rebind.example.com": ["127.0.0.1"],
        }
    )
    monkeypatch.setattr(socket, "getaddrinfo", fake.getaddrinfo)
    return fake


@dataclass
class FakeSocket:
    answer: bytes
    timeouts: list[float] = field(default_factory=list)

    def settimeout(self, seconds: float) -> None:
        self.timeouts.append(seconds)

    def recv(self, size: int) -> bytes:
        chunk, self.answer = self.answer[:size], self.answer[size:]
        return chunk


@dataclass
class FakeConnection:
    address: str
    target: Any
    connect_timeout: float
    answer: bytes
    requests: list[dict[str, Any]] = field(default_factory=list)
    sock: FakeSocket | None = None
    timeout: float | None = None
    closed: bool = False

    def connect(self) -> None:
        self.sock = FakeSocket(self.answer)

    def request(self, method: str, path: str, **kwargs: Any) -> None:
        self.requests.append({"method": method, "path": path, **kwargs})

    def close(self) -> None:
        self.closed = True


@dataclass
class FakeConnections:
    """Stands in for `pinned_connection`: records the vetted address each connection would go to;
    every receiver answers `answer`."""

    answer: bytes = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
    connections: list[FakeConnection] = field(default_factory=list)

    def __call__(self, address: str, target: Any, connect_timeout: float) -> FakeConnection:
        connection = FakeConnection(address, target, connect_timeout, self.answer)
        self.connections.append(connection)
        return connection


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> FakeConnections:
    fake = FakeConnections()
    monkeypatch.setattr(webhooks, "pinned_connection", fake)
    return fake


# --------------------------------------------------------------------------- check_webhook_url


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/veo",
        "https://hooks.example.com:8443/veo?tenant=1",
        f"https://{PUBLIC_IP}/hook",
        "https://[2606:4700:4700::1111]/hook",
    ],
)
@pytest.mark.parametrize("allow_loopback", [False, True])
def test_a_public_https_url_is_accepted_without_any_dns_lookup(url, allow_loopback, dns):
    # Given a public https URL
    # When it is checked at create
    check_webhook_url(url, allow_loopback)

    # Then it passes, and nothing was resolved (addresses are checked at each delivery)
    assert dns.queries == []


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/veo",
        "http://93.184.216.34/hook",
    ],
)
@pytest.mark.parametrize("allow_loopback", [False, True])
def test_plain_http_is_refused_unless_it_is_loopback_under_allow_loopback(url, allow_loopback):
    # Given an http URL to a host that is not loopback
    # When it is checked, Then it is refused naming webhook_url, whatever allow_loopback says
    with pytest.raises(InvalidRequest, match="https") as refused:
        check_webhook_url(url, allow_loopback)
    assert refused.value.field == "webhook_url"
    assert str(refused.value).startswith("webhook_url: ")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://127.0.0.2:8080/hook",
        "http://localhost:8080/hook",
        "http://[::1]:8080/hook",
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://[::1]/hook",
    ],
)
def test_loopback_is_refused_by_default_and_allowed_with_allow_loopback(url):
    # Given a loopback receiver's URL
    # When checked without allow_loopback, Then it is refused naming webhook_url
    with pytest.raises(InvalidRequest) as refused:
        check_webhook_url(url, allow_loopback=False)
    assert refused.value.field == "webhook_url"

    # When checked with allow_loopback (the offline stack), Then it passes
    check_webhook_url(url, allow_loopback=True)


@pytest.mark.parametrize(
    "host",
    [
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "192.0.2.10",
        "198.18.0.1",
        "224.0.0.1",
        "255.255.255.255",
        "[fd00::1]",
        "[fe80::1]",
        "[::]",
        "[::ffff:127.0.0.1]",
        "[::ffff:10.0.0.1]",
        "[64:ff9b::a00:1]",
        "[2002:a00:1::]",
        "[2001:db8::1]",
    ],
)
@pytest.mark.parametrize("allow_loopback", [False, True])
def test_private_and_special_ip_literals_are_refused(host, allow_loopback):
    # Given an https URL whose host is a private or special-purpose address literal
    url = f"https://{host}/hook"

    # When it is checked, Then it is refused naming webhook_url, even under allow_loopback
    with pytest.raises(InvalidRequest) as refused:
        check_webhook_url(url, allow_loopback)
    assert refused.value.field == "webhook_url"


@pytest.mark.parametrize(
    "url",
    [
        "https://user:pass@hooks.example.com/hook",
        "https://hooks.example.com@127.0.0.1/hook",
        "https://hooks.example.com:443@10.0.0.1/hook",
        "https://hooks.example.com\\@127.0.0.1/hook",
        "https://2130706433/hook",
        "https://0x7f000001/hook",
        "https://0x7f.1/hook",
        "https://0177.0.0.1/hook",
        "https://127.1/hook",
        "http://127.1:8080/hook",
        "http://017700000001:8080/hook",
        "https://10.0.0.1./hook",
        "https://hooks.example.com /hook",
        "https://hooks.exämple.com/hook",
        "ftp://hooks.example.com/hook",
        "file:///etc/passwd",
        "hooks.example.com/hook",
        "https:///hook",
        "https://hooks.example.com:0/hook",
        "https://hooks.example.com:70000/hook",
        "",
    ],
)
@pytest.mark.parametrize("allow_loopback", [False, True])
def test_userinfo_numeric_host_and_malformed_tricks_are_refused(url, allow_loopback):
    # Given a URL that hides its real host, or is not an http(s) URL at all
    # When it is checked, Then it is refused naming webhook_url, even under allow_loopback
    with pytest.raises(InvalidRequest) as refused:
        check_webhook_url(url, allow_loopback)
    assert refused.value.field == "webhook_url"
    assert str(refused.value).startswith("webhook_url: ")


# ------------------------------------------------------------------------ delivery_from_message


def test_a_video_completed_event_from_the_bus_is_a_first_attempt():
    # Given the webhook queue's sample message (an EventBridge event from our bus)
    body = load_event("webhook_video_completed")["Records"][0]["body"]

    # When it is read
    delivery = delivery_from_message(body)

    # Then it is the first attempt of video.completed for the event's task, due at once
    assert delivery == Delivery(
        event_type="video.completed", task_id="vid_0123456789abcdef01234567", attempt=1
    )
    assert delivery.not_before == 0.0
    assert delivery.message_id == "msg_vid_0123456789abcdef01234567_completed"


def test_a_video_failed_event_is_a_video_failed_delivery_with_its_own_message_id():
    # Given a Video Failed event for a task
    body = json.dumps(
        {"detail-type": "Video Failed", "source": "veo-relay", "detail": {"id": "vid_abc"}}
    )

    # When it is read
    delivery = delivery_from_message(body)

    # Then it is video.failed, and its message id differs from the completion's
    assert (delivery.event_type, delivery.task_id, delivery.attempt) == (
        "video.failed",
        "vid_abc",
        1,
    )
    assert delivery.message_id == "msg_vid_abc_failed"


def test_a_queued_retry_round_trips_through_the_webhook_queue():
    # Given a retry the sender queued (captured from a fake SQS client)
    sent: list[dict[str, Any]] = []
    sqs = SimpleNamespace(send_message=lambda **kwargs: sent.append(kwargs))
    retry = Delivery("video.completed", "vid_abc", attempt=3, not_before=time.time() + 30.5)
    webhooks.WebhookQueue(sqs, "https://sqs.example/q").send(retry)

    # When its body is read back
    (message,) = sent
    delivery = delivery_from_message(message["MessageBody"])

    # Then it is the same delivery (same message id), delayed until it is due
    assert delivery == retry
    assert delivery.message_id == "msg_vid_abc_completed"
    assert message["QueueUrl"] == "https://sqs.example/q"
    assert 30 <= message["DelaySeconds"] <= 31


def test_a_retry_further_than_sqs_allows_is_delayed_by_the_maximum():
    # Given a retry due in ten hours
    sent: list[dict[str, Any]] = []
    sqs = SimpleNamespace(send_message=lambda **kwargs: sent.append(kwargs))

    # When it is queued
    webhooks.WebhookQueue(sqs, "q").send(Delivery("video.failed", "vid_a", 5, time.time() + 36000))

    # Then SQS's own limit (15 minutes) is the delay; the sender defers it again when it comes
    assert sent[0]["DelaySeconds"] == 900


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"detail-type": "Video Started", "detail": {"id": "vid_a"}}),
        json.dumps({"detail-type": "Video Completed", "detail": {}}),
        json.dumps({"detail-type": "Video Completed", "detail": {"id": 12}}),
        json.dumps({"detail-type": "Video Completed"}),
        json.dumps({}),
    ],
    ids=["other-type", "no-id", "numeric-id", "no-detail", "empty"],
)
def test_other_messages_are_refused(body):
    # Given a message that is neither a video event nor a retry
    # When it is read, Then it is refused
    with pytest.raises(ValueError, match="Video Completed"):
        delivery_from_message(body)


def test_a_message_that_is_not_json_is_refused():
    with pytest.raises(ValueError):
        delivery_from_message("not json")


# ----------------------------------------------------------------------------------------- post


@pytest.mark.parametrize(
    "host",
    [
        "internal.example.com",
        "metadata.example.com",
        "mixed.example.com",
        "mapped.example.com",
        "ula.example.com",
        "rebind.example.com",
    ],
)
@pytest.mark.parametrize("allow_loopback", [False, True])
def test_post_refuses_a_host_that_resolves_to_a_private_address(
    host, allow_loopback, dns, connections
):
    # Given an https URL whose name resolves (wholly or partly) to a non-public address
    url = f"https://{host}/hook"

    # When it is posted to, Then it is refused after DNS, before any connection
    with pytest.raises(RefusedUrl, match="forbidden address"):
        post(url, {}, b"{}", allow_loopback, 15)
    assert dns.queries == [host]
    assert connections.connections == []


def test_post_sends_to_the_vetted_address_with_the_hosts_name(dns, connections):
    # Given a public receiver
    headers = {"webhook-id": "msg_1", "Content-Type": "application/json"}

    # When it is posted to
    status = post("https://hooks.example.com/veo?tenant=1", headers, b'{"a": 1}', False, 15)

    # Then the request went to the address DNS gave, with the name as Host, and the connection
    # was closed once the status line was read
    assert status == 200
    (connection,) = connections.connections
    assert connection.address == PUBLIC_IP
    assert connection.target.host == "hooks.example.com"
    assert connection.closed
    (request,) = connection.requests
    assert request["method"] == "POST"
    assert request["path"] == "/veo?tenant=1"
    assert request["body"] == b'{"a": 1}'
    assert request["headers"]["Host"] == "hooks.example.com"
    assert request["headers"]["Connection"] == "close"
    assert request["headers"]["webhook-id"] == "msg_1"


def test_post_returns_an_error_status_rather_than_raising(dns, connections):
    # Given a receiver that answers 503
    connections.answer = b"HTTP/1.1 503 Service Unavailable\r\n\r\n"

    # When it is posted to, Then the status comes back for the caller's retry decision
    assert post("https://hooks.example.com/veo", {}, b"{}", False, 15) == 503


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080/hook", "https://127.0.0.1:8443/hook", "http://localhost:8080/"]
)
def test_post_to_loopback_only_with_allow_loopback(url, dns, connections):
    # Given a loopback receiver
    # When posted to without allow_loopback, Then it is refused and nothing connects
    with pytest.raises(RefusedUrl):
        post(url, {}, b"{}", False, 15)
    assert connections.connections == []

    # When posted to with allow_loopback, Then it goes to 127.0.0.1
    assert post(url, {}, b"{}", True, 15) == 200
    assert [c.address for c in connections.connections] == ["127.0.0.1"]


def test_a_public_name_resolving_to_loopback_is_refused_even_with_allow_loopback(dns, connections):
    # Given a name (not localhost) that DNS points at 127.0.0.1, over plain http
    # When posted to with allow_loopback, Then it is refused: only a loopback host may be http
    with pytest.raises(RefusedUrl):
        post("http://rebind.example.com:8080/hook", {}, b"{}", True, 15)
    assert connections.connections == []


def test_localhost_resolving_elsewhere_is_refused_with_allow_loopback(dns, connections):
    # Given a localhost that resolves to a private, not a loopback, address
    dns.table["localhost"] = ["10.0.0.7"]

    # When posted to with allow_loopback, Then it is refused
    with pytest.raises(RefusedUrl, match="forbidden address"):
        post("http://localhost:8080/hook", {}, b"{}", True, 15)
    assert connections.connections == []


def test_post_to_an_unresolvable_host_is_a_transient_error(dns, connections):
    # Given a name DNS does not know
    # When posted to, Then it fails as transient (retried), and nothing connects
    with pytest.raises(UnresolvableHost):
        post("https://nowhere.example.com/hook", {}, b"{}", False, 15)
    assert connections.connections == []


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        (b"HTTP/1.1 204 No Content\r\n\r\n", 204),
        (b"HTTP/1.0 410 Gone\r\n", 410),
        (b"HTTP/1.1 200\r\n", 200),  # no reason phrase
        (b"HTTP/1.1 500 Internal Server Error\n", 500),  # a bare LF
    ],
)
def test_post_reads_the_status_from_the_status_line(answer, status, dns, connections):
    # Given a receiver's answer
    connections.answer = answer
    # When it is posted to, Then its status line's status is the answer
    assert post("https://hooks.example.com/veo", {}, b"{}", False, 15) == status


@pytest.mark.parametrize(
    "answer",
    [
        b"",  # closed at once
        b"HTTP/1.1 200 OK",  # closed inside the status line
        b"SMTP 200 ready\r\n",
        b"HTTP/2 200\r\n",
        b"HTTP/1.1 20 OK\r\n",
        b"HTTP/1.1 " + b"2" * 2000,  # a status line without end
    ],
)
def test_post_refuses_an_answer_without_an_http_status_line(answer, dns, connections):
    # Given a receiver whose answer does not start with an HTTP/1.x status line
    connections.answer = answer
    # When it is posted to, Then it is a protocol error (retried), and the connection is closed
    with pytest.raises(webhooks.ProtocolError):
        post("https://hooks.example.com/veo", {}, b"{}", False, 15)
    assert all(c.closed for c in connections.connections)


def test_each_read_of_the_status_line_waits_only_for_what_is_left_of_the_deadline(dns, connections):
    # Given a receiver that answers
    # When it is posted to within 6 s in all
    post("https://hooks.example.com/veo", {}, b"{}", False, 6)

    # Then the connect timeout is at most half of it (the TCP connect and the TLS handshake each
    # take at most that), and the send and each read are given only the time left
    (connection,) = connections.connections
    assert connection.connect_timeout == 3
    assert connection.timeout is not None and 0 < connection.timeout <= 6
    assert connection.sock is not None
    assert all(0 < t <= connection.timeout for t in connection.sock.timeouts)


def test_a_deadline_already_passed_raises_timeout_before_reading(dns, connections, monkeypatch):
    # Given a clock that jumps past the deadline once connected
    clock = iter([100.0, 200.0, 200.0, 200.0])
    monkeypatch.setattr(webhooks.time, "monotonic", lambda: next(clock))

    # When it is posted to, Then the attempt times out (a retryable OSError), connection closed
    with pytest.raises(TimeoutError):
        post("https://hooks.example.com/veo", {}, b"{}", False, 15)
    (connection,) = connections.connections
    assert connection.closed
    assert connection.requests == []


# -------------------------------------------------------------------------------------- deliver


def make_task(status: TaskStatus = TaskStatus.COMPLETED, webhook_url: str | None = None) -> Task:
    task = Task(
        id="vid_abc",
        owner="arn:aws:iam::123456789012:user/alice",
        status=status,
        provider="apixo",
        prompt="a fox",
        mode="fast",
        generation_type="TEXT_2_VIDEO",
        aspect_ratio="16:9",
        root_id="vid_abc",
        created_at="2026-11-21T10:00:00.000Z",
        updated_at="2026-11-21T10:02:05.000Z",
        provider_task_id="task_1",
        webhook_url=webhook_url,
    )
    if status is TaskStatus.COMPLETED:
        task.completed_at = task.updated_at
        task.video = StoredVideo("bucket", "videos/vid_abc/vid_abc.mp4", 10, "0" * 64, "video/mp4")
    if status is TaskStatus.FAILED:
        task.error = TaskError("content_violation", "flagged")
    return task


@dataclass
class FakeRuntime:
    task: Task | None
    retry_delays: tuple[int, ...] = (5, 300)
    queued: list[Delivery] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)
    # Each owner's signing secrets, as WebhookSecrets.signing gives them.
    secrets: dict[str, list[str]] = field(
        default_factory=lambda: {"arn:aws:iam::123456789012:user/alice": [SECRET]}
    )

    def __post_init__(self) -> None:
        self.settings = SimpleNamespace(
            webhooks=SimpleNamespace(
                retry_delays=self.retry_delays, allow_loopback=False, timeout_seconds=15
            ),
            presign_expires_seconds=3600,
        )
        self.webhook_queue = SimpleNamespace(send=self.queued.append)
        self.telemetry = SimpleNamespace(webhook_outcome=self.outcomes.append)
        self.videos = SimpleNamespace(
            presigned_url=lambda key, expires: f"https://s3.example/{key}"
        )
        self.tasks = SimpleNamespace(get=self._get)
        self.webhook_secrets = SimpleNamespace(signing=lambda owner: self.secrets[owner])

    def _get(self, task_id: str) -> Task:
        if self.task is None or task_id != self.task.id:
            raise TaskNotFound(task_id)
        return self.task


@dataclass
class FakePost:
    statuses: list[int | Exception]
    calls: list[tuple[str, dict[str, str], bytes, bool, float]] = field(default_factory=list)

    def __call__(
        self, url: str, headers: dict[str, str], body: bytes, loopback: bool, timeout: float
    ) -> int:
        self.calls.append((url, headers, body, loopback, timeout))
        answer = self.statuses.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def fake_post(monkeypatch: pytest.MonkeyPatch) -> FakePost:
    fake = FakePost([])
    monkeypatch.setattr(webhooks, "post", fake)
    return fake


def test_a_delivery_is_signed_and_carries_the_task_object(fake_post):
    # Given a completed task with a webhook, and a receiver that answers 204
    runtime = FakeRuntime(make_task(webhook_url="https://hooks.example.com/veo"))
    fake_post.statuses = [204]

    # When the first attempt is delivered
    outcome = deliver(runtime, Delivery("video.completed", "vid_abc"))

    # Then it is delivered, once, signed over id, timestamp and the exact body
    assert outcome is WebhookOutcome.DELIVERED
    ((url, headers, body, _, timeout),) = fake_post.calls
    assert url == "https://hooks.example.com/veo"
    assert timeout == 15  # the configured WEBHOOK_TIMEOUT_SECONDS
    assert headers["webhook-id"] == "msg_vid_abc_completed"
    expected = sign(SECRET, headers["webhook-id"], int(headers["webhook-timestamp"]), body)
    assert headers["webhook-signature"] == expected
    payload = json.loads(body)
    assert payload["type"] == "video.completed"
    assert payload["data"]["id"] == "vid_abc"
    assert (
        payload["data"]["video"]["download_url"] == "https://s3.example/videos/vid_abc/vid_abc.mp4"
    )
    assert runtime.queued == []
    assert runtime.outcomes == ["delivered"]


def test_a_delivery_is_signed_with_each_of_its_owners_signing_secrets(fake_post):
    # Given a task whose owner rotated its secret (the new one and the one it replaced sign),
    # and another principal with a secret of its own
    runtime = FakeRuntime(make_task(webhook_url="https://hooks.example.com/veo"))
    new = "whsec_" + "A" * 43 + "="
    runtime.secrets = {
        "arn:aws:iam::123456789012:user/alice": [new, SECRET],
        "arn:aws:iam::123456789012:user/bob": ["whsec_" + "B" * 43 + "="],
    }
    fake_post.statuses = [200]

    # When it is delivered
    deliver(runtime, Delivery("video.completed", "vid_abc"))

    # Then its signature header holds one v1 signature per secret of the task's owner, in order
    ((_, headers, body, _, _),) = fake_post.calls
    msg_id, timestamp = headers["webhook-id"], int(headers["webhook-timestamp"])
    assert headers["webhook-signature"].split(" ") == [
        sign(new, msg_id, timestamp, body),
        sign(SECRET, msg_id, timestamp, body),
    ]


@pytest.mark.parametrize(
    "failure", [500, 429, 301, 404, UnresolvableHost("no dns"), ConnectionResetError("reset")]
)
def test_a_failed_attempt_is_queued_again_after_the_schedules_delay(fake_post, failure):
    # Given a receiver that fails the first attempt
    runtime = FakeRuntime(make_task(webhook_url="https://hooks.example.com/veo"))
    fake_post.statuses = [failure]
    before = time.time()

    # When it is delivered
    outcome = deliver(runtime, Delivery("video.completed", "vid_abc"))

    # Then attempt 2 is queued, due after the schedule's first delay
    assert outcome is WebhookOutcome.RETRY_SCHEDULED
    (retry,) = runtime.queued
    assert (retry.event_type, retry.task_id, retry.attempt) == ("video.completed", "vid_abc", 2)
    assert before + 5 <= retry.not_before <= time.time() + 5


def test_when_the_schedule_runs_out_the_delivery_gives_up(fake_post):
    # Given the last attempt of a two-step schedule, and a receiver still failing
    runtime = FakeRuntime(make_task(webhook_url="https://hooks.example.com/veo"))
    fake_post.statuses = [500]

    # When it is delivered, Then it gives up (the queue's redrive takes it to the DLQ)
    with pytest.raises(WebhookGaveUp, match="3 times"):
        deliver(runtime, Delivery("video.completed", "vid_abc", attempt=3))
    assert runtime.queued == []


def test_a_410_stops_the_deliveries(fake_post):
    runtime = FakeRuntime(make_task(webhook_url="https://hooks.example.com/veo"))
    fake_post.statuses = [410]

    assert deliver(runtime, Delivery("video.completed", "vid_abc")) is WebhookOutcome.GONE
    assert runtime.queued == []


def test_a_refused_url_is_not_retried(fake_post):
    # Given a webhook whose name now resolves to a private address
    runtime = FakeRuntime(make_task(webhook_url="https://internal.example.com/veo"))
    fake_post.statuses = [RefusedUrl("resolves to a forbidden address")]

    # When it is delivered, Then it is refused for good
    assert deliver(runtime, Delivery("video.completed", "vid_abc")) is WebhookOutcome.REFUSED
    assert runtime.queued == []
    assert runtime.outcomes == ["refused"]


def test_a_retry_that_is_not_due_is_deferred_without_calling(fake_post):
    # Given a retry due in an hour
    runtime = FakeRuntime(make_task(webhook_url="https://hooks.example.com/veo"))
    delivery = Delivery("video.completed", "vid_abc", attempt=4, not_before=time.time() + 3600)

    # When it arrives, Then it is queued again unchanged, and the receiver is not called
    assert deliver(runtime, delivery) is WebhookOutcome.DEFERRED
    assert runtime.queued == [delivery]
    assert fake_post.calls == []


@pytest.mark.parametrize("task", [None, make_task()], ids=["task-gone", "no-webhook"])
def test_no_webhook_no_call(fake_post, task):
    runtime = FakeRuntime(task)

    assert deliver(runtime, Delivery("video.completed", "vid_abc")) is WebhookOutcome.NO_WEBHOOK
    assert fake_post.calls == []


def test_a_failed_tasks_delivery_carries_its_error(fake_post):
    runtime = FakeRuntime(make_task(TaskStatus.FAILED, webhook_url="https://hooks.example.com/v"))
    fake_post.statuses = [200]

    deliver(runtime, Delivery("video.failed", "vid_abc"))

    ((_, headers, body, _, _),) = fake_post.calls
    payload = json.loads(body)
    assert headers["webhook-id"] == "msg_vid_abc_failed"
    assert payload["type"] == "video.failed"
    assert payload["data"]["error"] == {"code": "content_violation", "message": "flagged"}
    assert payload["data"]["video"] is None
