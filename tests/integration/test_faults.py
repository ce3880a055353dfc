"""Fault injection: provider, S3, DynamoDB and delivery faults, each followed to its end.

Every case injects one fault through a real mechanism where there is one, lets the system recover
the way it would in AWS, and asserts three things: the task's final state (status and error code),
the objects in the video bucket (exactly one per completed task, none for a failed one, never an
open multipart upload) and the logs (the expected line, and never a secret: an autouse check scans
every log record of the test, whole, for the provider API keys and every callback token handed out
during the test; Powertools' JSON lines are those same records).

How faults get in:

- provider: `FaultyApixo`, a stand-in apixo on loopback (apixo's paths, envelope, status and
  callback bodies, bearer key), pointed at through APIXO_BASE_URL/APIXO_API_KEY. Its endpoints
  ("submit", "status", "download") answer from a script of faults, then normally. Client timeouts
  are shortened so that a "slow" answer times out in half a second.
- S3: the copy worker's S3 client's `upload_part` / `put_object_tagging` raise ClientError.
- DynamoDB: `DynamoFaults` answers chosen requests with a throttling error in moto's place, inside
  botocore's retry loop (PynamoDB's 4 attempts really happen; their backoff is set to zero).
- delivery: copy and submit requests are taken from their real queues and handed to the functions
  as Lambda's event source does (`deliver`: a failed record is visible again at once, as after its
  visibility timeout), or by the offline stack's `QueuePollers`.

Timing: a failed copy comes back after the queue's visibility timeout (1800 s), which AWS makes
longer than the copy lease (COPY_LEASE_SECONDS, 360 s). Cases that redeliver a failed copy keep that
order with a 1 s lease and a 1.1 s pause.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import dataclasses
import hashlib
import hmac
import json
import logging
import re
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError

from offline.event_sources import QueuePollers
from offline.servers import LocalHTTPServer
from offline.simulator.mp4 import iter_mp4, mp4_bytes_sha256
from offline.template import Template, load_template
from tests.helpers import (
    api_event,
    apixo_status_body,
    callback_event,
    response_json,
    wait_until,
)
from tests.integration.conftest import SIM_API_KEY

MIB = 1024 * 1024
LEASE = 1  # seconds; COPY_LEASE_SECONDS for the cases that redeliver a failed copy
AFTER_LEASE = LEASE + 0.1
CLIENT_READ_TIMEOUT = 0.5  # the provider clients' and the downloader's, shortened
SLOW_SECONDS = 1.5  # how long a "slow" fault keeps the client waiting
TRICKLE_HEAD = 64 * 1024
TRICKLE_INTERVAL = 0.25
TRICKLE_SECONDS = 30.0
KIE_HMAC_KEY = "kie-webhook-hmac-key-5f1e9c0b7a3d"


def stack_env(**variables: Any) -> pytest.MarkDecorator:
    """The stack's environment for one test: the state machine's first wait is long, so that only
    the test drives the fallback poller (the closest marker wins, so it is repeated here)."""
    return pytest.mark.stack_env(POLL_FIRST_WAIT_SECONDS=600, **variables)


pytestmark = stack_env()


# --- a provider whose answers the test scripts --------------------------------------------------


@dataclass
class StubTask:
    task_id: str
    prompt: str
    callback_url: str | None
    size: int
    state: str = "success"  # "running", "success" or "failed"
    fail_code: str | None = None
    downloads: int = 0  # download requests answered in full

    @property
    def token(self) -> str | None:
        return self.callback_url.rsplit("/", 1)[1] if self.callback_url else None


class FaultyApixo:
    """apixo's protocol, reduced to what veo-relay uses, with scripted faults per endpoint.

    Faults, consumed one per request, first in first out:
    - an HTTP status (429, 500, 503, 404, ...): answered with apixo's envelope, nothing done;
    - "created-500" (submit): the task is created, then the answer is a 500;
    - "slow": answered after SLOW_SECONDS (a submit creates the task first; a download sends its
      headers and first bytes, then stalls); ("slow", S) for a submit: the same after S seconds;
    - "truncate" (download): half the announced bytes, then the connection closes;
    - "trickle" (download): the first TRICKLE_HEAD bytes, then one byte every TRICKLE_INTERVAL
      (within the client's read timeout: each byte resets it) until the client hangs up, or
      TRICKLE_SECONDS have passed.
    """

    ENDPOINTS = ("submit", "status", "download")

    def __init__(self, api_key: str, secrets: set[str] | None = None) -> None:
        self.api_key = api_key
        self._secrets = secrets if secrets is not None else set()  # callback tokens go there
        self.tasks: dict[str, StubTask] = {}
        self.calls: Counter[str] = Counter()
        self.video_size = 64 * 1024
        self.initial_state = "success"
        self._faults: dict[str, deque[Any]] = {e: deque() for e in self.ENDPOINTS}
        self._lock = threading.Lock()
        handler = type("Handler", (_StubHandler,), {"stub": self})
        self._server = LocalHTTPServer(("127.0.0.1", 0), handler)
        self._server.handle_error = lambda request, address: None  # type: ignore[method-assign]

    def start(self) -> FaultyApixo:
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # scripting

    def inject(self, endpoint: str, *faults: Any) -> None:
        with self._lock:
            self._faults[endpoint].extend(faults)

    def next_fault(self, endpoint: str) -> Any:
        with self._lock:
            self.calls[endpoint] += 1
            queue = self._faults[endpoint]
            return queue.popleft() if queue else None

    def only_task(self) -> StubTask:
        (task,) = self.tasks.values()
        return task

    def video_url(self, task: StubTask) -> str:
        return f"{self.base_url}/files/{task.task_id}.mp4"

    def video_sha256(self, task: StubTask) -> str:
        return mp4_bytes_sha256(task.size, task.task_id)

    def status_body(self, task: StubTask, state: str | None = None) -> dict[str, Any]:
        state = state or task.state
        if state == "running":
            return apixo_status_body(task.task_id, "processing")
        if state == "failed":
            return apixo_status_body(task.task_id, "failed", fail_code=task.fail_code)
        return apixo_status_body(task.task_id, "success", video_url=self.video_url(task))

    def call_back(self, task: StubTask, body: dict[str, Any] | None = None) -> requests.Response:
        """The provider's callback, over HTTP to the task's own URL (the local HTTP API)."""
        assert task.callback_url
        return requests.post(task.callback_url, json=body or self.status_body(task), timeout=10)

    def create(self, body: dict[str, Any]) -> StubTask:
        task_input = body.get("input") or {}
        task = StubTask(
            task_id=f"task_{uuid.uuid4().hex}",
            prompt=str(task_input.get("prompt")),
            callback_url=body.get("callback_url"),
            size=self.video_size,
            state=self.initial_state,
        )
        with self._lock:
            self.tasks[task.task_id] = task
            if task.token:
                # the whole token, and its MAC (the part no one else can make)
                self._secrets.update({task.token, task.token.rsplit(".", 1)[1]})
        return task


class _StubHandler(BaseHTTPRequestHandler):
    stub: FaultyApixo
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        if not self._authorized():
            return
        if self.path != "/api/v1/generateTask/veo-3-1":
            return self._envelope(404, "Not found")
        fault = self.stub.next_fault("submit")
        if isinstance(fault, int):
            return self._envelope(fault, "injected fault")
        task = self.stub.create(body)
        if fault == "created-500":
            return self._envelope(500, "Internal server error")
        if fault == "slow" or (isinstance(fault, tuple) and fault[0] == "slow"):
            time.sleep(SLOW_SECONDS if fault == "slow" else fault[1])
        self._envelope(200, "success", {"taskId": task.task_id})

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        if path.startswith("/files/"):
            return self._download(path.removeprefix("/files/").removesuffix(".mp4"))
        if not self._authorized():
            return
        if path != "/api/v1/statusTask/veo-3-1":
            return self._envelope(404, "Not found")
        fault = self.stub.next_fault("status")
        if isinstance(fault, int):
            return self._envelope(fault, "injected fault")
        if fault == "slow":
            time.sleep(SLOW_SECONDS)
        task = self.stub.tasks.get(dict(p.split("=", 1) for p in query.split("&")).get("taskId"))
        if task is None:
            return self._envelope(404, "Task not found")
        self._send_json(200, self.stub.status_body(task))

    def _download(self, task_id: str) -> None:
        fault = self.stub.next_fault("download")
        task = self.stub.tasks.get(task_id)
        if task is None:
            return self._envelope(404, "Not found")
        if isinstance(fault, int):
            return self._envelope(fault, "injected fault")
        data = b"".join(iter_mp4(task.size, task.task_id))
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if fault == "slow":
            self.wfile.write(data[: 16 * 1024])
            self.wfile.flush()
            time.sleep(SLOW_SECONDS)
            self.close_connection = True
            return
        if fault == "truncate":
            self.wfile.write(data[: len(data) // 2])
            self.close_connection = True
            return
        if fault == "trickle":
            self.close_connection = True
            self.wfile.write(data[:TRICKLE_HEAD])
            until = time.monotonic() + TRICKLE_SECONDS
            for offset in range(TRICKLE_HEAD, len(data)):
                if time.monotonic() > until:
                    return
                time.sleep(TRICKLE_INTERVAL)
                try:
                    self.wfile.write(data[offset : offset + 1])
                    self.wfile.flush()
                except OSError:  # the client gave up
                    return
            return
        self.wfile.write(data)
        task.downloads += 1

    def _authorized(self) -> bool:
        if self.headers.get("Authorization") == f"Bearer {self.stub.api_key}":
            return True
        self._envelope(401, "Invalid or missing API Key")
        return False

    def _envelope(self, status: int, message: str, data: Any = None) -> None:
        self._send_json(status, {"code": status, "message": message, "data": data})

    def _send_json(self, status: int, body: Any) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


# --- logs ---------------------------------------------------------------------------------------


class LogTrap:
    """Every log record of the test: the app's own (Powertools) loggers down to DEBUG, every other
    logger from INFO. Each record is searched whole (message, arguments, extra keys, exception), so
    `secrets` can be checked against all of it."""

    def __init__(self, caplog: pytest.LogCaptureFixture, callback_base_url: str) -> None:
        self._caplog = caplog
        self._callback_base_url = callback_base_url
        self.secrets: set[str] = {SIM_API_KEY}
        self.enforce = True  # checked after the test

    def _ours(self, record: logging.LogRecord) -> bool:
        """Not the provider's side: moto's mock of `requests` (the `responses` library) logs every
        request made in this process, the provider's (the simulator's or the stub's) POSTs to
        our callback URL included. Lambda has no such logger; our own outbound requests stay in."""
        url = str(getattr(record, "url", ""))
        return not (record.name == "responses" and url.startswith(self._callback_base_url))

    def records(
        self, message: str | None = None, level: int = logging.NOTSET, **extra: Any
    ) -> list[logging.LogRecord]:
        return [
            r
            for r in self._caplog.records
            if r.levelno >= level
            and (message is None or r.getMessage() == message)
            and all(getattr(r, k, None) == v for k, v in extra.items())
        ]

    def text(self) -> str:
        formatter = logging.Formatter()
        parts = []
        for record in filter(self._ours, self._caplog.records):
            parts.append(repr(vars(record)))
            parts.append(record.getMessage())
            if record.exc_info:
                parts.append(formatter.formatException(record.exc_info))
        return "\n".join(parts)

    def leaked(self) -> list[str]:
        text = self.text()
        return sorted(s for s in self.secrets if s and s in text)

    def where(self, secret: str) -> list[str]:
        """The loggers and messages of the records that hold `secret`."""
        return [
            f"{r.name}: {r.getMessage()}"
            for r in filter(self._ours, self._caplog.records)
            if secret in repr(vars(r))
        ]


@pytest.fixture(autouse=True)
def logs(caplog: pytest.LogCaptureFixture, stack: Any) -> Iterator[LogTrap]:
    # The handlers' modules (and their Powertools loggers) are loaded once the stack's environment
    # is set, as Lambda would; their levels are lowered for this test only.
    for name in stack.functions.names:
        stack.functions.handler(name)
    caplog.set_level(logging.INFO)
    for name in list(logging.root.manager.loggerDict):
        if name == "veo-relay" or name.startswith("veo-relay."):
            caplog.set_level(logging.DEBUG, logger=name)
    trap = LogTrap(caplog, stack.api.url)
    yield trap
    if trap.enforce:
        leaked = trap.leaked()
        assert not leaked, f"secrets in the logs: {[trap.where(s) for s in leaked]}"


# --- fixtures: the stand-in provider, DynamoDB faults, spies ------------------------------------


@pytest.fixture
def stub(stack: Any, monkeypatch: pytest.MonkeyPatch, logs: LogTrap) -> Iterator[FaultyApixo]:
    """The stack with apixo pointed at a FaultyApixo, and short client timeouts."""
    from veo_relay import wiring
    from veo_relay.providers import http

    provider = FaultyApixo(f"stub-apixo-key-{uuid.uuid4().hex}", logs.secrets).start()
    logs.secrets.add(provider.api_key)
    stack.set_env(APIXO_BASE_URL=provider.base_url)
    stack.put_provider_keys(apixo=provider.api_key)
    monkeypatch.setattr(http, "SUBMIT_TIMEOUT", (1.0, CLIENT_READ_TIMEOUT))
    monkeypatch.setattr(http, "STATUS_TIMEOUT", (1.0, CLIENT_READ_TIMEOUT))
    monkeypatch.setattr(http, "_STATUS_RETRY", http._STATUS_RETRY.new(backoff_factor=0))
    policy = wiring.download_policy

    def short_read_timeout(download: Any, provider: Any) -> Any:
        return dataclasses.replace(policy(download, provider), read_timeout=CLIENT_READ_TIMEOUT)

    monkeypatch.setattr(wiring, "download_policy", short_read_timeout)
    wiring.clear()
    yield provider
    provider.stop()


@dataclass
class _Throttle:
    operation: str
    attempts: int  # attempts of each matching request answered with the error
    requests: int | None  # how many distinct requests; None: all of them
    code: str
    matches: Callable[[dict[str, Any]], bool]
    seen: dict[str, int] = field(default_factory=dict)  # attempts so far, per SDK invocation


class DynamoFaults:
    """DynamoDB requests answered with a throttling error instead of reaching moto. Installed in
    botocore's before-send, so the SDK's retries see it as they would see DynamoDB's."""

    def __init__(self) -> None:
        self._rules: list[_Throttle] = []
        self._lock = threading.Lock()
        self.throttled: Counter[str] = Counter()

    def throttle(
        self,
        operation: str,
        attempts: int,
        *,
        requests: int | None = None,
        code: str = "ProvisionedThroughputExceededException",
        matches: Callable[[dict[str, Any]], bool] = lambda body: True,
    ) -> None:
        self._rules.append(_Throttle(operation, attempts, requests, code, matches))

    def answer(self, request: Any) -> Any:
        target = request.headers.get("X-Amz-Target") or b""
        target = target.decode() if isinstance(target, bytes) else target
        if not target.startswith("DynamoDB_20120810."):
            return None
        operation = target.split(".", 1)[1]
        raw = request.body if isinstance(request.body, bytes) else (request.body or "").encode()
        body = json.loads(raw or b"{}")
        # One id per API call, the same on each of its retries.
        invocation = request.headers.get("amz-sdk-invocation-id")
        invocation = invocation.decode() if isinstance(invocation, bytes) else str(invocation)
        with self._lock:
            for rule in self._rules:
                if rule.operation != operation or not rule.matches(body):
                    continue
                if invocation not in rule.seen:
                    if rule.requests is not None and len(rule.seen) >= rule.requests:
                        continue
                    rule.seen[invocation] = 0
                if rule.seen[invocation] >= rule.attempts:
                    continue
                rule.seen[invocation] += 1
                self.throttled[operation] += 1
                return _dynamodb_error(request.url, rule.code)
        return None


def _dynamodb_error(url: str, code: str) -> Any:
    from botocore.awsrequest import AWSResponse
    from moto.core.botocore_stubber import MockRawResponse

    body = json.dumps(
        {
            "__type": f"com.amazonaws.dynamodb.v20120810#{code}",
            "message": "The level of configured provisioned throughput for the table was exceeded.",
        }
    )
    headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "fault"}
    return AWSResponse(url, 400, headers, MockRawResponse(body))


def sets(attribute: str, value: str | None = None) -> Callable[[dict[str, Any]], bool]:
    """Matches an UpdateItem whose SET assigns `attribute` (the string `value`, if given)."""

    def matches(body: dict[str, Any]) -> bool:
        names = body.get("ExpressionAttributeNames", {})
        values = body.get("ExpressionAttributeValues", {})
        set_clause = body.get("UpdateExpression", "").split("REMOVE")[0]
        for name, placeholder in re.findall(r"(#\w+) = (:\w+)", set_clause):
            if names.get(name) == attribute and (
                value is None or values.get(placeholder) == {"S": value}
            ):
                return True
        return False

    return matches


@pytest.fixture
def dynamo(stack: Any, monkeypatch: pytest.MonkeyPatch) -> DynamoFaults:
    import botocore.retries.standard
    from moto.core.botocore_stubber import BotocoreStubber

    faults = DynamoFaults()
    original = BotocoreStubber.__call__

    def call(self: Any, event_name: str, request: Any, **kwargs: Any) -> Any:
        injected = faults.answer(request)
        return injected if injected is not None else original(self, event_name, request, **kwargs)

    monkeypatch.setattr(BotocoreStubber, "__call__", call)
    monkeypatch.setattr(
        botocore.retries.standard.ExponentialBackoff, "delay_amount", lambda self, context: 0
    )
    return faults


class Transitions:
    """The task store's transitions that took effect (their conditional write held)."""

    def __init__(self) -> None:
        self.done: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def count(self, name: str, task_id: str) -> int:
        return self.done.count((name, task_id))


@pytest.fixture
def transitions(stack: Any, monkeypatch: pytest.MonkeyPatch) -> Transitions:
    from veo_relay.task_store import TaskStore

    spy = Transitions()

    def wrap(name: str) -> None:
        original = getattr(TaskStore, name)

        def transition(self: Any, task_id: str, *args: Any, **kwargs: Any) -> Any:
            result = original(self, task_id, *args, **kwargs)
            if result is not None:
                with spy._lock:
                    spy.done.append((name, task_id))
            return result

        monkeypatch.setattr(TaskStore, name, transition)

    for name in (
        "mark_submitted",
        "record_callback",
        "mark_storing",
        "mark_completed",
        "mark_failed",
    ):
        wrap(name)
    return spy


# --- delivering queued requests as Lambda's event source does -----------------------------------


@dataclass
class Delivery:
    body: str
    failed: bool
    error: str | None = None


def _sqs_record(message: dict[str, Any], arn: str) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(message["Body"].encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": "us-east-1",
    }


def _sqs_record_for(stack: Any, task_id: str) -> dict[str, Any]:
    """The callback's copy request for the task, holding the lease the callback took."""
    lease = stack.item(task_id)["updated_at"]["S"]
    body = json.dumps({"task_id": task_id, "reason": "callback", "lease": lease})
    message = {"MessageId": str(uuid.uuid4()), "ReceiptHandle": "rh", "Body": body}
    return _sqs_record(message, stack.template.attributes[("CopyQueue", "Arn")])


def deliver(
    stack: Any, queue: str = "CopyQueue", function: str = "CopyWorkerFunction"
) -> list[Delivery]:
    """Hands each visible message of `queue` to `function`, one record per invocation (the copy
    worker's batch size). A record the function reports failed (or an invocation that raises) is
    made visible again at once, as after its visibility timeout; the others are deleted."""
    sqs = stack.client("sqs")
    url = stack.template.names[queue]
    arn = stack.template.attributes[(queue, "Arn")]
    deliveries = []
    messages = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
    ).get("Messages", [])
    for message in messages:
        error = None
        try:
            result = stack.invoke(function, {"Records": [_sqs_record(message, arn)]}) or {}
            failed = bool(result.get("batchItemFailures"))
        except Exception as exc:
            failed, error = True, f"{type(exc).__name__}: {exc}"
        if failed:
            sqs.change_message_visibility(
                QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
        else:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        deliveries.append(Delivery(message["Body"], failed, error))
    return deliveries


def queued_bodies(stack: Any, queue: str) -> list[dict[str, Any]]:
    """The messages waiting in `queue` (left in place: they come back at once)."""
    sqs = stack.client("sqs")
    url = stack.template.names[queue]
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get(
        "Messages", []
    )
    return [json.loads(m["Body"]) if m["Body"].startswith("{") else m["Body"] for m in messages]


# --- state ---------------------------------------------------------------------------------------


def object_keys(stack: Any) -> list[str]:
    listing = stack.client("s3").list_objects_v2(Bucket=stack.bucket)
    return [item["Key"] for item in listing.get("Contents", [])]


def open_uploads(stack: Any) -> list[dict[str, Any]]:
    return stack.client("s3").list_multipart_uploads(Bucket=stack.bucket).get("Uploads", [])


def error_code(stack: Any, task_id: str) -> str | None:
    item = stack.item(task_id)
    return item["error"]["M"]["code"]["S"] if item and "error" in item else None


def assert_completed(
    stack: Any, logs: LogTrap, task_id: str, sha256: str | None = None, size: int | None = None
) -> None:
    """Completed, with exactly one video in the bucket (the task's, tagged with its hash) and its
    manifest beside it."""
    item = stack.item(task_id)
    assert item["status"]["S"] == "completed", item
    assert "error" not in item
    video = {k: next(iter(v.values())) for k, v in item["video"]["M"].items()}
    assert object_keys(stack) == [video["key"].removesuffix(".mp4") + ".json", video["key"]]
    assert task_id in video["key"] and video["key"].endswith(".mp4")
    assert open_uploads(stack) == []
    s3 = stack.client("s3")
    tags = s3.get_object_tagging(Bucket=stack.bucket, Key=video["key"])["TagSet"]
    assert {"Key": "sha256", "Value": video["sha256"]} in tags
    if sha256 is not None:
        assert video["sha256"] == sha256
    if size is not None:
        assert int(video["size_bytes"]) == size
        assert s3.head_object(Bucket=stack.bucket, Key=video["key"])["ContentLength"] == size
    assert len(logs.records("video stored", logging.INFO, task_id=task_id)) == 1


def assert_failed(stack: Any, logs: LogTrap, task_id: str, code: str) -> None:
    """Failed with `code`, no video, nothing in the bucket, no open multipart upload, and no
    "video stored" line in the logs."""
    item = stack.item(task_id)
    assert item["status"]["S"] == "failed", item
    assert error_code(stack, task_id) == code
    assert "video" not in item
    assert object_keys(stack) == []
    assert open_uploads(stack) == []
    assert logs.records("video stored", task_id=task_id) == []


def assert_untouched(stack: Any, task_id: str, status: str) -> None:
    item = stack.item(task_id)
    assert item["status"]["S"] == status
    assert "video" not in item and "error" not in item
    assert object_keys(stack) == []
    assert open_uploads(stack) == []


def submitted_task(stack: Any, stub: FaultyApixo, prompt: str = "a fox") -> tuple[dict, StubTask]:
    """A task the provider accepted (in_progress), and the provider's side of it."""
    task = stack.create_task(prompt)
    assert task["status"] == "in_progress", task
    return task, stub.tasks[task["provider_task_id"]]


def called_back(stack: Any, stub: FaultyApixo, prompt: str = "a fox") -> tuple[dict, StubTask]:
    """A submitted task whose provider finished and called back: one copy request is queued."""
    task, stub_task = submitted_task(stack, stub, prompt)
    response = stub.call_back(stub_task)
    assert response.status_code == 200 and response.json() == {"status": "queued"}
    return task, stub_task


def wait_past(task: dict[str, Any], seconds: float) -> None:
    from veo_relay.tasks import parse_timestamp

    remaining = parse_timestamp(task["created_at"]).timestamp() + seconds - time.time()
    if remaining > 0:
        time.sleep(remaining + 0.05)


def poll(stack: Any, task_id: str, attempt: int = 1) -> dict[str, Any]:
    """One step of the fallback poller, as the state machine invokes it."""
    return stack.invoke("PollerFunction", {"task_id": task_id, "attempt": attempt})


# =================================================================================================
# Provider faults on submit
# =================================================================================================


@stack_env(TASK_DEADLINE_SECONDS=1)
def test_submit_500_that_created_nothing_is_never_repeated_and_the_deadline_fails_it(
    stack, stub, logs
):
    # Given the provider answers the submit with a 500 (and created nothing)
    stub.inject("submit", 500)

    # When a video is requested
    task = stack.create_task("a fox")

    # Then it is accepted but stays queued: a 500 may hide a created (and paid) task
    assert task["status"] == "queued" and task["provider_task_id"] is None
    assert stub.calls["submit"] == 1 and stub.tasks == {}
    assert logs.records(
        "submit outcome unknown; not repeating it", logging.WARNING, task_id=task["id"]
    )
    # And its fallback poller is already watching it
    sfn = stack.client("stepfunctions")
    assert sfn.describe_execution(executionArn=stack.execution_arn(task["id"]))["status"]

    # When no callback ever comes and the deadline passes
    wait_past(task, 1)
    assert poll(stack, task["id"])["outcome"] == "closed"

    # Then the task failed with timeout, was never submitted again, and nothing was stored
    assert_failed(stack, logs, task["id"], "timeout")
    assert "never confirmed the submit" in stack.item(task["id"])["error"]["M"]["message"]["S"]
    assert stub.calls["submit"] == 1


@pytest.mark.parametrize("fault", ["created-500", "slow"], ids=["500-after-create", "timeout"])
def test_a_lost_submit_answer_is_recovered_by_the_callback_to_the_tasks_own_url(
    stack, stub, logs, fault
):
    # Given the provider creates the task but its answer is lost (a 500, or a read timeout)
    stub.inject("submit", fault)
    task = stack.create_task("a fox")
    assert task["status"] == "queued" and task["provider_task_id"] is None
    assert logs.records(
        "submit outcome unknown; not repeating it", logging.WARNING, task_id=task["id"]
    )
    stub_task = stub.only_task()

    # When the provider calls the task's own URL back
    response = stub.call_back(stub_task)

    # Then the callback names the provider task, the copy completes the task with one object
    assert response.status_code == 200 and response.json() == {"status": "queued"}
    assert stack.item(task["id"])["provider_task_id"]["S"] == stub_task.task_id
    assert [d.failed for d in deliver(stack)] == [False]
    assert_completed(stack, logs, task["id"], stub.video_sha256(stub_task))
    # And the provider was asked once: a second submit could have paid twice
    assert stub.calls["submit"] == 1 and len(stub.tasks) == 1


def lost_submit_answer(stack: Any, stub: FaultyApixo) -> tuple[dict, StubTask]:
    """A task the provider created and charged for, whose submit's answer was lost: queued, no
    provider task id; its callback URL is the only way back to it."""
    stub.inject("submit", "created-500")
    task = stack.create_task("a fox")
    assert task["status"] == "queued" and task["provider_task_id"] is None
    return task, stub.only_task()


@pytest.mark.parametrize(
    "provider_task_id",
    ["t" * 257, "t" * 5000, "task_\u00e9t\u00e9", "task 1", "task_\n1"],
    ids=["257-chars", "5000-chars", "non-ascii", "space", "control-char"],
)
def test_a_callback_naming_a_provider_task_id_of_no_valid_form_is_401_and_records_nothing(
    stack, stub, logs, provider_task_id
):
    # Given a task whose submit's answer was lost, so that its callback's task id would be stored
    task, stub_task = lost_submit_answer(stack, stub)

    # When a callback on its own URL names a provider task id of no plausible form
    body = apixo_status_body(provider_task_id, "success", video_url=stub.video_url(stub_task))
    response = stub.call_back(stub_task, body)

    # Then it is refused with the one error body, and nothing is recorded or queued
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_callback"
    item = stack.item(task["id"])
    assert item["status"]["S"] == "queued"
    assert "provider_task_id" not in item and "callback_received_at" not in item
    assert queued_bodies(stack, "CopyQueue") == []
    # And the provider's own callback, naming a 256-character id at most, still completes it
    assert len(stub_task.task_id) <= 256
    assert stub.call_back(stub_task).json() == {"status": "queued"}
    deliver(stack)
    assert_completed(stack, logs, task["id"], stub.video_sha256(stub_task))


def test_a_callback_naming_no_task_for_a_lost_submit_answer_leaves_the_task_to_the_genuine_one(
    stack, stub, logs
):
    # Given a task whose submit's answer was lost
    task, stub_task = lost_submit_answer(stack, stub)

    # When a callback with its valid token but no taskId arrives
    body = stub.status_body(stub_task)
    del body["data"]["taskId"]
    response = stub.call_back(stub_task, body)

    # Then it is answered 200 "ignored": no lease taken, nothing queued (a copy could ask the
    # provider nothing)
    assert (response.status_code, response.json()) == (200, {"status": "ignored"})
    item = stack.item(task["id"])
    assert item["status"]["S"] == "queued"
    assert "callback_received_at" not in item
    assert queued_bodies(stack, "CopyQueue") == []

    # When the provider's genuine callback, naming its task, arrives
    response = stub.call_back(stub_task)

    # Then its task id is recorded and the paid video is stored, submitted once
    assert response.json() == {"status": "queued"}
    assert stack.item(task["id"])["provider_task_id"]["S"] == stub_task.task_id
    assert [d.failed for d in deliver(stack)] == [False]
    assert_completed(stack, logs, task["id"], stub.video_sha256(stub_task))
    assert stub.calls["submit"] == 1


@stack_env(CALLBACK_QUIET_SECONDS=1)
def test_a_copy_for_a_task_with_no_provider_task_id_gives_its_lease_back(stack, stub, logs):
    # Given a task whose submit's answer was lost, and a callback's lease taken on it with no
    # provider task id (a copy request queued by an earlier version, which took it so)
    task, stub_task = lost_submit_answer(stack, stub)
    assert stack.runtime("CallbackFunction").tasks.record_callback(task["id"]) is not None

    # When that copy request is handled
    result = stack.invoke("CopyWorkerFunction", {"Records": [_sqs_record_for(stack, task["id"])]})

    # Then the copy asks the provider nothing and gives the task back as it was, queued, its
    # callback forgotten, quiet for a while
    assert result == {"batchItemFailures": []}
    item = stack.item(task["id"])
    assert item["status"]["S"] == "queued"
    assert "callback_received_at" not in item and "callbacks_quiet_until" in item
    assert stub.calls["status"] == 0

    # When the provider's genuine callback comes after the quiet second
    time.sleep(1.1)
    response = stub.call_back(stub_task)

    # Then it records the provider's task and its copy stores the video
    assert response.json() == {"status": "queued"}
    deliver(stack)
    assert_completed(stack, logs, task["id"], stub.video_sha256(stub_task))


@pytest.mark.parametrize("status", [429, 503])
def test_a_submit_refused_with_429_or_503_waits_in_the_submit_queue_and_goes_through_later(
    stack, stub, logs, status
):
    # Given the provider refuses the first submit for lack of capacity (proving it created nothing)
    stub.inject("submit", status)

    # When a video is requested
    task = stack.create_task("a fox")

    # Then it stays queued with a ticket in the submit queue
    assert task["status"] == "queued" and stub.tasks == {}
    [info] = logs.records("provider busy; task stays queued", logging.INFO, task_id=task["id"])
    assert info.code == {429: "rate_limited", 503: "provider_unavailable"}[status]
    assert "submit_claimed_at" not in stack.item(task["id"])

    # When the submit worker gets the ticket (the provider has capacity again)
    assert [d.failed for d in deliver(stack, "SubmitQueue", "SubmitWorkerFunction")] == [False]

    # Then the task is submitted once more, in callback mode, and completes through its callback
    assert stack.status(task["id"]) == "in_progress"
    assert stub.calls["submit"] == 2 and len(stub.tasks) == 1
    stub_task = stub.only_task()
    # (with the token of its second attempt: each claimed submit has its own)
    assert stub_task.token.startswith(f"{task['id']}.2.")
    assert stub.call_back(stub_task).status_code == 200
    deliver(stack)
    assert_completed(stack, logs, task["id"], stub.video_sha256(stub_task))


@contextlib.contextmanager
def callback_token_key_unreadable(stack: Any) -> Iterator[None]:
    """Secrets Manager refuses the callback token key's reads (InvalidRequestException): the
    secret is scheduled for deletion, then restored."""
    secrets = stack.client("secretsmanager")
    key = stack.template.names["CallbackTokenKeySecret"]
    secrets.delete_secret(SecretId=key, RecoveryWindowInDays=7)
    try:
        yield
    finally:
        secrets.restore_secret(SecretId=key)


def test_a_failed_read_of_the_token_key_sends_nothing_and_the_submit_queue_submits_once(
    stack, stub, logs
):
    # Given the callback token key cannot be read when a video is requested
    with callback_token_key_unreadable(stack):
        task = stack.create_task("a fox")

    # Then nothing was sent: the claim is given back and the task waits in the submit queue
    assert task["status"] == "queued"
    assert stub.calls["submit"] == 0
    item = stack.item(task["id"])
    assert item["status"]["S"] == "queued" and "submit_claimed_at" not in item
    assert [b["task_id"] for b in queued_bodies(stack, "SubmitQueue")] == [task["id"]]
    assert logs.records(
        "callback URL could not be made; the task goes back to the submit queue",
        logging.ERROR,
        task_id=task["id"],
    )

    # When the key can be read again and the submit worker gets the ticket, twice (SQS may
    # deliver a message more than once)
    [ticket] = queued_bodies(stack, "SubmitQueue")
    assert [d.failed for d in deliver(stack, "SubmitQueue", "SubmitWorkerFunction")] == [False]
    stack.invoke("SubmitWorkerFunction", {"Records": [_submit_record(stack, ticket)]})

    # Then the task was submitted exactly once, with its second attempt's token, and completes
    assert stub.calls["submit"] == 1
    stub_task = stub.only_task()
    assert stub_task.token.startswith(f"{task['id']}.2.")
    assert stack.status(task["id"]) == "in_progress"
    assert stub.call_back(stub_task).json() == {"status": "queued"}
    deliver(stack)
    assert_completed(stack, logs, task["id"], stub.video_sha256(stub_task))


def _submit_record(stack: Any, ticket: dict[str, Any]) -> dict[str, Any]:
    message = {"MessageId": str(uuid.uuid4()), "ReceiptHandle": "rh", "Body": json.dumps(ticket)}
    return _sqs_record(message, stack.template.attributes[("SubmitQueue", "Arn")])


# =================================================================================================
# The API's time budget (veo_relay/deadlines.py): an answer well before API Gateway's 30 s
# =================================================================================================


@pytest.fixture
def budget(stub: FaultyApixo, monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """Sets the API's time budget, at test scale (2 s instead of 20 s: 0.3 s kept for the writes
    after a submit, 1 s the least a provider is given), with the submit's real timeouts (the
    `stub` fixture shortens them) so that only the deadline can cut a submit short."""
    from veo_relay import deadlines
    from veo_relay.providers import http

    monkeypatch.setattr(http, "SUBMIT_TIMEOUT", (3.05, 20.0))
    monkeypatch.setattr(deadlines, "AFTER_SUBMIT_SECONDS", 0.3)
    monkeypatch.setattr(deadlines, "MIN_INLINE_SUBMIT_SECONDS", 1.0)
    return lambda seconds: monkeypatch.setattr(deadlines, "API_BUDGET_SECONDS", seconds)


def timed_create(stack: Any, body: dict[str, Any]) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    response = stack.create_video(body)
    return response, time.monotonic() - started


def test_a_provider_slower_than_the_budget_gets_the_task_queued_in_time_and_its_callback_ends_it(
    stack, stub, budget, logs
):
    # Given an API budget of 2 s, and a provider that creates the task but answers only after 6 s
    budget(2.0)
    stub.inject("submit", ("slow", 6.0))

    # When a video is requested
    response, elapsed = timed_create(stack, {"prompt": "a fox"})

    # Then the API answered within its budget (plus test-machine slack; the provider alone took
    # 6 s): 202, the task queued, its submit's outcome unknown and not repeated
    assert elapsed < 3.5, elapsed
    assert response["statusCode"] == 202, response
    task = response_json(response)
    assert task["status"] == "queued" and task["provider_task_id"] is None
    assert logs.records(
        "submit outcome unknown; not repeating it", logging.WARNING, task_id=task["id"]
    )
    sfn = stack.client("stepfunctions")
    assert sfn.describe_execution(executionArn=stack.execution_arn(task["id"]))["status"]

    # When the provider, which did create it, calls the task's own URL back
    stub_task = stub.only_task()
    assert stub.call_back(stub_task).status_code == 200
    assert [d.failed for d in deliver(stack)] == [False]

    # Then the task completes with one object, and the provider was asked once
    assert_completed(stack, logs, task["id"], stub.video_sha256(stub_task))
    assert stub.calls["submit"] == 1 and len(stub.tasks) == 1
    assert queued_bodies(stack, "SubmitQueue") == []


def test_a_create_without_time_for_a_submit_hands_it_to_the_queue_and_the_worker_sends_it_once(
    stack, stub, budget, logs
):
    # Given an API left with less time than a submit needs (its slot's wait, a slow cold start)
    budget(1.0)

    # When a video is requested
    response, elapsed = timed_create(stack, {"prompt": "a fox"})

    # Then the API answered at once, 202 with the task queued, without asking the provider; the
    # submit queue holds its ticket and its fallback poller runs
    assert elapsed < 2.5, elapsed
    assert response["statusCode"] == 202, response
    task = response_json(response)
    assert task["status"] == "queued"
    assert stub.calls["submit"] == 0
    assert [b["task_id"] for b in queued_bodies(stack, "SubmitQueue")] == [task["id"]]
    assert "submit_claimed_at" not in stack.item(task["id"])
    sfn = stack.client("stepfunctions")
    assert sfn.describe_execution(executionArn=stack.execution_arn(task["id"]))["status"]

    # When the submit worker gets the ticket
    assert [d.failed for d in deliver(stack, "SubmitQueue", "SubmitWorkerFunction")] == [False]

    # Then it submitted the task once, which completes through its callback
    assert stack.status(task["id"]) == "in_progress"
    assert stub.calls["submit"] == 1
    stub_task = stub.only_task()
    assert stub.call_back(stub_task).status_code == 200
    deliver(stack)
    assert_completed(stack, logs, task["id"], stub.video_sha256(stub_task))
    assert stub.calls["submit"] == 1 and len(stub.tasks) == 1


# =================================================================================================
# Provider faults on status
# =================================================================================================


@pytest.mark.parametrize(
    "faults", [(500, 502), (429, 429), ("slow",)], ids=["5xx", "429", "timeout"]
)
def test_status_faults_within_the_read_retries_are_absorbed(stack, stub, faults, logs):
    # Given a finished task whose status endpoint first fails a few times
    task, stub_task = called_back(stack, stub)
    stub.inject("status", *faults)

    # When the copy worker confirms it
    assert [d.failed for d in deliver(stack)] == [False]

    # Then the retried read got through and the video is stored once
    assert stub.calls["status"] == len(faults) + 1
    assert_completed(stack, logs, task["id"], stub.video_sha256(stub_task))


def test_status_5xx_beyond_the_retries_sends_the_copy_back_and_a_later_delivery_completes(
    stack, stub, logs
):
    # Given a finished task whose status endpoint keeps failing (4 reads: 1 + 3 retries)
    task, stub_task = called_back(stack, stub)
    stub.inject("status", 500, 503, 500, 503)

    # When the copy worker handles the request
    [delivery] = deliver(stack)

    # Then the record goes back to the queue and nothing changed: the task keeps the lease the
    # callback took for this copy, so no other copy starts meanwhile
    assert delivery.failed
    assert_untouched(stack, task["id"], "storing")

    # And the fallback poller sees the copy under way: the task stays open, no status read
    reads = stub.calls["status"]
    assert poll(stack, task["id"])["outcome"] == "open"
    assert stub.calls["status"] == reads

    # When the request is delivered again after the provider recovered
    assert [d.failed for d in deliver(stack)] == [False]

    # Then the task completes with one object
    assert_completed(stack, logs, task["id"], stub.video_sha256(stub_task))


# =================================================================================================
# Provider faults on download
# =================================================================================================


@stack_env(COPY_LEASE_SECONDS=LEASE)
@pytest.mark.parametrize("fault", [503, 429, "slow", "truncate"])
def test_a_download_fault_is_retried_after_the_lease_and_stores_one_object(
    stack, stub, fault, logs
):
    # Given a finished task whose video download fails once
    task, stub_task = called_back(stack, stub)
    stub.inject("download", fault)

    # When the copy worker handles the request
    [delivery] = deliver(stack)

    # Then the record goes back to the queue, the copy's lease is given back, and nothing is
    # stored, not even part of an upload
    assert delivery.failed
    assert stack.status(task["id"]) == "in_progress"
    assert object_keys(stack) == [] and open_uploads(stack) == []

    # When it is delivered again once the copy's lease has run out
    time.sleep(AFTER_LEASE)
    assert [d.failed for d in deliver(stack)] == [False]

    # Then the task is completed with exactly one object holding the provider's bytes
    assert_completed(stack, logs, task["id"], stub.video_sha256(stub_task), stub_task.size)
    assert stub.calls["download"] == 2 and stub_task.downloads == 1


def test_a_download_fault_redelivered_while_the_lease_runs_is_still_retried(stack, stub, logs):
    # Given a finished task whose video download fails once
    task, stub_task = called_back(stack, stub)
    stub.inject("download", 503)
    [delivery] = deliver(stack)
    assert delivery.failed

    # When the request comes back before the copy's lease ran out (the offline event source
    # retries after 2 s; the lease is 360 s)
    deliver(stack)

    # Then the video is copied all the same
    assert stack.status(task["id"]) == "completed"
    assert_completed(stack, logs, task["id"], stub.video_sha256(stub_task))


def test_a_download_refused_for_good_fails_the_task_without_an_object(stack, stub, logs):
    # Given a finished task whose video the provider's origin refuses (404)
    task, _ = called_back(stack, stub)
    stub.inject("download", 404)

    # When the copy worker handles the request
    [delivery] = deliver(stack)

    # Then the message is consumed and the task failed for good, with nothing stored
    assert not delivery.failed
    assert_failed(stack, logs, task["id"], "provider_error")
    assert logs.records("copy request handled", logging.INFO, outcome="failed")


@dataclass
class UploadSpy:
    created: int = 0
    aborted: int = 0


def spy_uploads(stack: Any, monkeypatch: pytest.MonkeyPatch) -> UploadSpy:
    """Counts the copy worker's multipart uploads opened and aborted."""
    s3 = stack.runtime("CopyWorkerFunction").videos._s3
    spy = UploadSpy()
    create, abort = s3.create_multipart_upload, s3.abort_multipart_upload

    def created(**kwargs: Any) -> Any:
        spy.created += 1
        return create(**kwargs)

    def aborted(**kwargs: Any) -> Any:
        spy.aborted += 1
        return abort(**kwargs)

    monkeypatch.setattr(s3, "create_multipart_upload", created)
    monkeypatch.setattr(s3, "abort_multipart_upload", aborted)
    return spy


def assert_ended_cleanly(stack: Any, logs: LogTrap, task_id: str, spy: UploadSpy, why: str) -> None:
    """The copy attempt failed for `why`: its multipart upload (opened) was aborted, nothing is
    stored, the lease was given back (the task is in_progress again) and the failure is logged."""
    assert spy.created == 1 and spy.aborted == 1
    assert open_uploads(stack) == [] and object_keys(stack) == []
    assert stack.status(task_id) == "in_progress"
    [failure] = logs.records("copy attempt failed", logging.WARNING, task_id=task_id)
    assert failure.exc_info and why in str(failure.exc_info[1]), failure.exc_info


@stack_env(
    DOWNLOAD_MIN_BYTES_PER_SECOND=64 * 1024,
    DOWNLOAD_THROUGHPUT_WINDOW_SECONDS=1,
    DOWNLOAD_THROUGHPUT_GRACE_SECONDS=1,
)
def test_a_trickling_download_ends_at_the_throughput_floor_and_a_retry_stores_the_video(
    stack, stub, monkeypatch, logs
):
    # Given a finished task whose 9 MiB video (a multipart upload) comes at 4 B/s after its first
    # 64 KiB, each byte within the read timeout; a floor of 64 KiB/s over 1 s after 1 s
    stub.video_size = 9 * MIB
    task, stub_task = called_back(stack, stub)
    stub.inject("download", "trickle")
    uploads = spy_uploads(stack, monkeypatch)

    # When the copy worker handles the request
    started = time.monotonic()
    [delivery] = deliver(stack)

    # Then the attempt ends after the grace period and one window, not with the trickle
    assert delivery.failed
    assert time.monotonic() - started < 6
    # And it ended cleanly: upload aborted, nothing stored, lease given back, failure logged
    assert_ended_cleanly(stack, logs, task["id"], uploads, "too slow")

    # When the request is delivered again, at once (the lease is back), the server now sound
    assert [d.failed for d in deliver(stack)] == [False]

    # Then the video is stored, once
    assert_completed(stack, logs, task["id"], stub.video_sha256(stub_task), stub_task.size)


def with_function_timeout(stack: Any, function: str, seconds: int) -> None:
    """The stack deployed again with `function`'s Timeout changed, as `sam deploy` would."""
    body = copy.deepcopy(stack.template.body)
    body["Resources"][function]["Properties"]["Timeout"] = seconds
    names, attributes = dict(stack.template.names), dict(stack.template.attributes)
    stack.functions.redeploy(Template(body, names, attributes))


@stack_env(DOWNLOAD_MIN_BYTES_PER_SECOND=0)  # no floor: only the deadline can end the trickle
def test_a_trickling_download_ends_at_the_copys_deadline_inside_the_functions_timeout(
    stack, stub, monkeypatch, logs
):
    # Given a copy worker with 18 s to run, so its copy's deadline is 3 s away (COPY_CLEANUP_SECONDS
    # kept for the cleanup), and a finished task whose 9 MiB video trickles after 64 KiB
    from veo_relay.deadlines import COPY_CLEANUP_SECONDS

    with_function_timeout(stack, "CopyWorkerFunction", int(COPY_CLEANUP_SECONDS) + 3)
    stub.video_size = 9 * MIB
    task, _ = called_back(stack, stub)
    stub.inject("download", "trickle")
    uploads = spy_uploads(stack, monkeypatch)

    # When the copy worker handles the request
    started = time.monotonic()
    [delivery] = deliver(stack)
    elapsed = time.monotonic() - started

    # Then the attempt ends at the deadline, well before the function's Timeout (which would
    # have stopped it with its upload open and its lease held)
    assert delivery.failed and "FunctionTimedOut" not in str(delivery.error)
    assert 2.5 < elapsed < 6
    assert_ended_cleanly(stack, logs, task["id"], uploads, "deadline")


# =================================================================================================
# S3 faults
# =================================================================================================


@stack_env(COPY_LEASE_SECONDS=LEASE)
def test_s3_failing_mid_upload_leaves_nothing_and_the_retry_stores_one_object(
    stack, stub, monkeypatch, logs
):

    # Given a 9 MiB video (a 2-part multipart upload) and S3 failing every part after the first
    stub.video_size = 9 * MIB
    task, stub_task = called_back(stack, stub)
    s3 = stack.runtime("CopyWorkerFunction").videos._s3
    real_upload_part = s3.upload_part
    parts: list[int] = []
    outage = threading.Event()
    outage.set()

    def upload_part(**kwargs: Any) -> Any:
        parts.append(kwargs["PartNumber"])
        if outage.is_set() and kwargs["PartNumber"] >= 2:
            error = {"Code": "InternalError", "Message": "We encountered an internal error."}
            raise ClientError({"Error": error}, "UploadPart")
        return real_upload_part(**kwargs)

    monkeypatch.setattr(s3, "upload_part", upload_part)

    # When the copy worker handles the request
    [delivery] = deliver(stack)

    # Then the record goes back to the queue, the multipart upload was aborted: nothing remains
    assert delivery.failed
    assert 2 in parts
    assert open_uploads(stack) == []
    assert object_keys(stack) == []

    # When S3 has recovered and the request is delivered again after the lease
    outage.clear()
    parts.clear()
    time.sleep(AFTER_LEASE)
    assert [d.failed for d in deliver(stack)] == [False]

    # Then exactly one complete object holds the provider's bytes
    assert sorted(parts) == [1, 2]
    assert_completed(stack, logs, task["id"], stub.video_sha256(stub_task), 9 * MIB)


@stack_env(COPY_LEASE_SECONDS=LEASE)
def test_a_crash_between_the_upload_and_its_tag_is_redone_into_one_object(
    stack, stub, monkeypatch, logs
):

    # Given S3 failing the tag write (the mark of a complete object) once
    task, stub_task = called_back(stack, stub)
    s3 = stack.runtime("CopyWorkerFunction").videos._s3
    real_tagging = s3.put_object_tagging
    failures = [ClientError({"Error": {"Code": "SlowDown", "Message": "Slow down"}}, "Tagging")]

    def put_object_tagging(**kwargs: Any) -> Any:
        if failures:
            raise failures.pop()
        return real_tagging(**kwargs)

    monkeypatch.setattr(s3, "put_object_tagging", put_object_tagging)

    # When the copy worker handles the request
    [delivery] = deliver(stack)

    # Then the request failed with the object uploaded but untagged
    assert delivery.failed
    assert len(object_keys(stack)) == 1
    tagging = stack.client("s3").get_object_tagging(Bucket=stack.bucket, Key=object_keys(stack)[0])
    assert tagging["TagSet"] == []
    assert stack.status(task["id"]) == "in_progress"  # the failed copy gave its lease back

    # When the request is delivered again after the lease
    time.sleep(AFTER_LEASE)
    assert [d.failed for d in deliver(stack)] == [False]

    # Then S3 kept the object stored first (create-only), which was hashed and tagged: one
    # object, task completed
    assert stub_task.downloads == 2
    assert_completed(stack, logs, task["id"], stub.video_sha256(stub_task))


# =================================================================================================
# DynamoDB faults: throttling, conditional conflicts, a crash before the state write
# =================================================================================================


def test_dynamodb_throttling_within_the_sdk_retries_is_absorbed(
    stack, stub, dynamo, transitions, logs
):
    # Given every task-table read and write throttled on its first two attempts
    dynamo.throttle("UpdateItem", attempts=2)
    dynamo.throttle("PutItem", attempts=2)
    dynamo.throttle("GetItem", attempts=2, code="ThrottlingException")

    # When a video is requested, called back and copied
    task = stack.create_task("a fox")
    assert task["status"] == "in_progress"
    stub_task = stub.only_task()
    assert stub.call_back(stub_task).json() == {"status": "queued"}
    assert [d.failed for d in deliver(stack)] == [False]

    # Then the retries absorbed every throttle: one submit, one transition of each kind
    # (writes: the submit slot, submitted, callback with the copy's lease, completed; reads:
    # create, callback and copy each read the task)
    assert dynamo.throttled["UpdateItem"] >= 2 * 4
    assert dynamo.throttled["PutItem"] == 2 and dynamo.throttled["GetItem"] >= 2 * 3
    assert_completed(stack, logs, task["id"], stub.video_sha256(stub_task))
    assert stub.calls["submit"] == 1
    for name in ("record_callback", "mark_completed"):
        assert transitions.count(name, task["id"]) == 1, name
    assert transitions.count("mark_storing", task["id"]) == 0  # the callback took the lease


def test_a_callback_throttled_beyond_the_retries_fails_and_the_providers_retry_completes(
    stack, stub, dynamo, transitions, logs
):
    # Given a finished task, and DynamoDB throttling every attempt of the callback's write
    task, stub_task = submitted_task(stack, stub)
    dynamo.throttle("UpdateItem", attempts=4, requests=1, matches=sets("callback_received_at"))
    event = callback_event(stub_task.token, stub.status_body(stub_task))

    # When the callback arrives, the function fails (API Gateway answers 500, the provider
    # retries)
    with pytest.raises(Exception, match="ProvisionedThroughputExceeded"):
        stack.invoke("CallbackFunction", event)

    # Then nothing was recorded or queued
    assert "callback_received_at" not in stack.item(task["id"])
    assert queued_bodies(stack, "CopyQueue") == []

    # When the provider retries the callback
    response = stack.invoke("CallbackFunction", event)

    # Then it is accepted once, and the copy completes the task with one object
    assert response["statusCode"] == 200 and response_json(response) == {"status": "queued"}
    assert dynamo.throttled["UpdateItem"] == 4
    assert [d.failed for d in deliver(stack)] == [False]
    assert_completed(stack, logs, task["id"], stub.video_sha256(stub_task))
    assert transitions.count("record_callback", task["id"]) == 1


def test_a_copy_throttled_beyond_the_retries_before_its_lease_is_retried_at_once(
    stack, stub, dynamo, logs
):
    # Given a finished task whose callback never came: the poller found it and asked for the copy
    # (the copy worker takes the lease itself), and DynamoDB throttling every attempt of that write
    task, stub_task = submitted_task(stack, stub)
    assert poll(stack, task["id"])["outcome"] == "open"
    dynamo.throttle("UpdateItem", attempts=4, requests=1, matches=sets("status", "storing"))

    # When the copy worker handles the request
    [delivery] = deliver(stack)

    # Then the record goes back to the queue and the task is untouched
    assert delivery.failed
    assert_untouched(stack, task["id"], "in_progress")

    # When it is delivered again (no lease was taken, so at once)
    assert [d.failed for d in deliver(stack)] == [False]

    # Then the task is completed with one object
    assert_completed(stack, logs, task["id"], stub.video_sha256(stub_task))


@stack_env(COPY_LEASE_SECONDS=LEASE)
@pytest.mark.parametrize("crash", ["process-crash", "throttled-write"])
def test_a_crash_between_the_copy_and_the_state_write_keeps_the_object_on_redelivery(
    stack, stub, dynamo, transitions, monkeypatch, crash, logs
):
    from veo_relay.task_store import TaskStore

    # Given a finished task, and the copy's final state write failing once
    task, stub_task = called_back(stack, stub)
    if crash == "process-crash":
        real = TaskStore.mark_completed
        crashes = [RuntimeError("the copy worker died before its state write")]

        def mark_completed(self: Any, task_id: str, video: Any, *args: Any, **kwargs: Any) -> Any:
            if crashes:
                raise crashes.pop()
            return real(self, task_id, video, *args, **kwargs)

        monkeypatch.setattr(TaskStore, "mark_completed", mark_completed)
    else:
        dynamo.throttle("UpdateItem", attempts=4, requests=1, matches=sets("status", "completed"))

    # When the copy worker handles the request
    [delivery] = deliver(stack)

    # Then the video is in the bucket, complete, but the task is not completed yet
    assert delivery.failed
    assert stack.status(task["id"]) == "storing"
    assert len(object_keys(stack)) == 1 and stub_task.downloads == 1

    # When the request is delivered again after the lease
    time.sleep(AFTER_LEASE)
    assert [d.failed for d in deliver(stack)] == [False]

    # Then the video was downloaded again (nothing asks S3 whether a key exists: without
    # s3:ListBucket that is a 403), S3 refused the create-only write, and the object stored
    # first completes the task
    assert stub_task.downloads == 2
    assert_completed(stack, logs, task["id"], stub.video_sha256(stub_task))
    assert transitions.count("mark_completed", task["id"]) == 1


def test_a_submit_whose_state_write_is_throttled_is_recovered_by_its_callback(
    stack, stub, dynamo, logs
):
    # Given DynamoDB throttling every attempt of the write that records the provider's task id
    dynamo.throttle("UpdateItem", attempts=4, requests=1, matches=sets("provider_task_id"))

    # When a video is requested: the provider accepts it and the write fails
    response = stack.create_video({"prompt": "a fox"})

    # Then the client gets the task, queued, not an error (which would invite a second create,
    # a second payment): the write's failure is logged
    assert response["statusCode"] == 202, response
    [item] = stack.task_items()
    task_id = item["id"]["S"]
    assert response_json(response)["id"] == task_id
    assert response_json(response)["status"] == "queued"
    assert item["status"]["S"] == "queued" and "provider_task_id" not in item
    assert logs.records("a step after the task was recorded failed", task_id=task_id)
    stub_task = stub.only_task()

    # When the provider calls the task's own URL back
    assert stub.call_back(stub_task).status_code == 200

    # Then the task learns its provider task id and completes with one object; one submit only
    assert stack.item(task_id)["provider_task_id"]["S"] == stub_task.task_id
    assert [d.failed for d in deliver(stack)] == [False]
    assert_completed(stack, logs, task_id, stub.video_sha256(stub_task))
    assert stub.calls["submit"] == 1


def test_a_retry_after_a_write_failed_past_the_providers_acceptance_returns_the_task_unpaid(
    stack, stub, dynamo, logs
):
    # Given DynamoDB throttling every attempt of the write that records the provider's task id
    dynamo.throttle("UpdateItem", attempts=4, requests=1, matches=sets("provider_task_id"))
    body = {"prompt": "a fox"}
    event = api_event("api_create_video", body=body, headers={"idempotency-key": "fox-1"})

    # When a create with an Idempotency-Key is accepted by the provider but that write fails
    first = stack.invoke("ApiFunction", event)
    [item] = stack.task_items()
    assert stub.calls["submit"] == 1
    assert (first["statusCode"], response_json(first)["id"]) == (202, item["id"]["S"])

    # And the client retries it with the same key and body
    again = stack.invoke("ApiFunction", event)

    # Then the retry gets the task the first request created, whatever its state, and the
    # provider was not asked again: one submit, one provider task, one task
    assert again["statusCode"] == 202, again
    assert response_json(again)["id"] == item["id"]["S"]
    assert response_json(again)["status"] == "queued"
    assert stub.calls["submit"] == 1 and len(stub.tasks) == 1
    assert [i["id"]["S"] for i in stack.task_items()] == [item["id"]["S"]]

    # And the same key with another body is still a conflict, and submits nothing
    other = api_event("api_create_video", body={"prompt": "a cat"}, headers=event["headers"])
    conflict = stack.invoke("ApiFunction", other)
    assert conflict["statusCode"] == 409
    assert response_json(conflict)["error"]["code"] == "conflict"
    assert stub.calls["submit"] == 1

    # When the provider calls the task's own URL back, the task completes with one object
    assert stub.call_back(stub.only_task()).status_code == 200
    assert [d.failed for d in deliver(stack)] == [False]
    assert_completed(stack, logs, item["id"]["S"], stub.video_sha256(stub.only_task()))

    # And a retry now returns it completed, still without a submit
    done = stack.invoke("ApiFunction", event)
    assert (done["statusCode"], response_json(done)["status"]) == (202, "completed")
    assert stub.calls["submit"] == 1


def test_a_submit_whose_state_write_is_throttled_is_still_watched_by_its_poller(
    stack, stub, dynamo
):
    # Given DynamoDB throttling every attempt of the write that records the provider's task id
    dynamo.throttle("UpdateItem", attempts=4, requests=1, matches=sets("provider_task_id"))

    # When a video is requested and the write fails after the provider accepted it
    with contextlib.suppress(Exception):
        stack.create_video({"prompt": "a fox [no callback will come]"})
    [item] = stack.task_items()

    # Then its fallback poller runs all the same, so the deadline can close it
    sfn = stack.client("stepfunctions")
    execution = sfn.describe_execution(executionArn=stack.execution_arn(item["id"]["S"]))
    assert execution["status"] == "RUNNING"


def test_a_throttled_create_answers_with_the_error_shape_and_submits_nothing(stack, stub, dynamo):
    # Given DynamoDB throttling every attempt of the new task's write
    dynamo.throttle("PutItem", attempts=4, requests=1)

    # When a video is requested
    response = stack.create_video({"prompt": "a fox"})

    # Then the client is told to retry, in the error shape, and nothing was submitted
    assert response["statusCode"] in (429, 503)
    assert set(response_json(response)["error"]) == {"code", "message"}
    assert stub.calls["submit"] == 0 and stack.task_items() == []


# =================================================================================================
# Duplicate deliveries and conditional conflicts
# =================================================================================================


def test_a_copy_request_delivered_twice_in_a_row_stores_once(stack, stub, transitions, logs):
    # Given a task completed by its copy request
    task, stub_task = called_back(stack, stub)
    event = {"Records": [_sqs_record_for(stack, task["id"])]}
    assert stack.invoke("CopyWorkerFunction", event) == {"batchItemFailures": []}
    before = stack.item(task["id"])
    status_reads = stub.calls["status"]

    # When SQS delivers the same message again
    assert stack.invoke("CopyWorkerFunction", event) == {"batchItemFailures": []}

    # Then nothing happens: no status read, no download, no write; one object
    assert stub.calls["status"] == status_reads and stub_task.downloads == 1
    assert stack.item(task["id"]) == before
    assert_completed(stack, logs, task["id"], stub.video_sha256(stub_task))
    assert transitions.count("mark_completed", task["id"]) == 1


def test_copy_requests_delivered_concurrently_take_one_lease_and_store_once(
    stack, stub, transitions, monkeypatch, logs
):
    from veo_relay.copying import CopyOutcome
    from veo_relay.task_store import TaskStore

    # Given a finished task the poller found, and three copy workers that reach the lease write
    # together
    task, stub_task = submitted_task(stack, stub)  # no callback: each worker takes the lease
    workers = 3
    barrier = threading.Barrier(workers, timeout=10)
    real_mark_storing = TaskStore.mark_storing

    def mark_storing(self: Any, task_id: str, lease: Any) -> Any:
        barrier.wait()
        return real_mark_storing(self, task_id, lease)

    monkeypatch.setattr(TaskStore, "mark_storing", mark_storing)
    copier = stack.runtime("CopyWorkerFunction").copier
    outcomes: list[Any] = []

    def work() -> None:
        outcomes.append(copier.copy(task["id"]))

    # When they run at once (the copy worker's use case, one thread per Lambda instance)
    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    # Then the conditional write gave the lease to one: one download, one object, one completion
    assert sorted(outcomes) == sorted(
        [CopyOutcome.COMPLETED] + [CopyOutcome.ALREADY_CLOSED] * (workers - 1)
    )
    assert transitions.count("mark_storing", task["id"]) == 1
    assert transitions.count("mark_completed", task["id"]) == 1
    assert stub_task.downloads == 1
    assert_completed(stack, logs, task["id"], stub.video_sha256(stub_task))


def test_ten_concurrent_identical_callbacks_queue_one_copy(stack, stub, transitions, logs):
    # Given a finished task whose provider calls back ten times at once
    task, stub_task = submitted_task(stack, stub)
    answers: list[tuple[int, Any]] = []
    lock = threading.Lock()

    def call() -> None:
        response = stub.call_back(stub_task)
        with lock:
            answers.append((response.status_code, response.json()["status"]))

    threads = [threading.Thread(target=call) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    # Then every callback is answered 200; exactly one queued a copy
    assert sorted(answers) == sorted([(200, "queued")] + [(200, "duplicate")] * 9)
    assert [(b["task_id"], b["reason"]) for b in queued_bodies(stack, "CopyQueue")] == [
        (task["id"], "callback")
    ]
    assert transitions.count("record_callback", task["id"]) == 1

    # And the copy makes one object and one completion
    deliver(stack)
    assert_completed(stack, logs, task["id"], stub.video_sha256(stub_task))
    assert transitions.count("mark_completed", task["id"]) == 1


@pytest.mark.parametrize("outcome", ["completed", "failed"])
def test_a_late_callback_after_the_task_closed_is_answered_200_and_changes_nothing(
    stack, stub, outcome, logs
):
    # Given a task already closed (completed, or failed by the provider)
    task, stub_task = submitted_task(stack, stub)
    if outcome == "failed":
        stub_task.state, stub_task.fail_code = "failed", "CONTENT_VIOLATION"
    assert stub.call_back(stub_task).status_code == 200
    deliver(stack)
    before = stack.item(task["id"])
    assert before["status"]["S"] == outcome

    # When callbacks arrive late, saying either outcome
    answers = [
        stub.call_back(stub_task, stub.status_body(stub_task, state))
        for state in ("success", "failed")
    ]

    # Then they are acknowledged, queue nothing, and the task is untouched
    assert [(a.status_code, a.json()) for a in answers] == [(200, {"status": "already_closed"})] * 2
    assert queued_bodies(stack, "CopyQueue") == []
    assert stack.item(task["id"]) == before
    if outcome == "completed":
        assert_completed(stack, logs, task["id"], stub.video_sha256(stub_task))
    else:
        assert_failed(stack, logs, task["id"], "content_violation")


def test_out_of_order_callbacks_are_no_ops_and_the_status_api_decides(stack, stub, logs):
    # Given a finished task whose first callback says "failed" (the provider's status says success)
    task, stub_task = submitted_task(stack, stub)
    failed_body = apixo_status_body(stub_task.task_id, "failed", fail_code="GENERATION_FAILED")
    assert stub.call_back(stub_task, failed_body).json() == {"status": "queued"}

    # When a stale "processing" callback arrives after it
    stale = stub.call_back(stub_task, stub.status_body(stub_task, "running"))

    # Then it is acknowledged as a duplicate, and only one copy is queued
    assert (stale.status_code, stale.json()) == (200, {"status": "duplicate"})
    assert len(queued_bodies(stack, "CopyQueue")) == 1

    # And the copy follows the provider's status API, not the callback bodies: completed
    deliver(stack)
    assert_completed(stack, logs, task["id"], stub.video_sha256(stub_task))


def test_a_forged_success_with_a_valid_token_changes_nothing(stack, stub, transitions):
    # Given a task still running at the provider, and a "success" callback on its URL
    stub.initial_state = "running"
    task, stub_task = submitted_task(stack, stub)
    forged = stub.status_body(stub_task, "success")

    # When the forged callback arrives and its copy request is handled
    response = stub.call_back(stub_task, forged)
    assert response.status_code == 200
    assert [d.failed for d in deliver(stack)] == [False]

    # Then the provider's status API said "running": no lease, no download, no object, no outcome
    assert_untouched(stack, task["id"], "in_progress")
    assert stub_task.downloads == 0 and stub.calls["download"] == 0
    assert transitions.count("mark_storing", task["id"]) == 0


@stack_env(CALLBACK_QUIET_SECONDS=1)
def test_after_a_forged_success_the_genuine_callback_still_gets_the_video_copied(stack, stub, logs):
    # Given a forged "success" handled while the provider was still running
    stub.initial_state = "running"
    task, stub_task = submitted_task(stack, stub)
    stub.call_back(stub_task, stub.status_body(stub_task, "success"))
    deliver(stack)

    # When the provider really finishes and calls back, after the quiet second
    stub_task.state = "success"
    time.sleep(1.1)
    response = stub.call_back(stub_task)

    # Then that callback queues the copy, which stores the video
    assert response.json() == {"status": "queued"}
    deliver(stack)
    assert_completed(stack, logs, task["id"], stub.video_sha256(stub_task))


@stack_env(CALLBACK_QUIET_SECONDS=2)
def test_after_an_unconfirmed_callback_more_callbacks_queue_nothing_for_a_while(stack, stub):
    # Given a running task whose token leaked: a callback came, the copy worker asked the provider
    # (still running) and gave the task back
    stub.initial_state = "running"
    task, stub_task = submitted_task(stack, stub)
    assert stub.call_back(stub_task).json() == {"status": "queued"}
    assert [d.failed for d in deliver(stack)] == [False]
    status_calls = stub.calls["status"]
    quiet_until = stack.item(task["id"])["callbacks_quiet_until"]["S"]
    assert stack.status(task["id"]) == "in_progress"

    # When more callbacks come within the quiet time
    answers = [stub.call_back(stub_task) for _ in range(5)]

    # Then each is answered 200 (so the provider does not retry) and none queues a copy now: no
    # copy worker run, no status call (the first queues one for the end of the quiet time: its
    # own test follows)
    assert [(a.status_code, a.json()) for a in answers] == [(200, {"status": "ignored"})] * 5
    assert queued_bodies(stack, "CopyQueue") == []
    assert stub.calls["status"] == status_calls
    assert "callback_received_at" not in stack.item(task["id"])

    # When one comes after it
    from veo_relay.tasks import parse_timestamp

    time.sleep(max(0.0, parse_timestamp(quiet_until).timestamp() - time.time()) + 0.05)
    late = stub.call_back(stub_task)

    # Then it queues the copy again
    assert late.json() == {"status": "queued"}
    bodies = queued_bodies(stack, "CopyQueue")
    assert [(b["task_id"], b["reason"]) for b in bodies if b["reason"] != "deferred callback"] == [
        (task["id"], "callback")
    ]


@pytest.fixture
def copy_requests(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every copy request sent, with its SQS delay."""
    from veo_relay.queues import CopyQueue

    sent: list[dict[str, Any]] = []
    real = CopyQueue.request_copy

    def recording(self: Any, task_id: str, reason: str, lease: Any = None, **delay: Any) -> None:
        sent.append({"task_id": task_id, "reason": reason, **delay})
        real(self, task_id, reason, lease, **delay)

    monkeypatch.setattr(CopyQueue, "request_copy", recording)
    return sent


@stack_env(CALLBACK_QUIET_SECONDS=2)
def test_a_genuine_callback_within_the_quiet_time_gets_one_copy_at_its_end(
    stack, stub, logs, copy_requests
):
    # Given an unconfirmed callback (the provider still running): callbacks are quiet for 2 s
    stub.initial_state = "running"
    task, stub_task = submitted_task(stack, stub)
    assert stub.call_back(stub_task).json() == {"status": "queued"}
    assert [d.failed for d in deliver(stack)] == [False]
    from veo_relay.tasks import parse_timestamp

    quiet_until = parse_timestamp(stack.item(task["id"])["callbacks_quiet_until"]["S"])
    del copy_requests[:]

    # When the provider finishes and its genuine callback, and two more, come within that time
    stub_task.state = "success"
    answers = [stub.call_back(stub_task) for _ in range(3)]
    sent_at = time.time()

    # Then each is answered 200 "ignored", and exactly one copy is queued, delayed to the end of
    # the quiet time (SQS DelaySeconds), taking no lease now
    assert [(a.status_code, a.json()) for a in answers] == [(200, {"status": "ignored"})] * 3
    [request] = copy_requests
    assert (request["task_id"], request["reason"]) == (task["id"], "deferred callback")
    remaining = quiet_until.timestamp() - sent_at
    assert remaining < request["delay_seconds"] <= remaining + 2.5
    assert queued_bodies(stack, "CopyQueue") == []  # not visible before its delay
    item = stack.item(task["id"])
    assert item["status"]["S"] == "in_progress" and "callback_received_at" not in item

    # When it is delivered, after the quiet time
    bodies = wait_until(
        lambda: queued_bodies(stack, "CopyQueue"), timeout=6, what="the deferred copy request"
    )
    assert time.time() >= quiet_until.timestamp()
    assert [(b["task_id"], b["reason"]) for b in bodies] == [(task["id"], "deferred callback")]
    assert [d.failed for d in deliver(stack)] == [False]

    # Then it took the lease as a callback does, and the video is stored once
    assert_completed(stack, logs, task["id"], stub.video_sha256(stub_task))
    from veo_relay.tasks import format_timestamp

    assert stack.item(task["id"])["callback_received_at"]["S"] >= format_timestamp(quiet_until)
    assert copy_requests[1:] == []


def test_the_poller_still_copies_a_task_whose_callbacks_are_quiet(stack, stub, logs):
    # Given an unconfirmed callback (quiet for the default 30 s), then the provider finishing
    stub.initial_state = "running"
    task, stub_task = submitted_task(stack, stub)
    stub.call_back(stub_task)
    deliver(stack)
    stub_task.state = "success"
    assert stub.call_back(stub_task).json() == {"status": "ignored"}

    # When the fallback poller looks
    assert poll(stack, task["id"])["outcome"] == "open"
    assert [b["reason"] for b in queued_bodies(stack, "CopyQueue")] == ["poller"]
    deliver(stack)

    # Then the video is stored all the same
    assert_completed(stack, logs, task["id"], stub.video_sha256(stub_task))


@stack_env(PROVIDER_PREFERENCE="apixo,kie")
def test_after_failover_only_the_new_providers_attempt_has_a_token(stack, stub, kie):
    # Given an `auto` task apixo refused for lack of credits (creating nothing): the task moved to
    # kie, whose submit (the second attempt) the submit worker made
    stub.inject("submit", 402)
    task = stack.create_task("a fox [sim:no-callback]", provider="auto")
    assert task["status"] == "queued" and stub.tasks == {}
    assert [d.failed for d in deliver(stack, "SubmitQueue", "SubmitWorkerFunction")] == [False]
    item = stack.item(task["id"])
    assert (item["provider"]["S"], item["submit_attempt"]["N"]) == ("kie", "2")
    kie_task = kie.task(item["provider_task_id"]["S"])
    kie_token = kie_task.callback_url.rsplit("/", 1)[1]
    assert kie_token.startswith(f"{task['id']}.2.")
    # (the token apixo was handed with the first attempt, as the API derived it)
    apixo_token = stack.runtime("ApiFunction").callback_tokens.mint("apixo", task["id"], 1)
    body = {"code": 200, "msg": "ok", "data": {"taskId": kie_task.task_id}}

    # When callbacks come with the first attempt's token (on either path), or kie's on apixo's
    refused = [
        stack.invoke("CallbackFunction", callback_event(apixo_token, body, provider="apixo")),
        stack.invoke("CallbackFunction", callback_event(apixo_token, body, provider="kie")),
        stack.invoke("CallbackFunction", callback_event(kie_token, body, provider="apixo")),
    ]
    # Then each is refused, and the task is untouched
    assert [r["statusCode"] for r in refused] == [401, 401, 401]
    assert stack.item(task["id"]) == item

    # When kie calls back on its own URL
    accepted = stack.invoke("CallbackFunction", callback_event(kie_token, body, provider="kie"))

    # Then that one is accepted
    assert (accepted["statusCode"], response_json(accepted)) == (200, {"status": "queued"})


def test_a_kie_timestamp_of_5000_digits_is_401_not_500(stack, kie, logs):
    # Given a kie task whose callbacks are signed
    stack.put_callback_keys(kie=KIE_HMAC_KEY)
    task = stack.create_task("a fox [sim:no-callback]", provider="kie")
    sim_task = kie.task(task["provider_task_id"])
    body, headers = kie_callback(sim_task.task_id, int(time.time()), KIE_HMAC_KEY)
    logs.secrets.update({KIE_HMAC_KEY, headers["X-Webhook-Signature"]})

    # When a callback on its URL carries a timestamp of 5,000 digits
    headers["X-Webhook-Timestamp"] = "9" * 5000
    response = requests.post(sim_task.callback_url, json=body, headers=headers, timeout=10)

    # Then it is refused as an invalid callback, and nothing changes
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_callback"
    assert "callback_received_at" not in stack.item(task["id"])
    assert queued_bodies(stack, "CopyQueue") == []


# =================================================================================================
# Poison messages and the dead-letter queues
# =================================================================================================


class CountingFunctions:
    """The local functions, counting invocations per function (for the event source)."""

    def __init__(self, functions: Any) -> None:
        self._functions = functions
        self.invocations: Counter[str] = Counter()

    def invoke(self, name: str, event: dict[str, Any]) -> Any:
        self.invocations[name] += 1
        return self._functions.invoke(name, event)


@contextlib.contextmanager
def event_sources(stack: Any) -> Iterator[CountingFunctions]:
    """The offline stack's SQS pollers, a failed record visible again at once."""
    functions = CountingFunctions(stack.functions)
    pollers = QueuePollers(
        stack.template, functions, stack.client("sqs"), pollers_per_queue=1, retry_delay_seconds=0
    )
    pollers.start()
    try:
        yield functions
    finally:
        pollers.stop()


def dead_letters(stack: Any, dlq: str, wait: float = 10.0) -> list[str]:
    sqs = stack.client("sqs")
    url = stack.template.names[dlq]

    def probe() -> list[str]:
        found = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        return [m["Body"] for m in found.get("Messages", [])]

    return wait_until(probe, timeout=wait, interval=0.1, what=f"a message in {dlq}")


def redrive(queue: str) -> tuple[str, int]:
    policy = load_template().resources[queue]["Properties"]["RedrivePolicy"]
    return policy["deadLetterTargetArn"]["Fn::GetAtt"][0], int(policy["maxReceiveCount"])


@pytest.mark.parametrize(
    ("queue", "function", "body"),
    [
        ("CopyQueue", "CopyWorkerFunction", '{"reason": "callback"}'),
        ("CopyQueue", "CopyWorkerFunction", "not json"),
        ("SubmitQueue", "SubmitWorkerFunction", '{"task_id": "vid_x", "slot_at": "soon"}'),
    ],
    ids=["copy-without-task-id", "copy-not-json", "submit-malformed"],
)
def test_a_poison_message_lands_in_its_dead_letter_queue_after_max_receives(
    stack, queue, function, body
):
    # Given a message no worker can handle
    dlq, max_receives = redrive(queue)
    stack.client("sqs").send_message(QueueUrl=stack.template.names[queue], MessageBody=body)

    # When the event source keeps delivering it
    with event_sources(stack) as functions:
        moved = dead_letters(stack, dlq)

    # Then after maxReceiveCount attempts it sits in the dead-letter queue, and no longer in its own
    assert moved == [body]
    assert functions.invocations[function] == max_receives
    assert queued_bodies(stack, queue) == []
    assert_dead_letter_alarm(dlq)


def assert_dead_letter_alarm(dlq: str) -> None:
    """template.yaml has an alarm that fires as soon as one message is visible in `dlq`."""
    alarms = [
        spec["Properties"]
        for spec in load_template().of_type("AWS::CloudWatch::Alarm").values()
        if {"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq, "QueueName"]}}
        in spec["Properties"].get("Dimensions", [])
    ]
    assert len(alarms) == 1, f"no alarm watches {dlq}"
    [alarm] = alarms
    assert alarm["Namespace"] == "AWS/SQS"
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold" and alarm["Threshold"] == 0


@stack_env(TASK_DEADLINE_SECONDS=3, COPY_LEASE_SECONDS=LEASE)
def test_a_copy_that_keeps_failing_is_dead_lettered_and_the_deadline_closes_its_task(
    stack, stub, logs
):
    # Given a finished task whose provider status endpoint is down for good
    task, _ = called_back(stack, stub)
    stub.inject("status", *[503] * 200)
    dlq, max_receives = redrive("CopyQueue")

    # When the event source keeps delivering its copy request
    with event_sources(stack) as functions:
        moved = dead_letters(stack, dlq)

    # Then the request is dead-lettered after maxReceiveCount attempts, the task still open
    assert [json.loads(b)["task_id"] for b in moved] == [task["id"]]
    assert functions.invocations["CopyWorkerFunction"] == max_receives
    assert_untouched(stack, task["id"], "storing")  # the callback's lease, now unused

    # And at the deadline, once that lease is out, the fallback poller closes it: failed,
    # timeout, nothing stored
    time.sleep(AFTER_LEASE)
    wait_past(task, 3)
    assert poll(stack, task["id"])["outcome"] == "closed"
    assert_failed(stack, logs, task["id"], "timeout")


def test_the_template_watches_every_dead_letter_queue_and_cleans_up_uploads():
    template = load_template()
    queues = template.of_type("AWS::SQS::Queue")
    sources = {name for name, spec in queues.items() if "RedrivePolicy" in spec["Properties"]}
    assert sources == {"CopyQueue", "SubmitQueue", "StoredVideoQueue", "WebhookQueue"}
    for name in sources:
        dlq, max_receives = redrive(name)
        assert dlq in queues and max_receives >= 3
        assert_dead_letter_alarm(dlq)
    # Each stream trigger's on-failure destination is a dead-letter queue too, and watched
    triggers = template.stream_triggers()
    assert {t.function for t in triggers} == {"FailureAnnouncerFunction", "SpendSettlerFunction"}
    for trigger in triggers:
        assert trigger.on_failure_queue in queues and trigger.maximum_retry_attempts >= 3
        assert_dead_letter_alarm(trigger.on_failure_queue)
    # A process killed mid-upload leaves parts behind: the bucket's lifecycle aborts them
    rules = template.resources["VideoBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert any("AbortIncompleteMultipartUpload" in rule for rule in rules)
    # API Gateway's access log names the route, never the path (which carries callback tokens)
    access_log = template.resources["HttpApi"]["Properties"]["AccessLogSettings"]["Format"]
    assert "$context.path" not in access_log and "$context.routeKey" in access_log


# =================================================================================================
# Logs: what failures say, and no secret ever
# =================================================================================================


def test_a_whole_run_through_the_simulator_logs_no_token_and_no_key(stack, logs):
    # Given a task whose provider (the simulator) calls back over HTTP
    task = stack.create_task("a fox")
    sim_task = stack.simulator.task(task["provider_task_id"])
    token = sim_task.callback_url.rsplit("/", 1)[1]
    logs.secrets.update({token, token.rsplit(".", 1)[1]})

    # When the callback came and the copy ran (its request is sent just after the callback's
    # write: waiting for the write alone could find the queue still empty)
    wait_until(lambda: queued_bodies(stack, "CopyQueue"), what="the callback's copy request")
    deliver(stack)

    # Then the task is completed and the run was logged (the capture works)
    assert_completed(stack, logs, task["id"], stack.simulator.video_sha256(sim_task.task_id))
    assert logs.records("task submitted", logging.INFO, task_id=task["id"])
    assert logs.records("callback accepted", logging.INFO, task_id=task["id"])
    assert logs.records("video stored", logging.INFO, task_id=task["id"])
    # And neither the token nor the API key is anywhere in it (checked again after the test)
    assert logs.leaked() == []


def kie_callback(task_id: str, timestamp: int, key: str) -> tuple[dict[str, Any], dict[str, str]]:
    body = {
        "code": 200,
        "msg": "Veo3.1 video generated successfully.",
        "data": {"taskId": task_id, "info": {"resultUrls": []}, "fallbackFlag": False},
    }
    digest = hmac.new(key.encode(), f"{task_id}.{timestamp}".encode(), hashlib.sha256).digest()
    headers = {
        "X-Webhook-Timestamp": str(timestamp),
        "X-Webhook-Signature": base64.b64encode(digest).decode(),
    }
    return body, headers


def test_a_signed_kie_run_logs_no_token_key_or_signature(stack, kie, logs):
    # Given a kie task (callbacks signed with the account's HMAC key, in the callback keys secret)
    stack.put_callback_keys(kie=KIE_HMAC_KEY)
    task = stack.create_task("a fox [sim:no-callback]", provider="kie")
    sim_task = kie.task(task["provider_task_id"])
    kie.wait_for(lambda: kie.task(sim_task.task_id).state == "succeeded", timeout=10)
    token = sim_task.callback_url.rsplit("/", 1)[1]
    body, headers = kie_callback(sim_task.task_id, int(time.time()), KIE_HMAC_KEY)
    _, forged_headers = kie_callback(sim_task.task_id, int(time.time()), "not-the-key")
    logs.secrets.update(
        {
            token,
            token.rsplit(".", 1)[1],
            KIE_HMAC_KEY,
            headers["X-Webhook-Signature"],
            forged_headers["X-Webhook-Signature"],
        }
    )
    url = sim_task.callback_url

    # When a callback with a wrong signature comes, then the provider's signed one
    forged = requests.post(url, json=body, headers=forged_headers, timeout=10)
    genuine = requests.post(url, json=body, headers=headers, timeout=10)
    deliver(stack)

    # Then the forgery was refused with a warning, the genuine one completed the task
    assert forged.status_code == 401 and genuine.status_code == 200
    assert logs.records("callback refused", logging.WARNING, code="invalid_callback")
    assert_completed(stack, logs, task["id"], kie.video_sha256(sim_task.task_id))
    # And no token, key or signature is anywhere in the logs (checked again after the test)
    assert logs.leaked() == []


def test_a_failed_copy_attempt_is_logged_with_its_task_and_reason(stack, stub, logs):
    # Given a finished task whose video download fails
    task, _ = called_back(stack, stub)
    stub.inject("download", 503)

    # When the copy worker's attempt fails
    [delivery] = deliver(stack)
    assert delivery.failed

    # Then a warning says which task and why
    warnings = logs.records(level=logging.WARNING)
    assert any(
        task["id"] in repr(vars(r)) and "503" in (r.getMessage() + repr(r.exc_info))
        for r in warnings
    ), [r.getMessage() for r in warnings]


def test_a_callback_that_fails_through_the_http_api_logs_no_token(stack, stub, dynamo, logs):
    # Given a finished task, and DynamoDB throttling every attempt of the callback's write
    task, stub_task = submitted_task(stack, stub)
    dynamo.throttle("UpdateItem", attempts=4, requests=1, matches=sets("callback_received_at"))

    # When the provider's callback reaches the HTTP API and the function fails
    response = stub.call_back(stub_task)

    # Then the provider gets a 5xx (it will retry) and the logs hold no token
    assert response.status_code >= 500
    logs.enforce = False  # checked here: a leak is this test's failure, not a teardown error
    assert logs.leaked() == []
