"""Client webhooks: `video.completed` / `video.failed`, signed the Standard Webhooks way,
delivered with the downloader's SSRF defences and retried with backoff through the webhook queue.

The queue receives each `Video Completed` / `Video Failed` event from our bus (an EventBridge
rule); a failed attempt is queued again, delayed by the next step of the retry schedule. When the
schedule runs out the delivery fails, and the queue's redrive moves it to the dead-letter queue.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
import time
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import urllib3
from aws_lambda_powertools import Logger
from urllib3.connection import HTTPConnection
from urllib3.exceptions import ProtocolError

from veo_relay.errors import InvalidRequest, TaskNotFound
from veo_relay.ports import Metrics, TaskRepository
from veo_relay.queries import TaskQueries
from veo_relay.safe_urls import (
    ParsedUrl,
    RefusedUrl,
    UnresolvableHost,
    check_address,
    parse_url,
    pinned_connection,
    resolve,
)
from veo_relay.settings import WebhookDelivery
from veo_relay.tasks import utc_now
from veo_relay.webhook_signing import signatures

if TYPE_CHECKING:
    from veo_relay.webhook_secrets import WebhookSecrets  # PynamoDB: with the first delivery

logger = Logger(child=True)

EVENT_TYPES = {"Video Completed": "video.completed", "Video Failed": "video.failed"}
_CONNECT_TIMEOUT_SECONDS = 5.0
_USER_AGENT = "veo-relay-webhooks/1"
_MAX_STATUS_LINE_BYTES = 1024
_STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([0-9]{3})(?: [^\r\n]*)?\r?")


class WebhookOutcome(StrEnum):
    DELIVERED = "delivered"
    NO_WEBHOOK = "no_webhook"
    REFUSED = "refused"  # the URL is not one we may call (it can only get worse)
    GONE = "gone"  # 410: the receiver asked us to stop
    RETRY_SCHEDULED = "retry_scheduled"
    DEFERRED = "deferred"  # a retry whose time has not come (SQS delays are 15 minutes at most)


class WebhookGaveUp(Exception):
    """Every attempt of the schedule failed; the message goes to the dead-letter queue."""


@dataclass(frozen=True)
class Delivery:
    event_type: str  # video.completed | video.failed
    task_id: str
    attempt: int = 1  # this attempt's number, from 1
    not_before: float = 0.0

    @property
    def message_id(self) -> str:
        """Stable across retries, so that a receiver can drop a duplicate."""
        return f"msg_{self.task_id}_{self.event_type.removeprefix('video.')}"


def delivery_from_message(body: str) -> Delivery:
    """A webhook queue message: an event from our bus (first attempt), or a queued retry."""
    message = json.loads(body)
    if "retry" in message:
        retry = message["retry"]
        return Delivery(
            event_type=str(retry["event_type"]),
            task_id=str(retry["task_id"]),
            attempt=int(retry["attempt"]),
            not_before=float(retry["not_before"]),
        )
    event_type = EVENT_TYPES.get(message.get("detail-type", ""))
    task_id = (message.get("detail") or {}).get("id")
    if event_type is None or not isinstance(task_id, str):
        raise ValueError("not a Video Completed / Video Failed event")
    return Delivery(event_type=event_type, task_id=task_id)


class WebhookQueue:
    MAX_DELAY_SECONDS = 900  # SQS's limit; a longer wait takes several hops

    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs = sqs
        self._queue_url = queue_url

    def send(self, delivery: Delivery) -> None:
        delay = min(self.MAX_DELAY_SECONDS, max(0, math.ceil(delivery.not_before - time.time())))
        self._sqs.send_message(
            QueueUrl=self._queue_url,
            MessageBody=json.dumps(
                {
                    "retry": {
                        "event_type": delivery.event_type,
                        "task_id": delivery.task_id,
                        "attempt": delivery.attempt,
                        "not_before": delivery.not_before,
                    }
                }
            ),
            DelaySeconds=delay,
        )


def check_webhook_url(url: str, allow_loopback: bool) -> None:
    """What can be refused before any DNS lookup; the addresses are checked at each delivery."""
    try:
        target = parse_url(url)
        loopback = _allowed_loopback(target, allow_loopback)
    except RefusedUrl as exc:
        raise InvalidRequest("webhook_url", str(exc)) from None
    if target.host == "localhost" and not loopback:
        raise InvalidRequest("webhook_url", "must not name this machine")
    try:
        literal = ipaddress.ip_address(target.host)
    except ValueError:
        return
    if not loopback and check_address(str(literal)) is not None:
        raise InvalidRequest("webhook_url", "must not be a private or special-purpose address")


@dataclass(frozen=True)
class WebhookSender:
    tasks: TaskRepository
    # The task object a webhook carries is the API's (with a presigned download_url).
    queries: TaskQueries
    webhook_secrets: WebhookSecrets
    webhook_queue: WebhookQueue
    metrics: Metrics
    delivery: WebhookDelivery
    allow_loopback: bool

    def deliver(self, delivery: Delivery) -> WebhookOutcome:
        if delivery.not_before > time.time():
            self.webhook_queue.send(delivery)
            return WebhookOutcome.DEFERRED
        try:
            task = self.tasks.get(delivery.task_id)
        except TaskNotFound:
            return WebhookOutcome.NO_WEBHOOK
        if not task.webhook_url:
            return WebhookOutcome.NO_WEBHOOK
        logger.append_keys(task_id=task.id)
        body = json.dumps(
            {
                "type": delivery.event_type,
                "timestamp": utc_now(),
                "data": self.queries.public_task(task),
            }
        ).encode()
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": _USER_AGENT,
            "webhook-id": delivery.message_id,
            "webhook-timestamp": str(timestamp),
            # The task owner's own secret (and, after a rotation, the one it replaced): no other
            # principal's receiver accepts it. The task, not the message, names the owner, so a
            # message queued before the owner rotated is signed as the owner's receiver expects now.
            "webhook-signature": signatures(
                self.webhook_secrets.signing(task.owner), delivery.message_id, timestamp, body
            ),
        }
        outcome = self._attempt(delivery, task.webhook_url, headers, body)
        self.metrics.webhook_outcome(outcome.value)
        return outcome

    def _attempt(
        self, delivery: Delivery, url: str, headers: dict[str, str], body: bytes
    ) -> WebhookOutcome:
        extra: dict[str, Any] = {"attempt": delivery.attempt, "event_type": delivery.event_type}
        try:
            status = post(url, headers, body, self.allow_loopback, self.delivery.timeout_seconds)
        except RefusedUrl as exc:
            logger.warning("webhook URL refused", extra={**extra, "reason": str(exc)})
            return WebhookOutcome.REFUSED
        except (UnresolvableHost, urllib3.exceptions.HTTPError, OSError) as exc:
            status, extra["error"] = None, f"{type(exc).__name__}: {exc}"
        if status is not None and 200 <= status < 300:
            logger.info("webhook delivered", extra={**extra, "status": status})
            return WebhookOutcome.DELIVERED
        if status == 410:
            logger.info("webhook receiver is gone (410)", extra=extra)
            return WebhookOutcome.GONE
        delays = self.delivery.retry_delays
        if delivery.attempt > len(delays):
            raise WebhookGaveUp(
                f"{delivery.event_type} for {delivery.task_id} failed {delivery.attempt} times "
                f"(last: {status or extra.get('error')})"
            )
        delay = delays[delivery.attempt - 1]
        logger.warning(
            "webhook attempt failed; retrying", extra={**extra, "status": status, "in": delay}
        )
        self.webhook_queue.send(
            replace(delivery, attempt=delivery.attempt + 1, not_before=time.time() + delay)
        )
        return WebhookOutcome.RETRY_SCHEDULED


def post(
    url: str, headers: dict[str, str], body: bytes, allow_loopback: bool, timeout_seconds: float
) -> int:
    """POSTs to a vetted address of `url` and returns the answer's status, all within
    `timeout_seconds`: connecting, sending and the status line. Only the status line is read
    (never the headers or the body: no redirect is followed), then the connection is closed.

    One deadline for the whole exchange, because socket timeouts bound each read, not their sum:
    a receiver sending its answer a byte at a time would hold the sender as long as it liked.
    Raises RefusedUrl when the URL or any address it resolves to must not be called, and
    TimeoutError when the deadline passes.
    """
    deadline = time.monotonic() + timeout_seconds
    target = parse_url(url)
    loopback = _allowed_loopback(target, allow_loopback)
    addresses = resolve(target.host, target.port)
    for address in addresses:
        problem = check_address(address)
        if problem is not None and not (loopback and ipaddress.ip_address(address).is_loopback):
            raise RefusedUrl(f"{target.host} resolves to a forbidden address: {problem}")
    # The TCP connect and the TLS handshake each take at most the connect timeout (Python bounds
    # a handshake as a whole, however slowly its bytes come): half the deadline each, at most.
    connect_timeout = min(_CONNECT_TIMEOUT_SECONDS, timeout_seconds / 2)
    connection = pinned_connection(addresses[0], target, connect_timeout)
    try:
        connection.connect()
        connection.timeout = _time_left(deadline)  # the socket's, while the request is sent
        connection.request(
            "POST",
            target.path,
            body=body,
            headers={**headers, "Host": target.host_header, "Connection": "close"},
        )
        return _status(connection, deadline)
    finally:
        connection.close()


def _status(connection: HTTPConnection, deadline: float) -> int:
    """The status in the answer's status line, read by the deadline."""
    sock = connection.sock
    assert sock is not None, "connected"
    received = b""
    while b"\n" not in received:
        if len(received) > _MAX_STATUS_LINE_BYTES:
            raise ProtocolError(f"status line longer than {_MAX_STATUS_LINE_BYTES} bytes")
        sock.settimeout(_time_left(deadline))
        chunk = sock.recv(_MAX_STATUS_LINE_BYTES)
        if not chunk:
            raise ProtocolError("the receiver closed the connection before its status line")
        received += chunk
    line = received.split(b"\n", 1)[0]
    match = _STATUS_LINE.fullmatch(line)
    if match is None:
        raise ProtocolError(f"not an HTTP status line: {line[:80]!r}")
    return int(match[1])


def _time_left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the receiver's status line did not come before the deadline")
    return left


def _allowed_loopback(target: ParsedUrl, allow_loopback: bool) -> bool:
    """Whether `target` is a receiver on this machine that may be called (only when allowed, as
    under `make run`); anything else must be https, or RefusedUrl is raised."""
    loopback = allow_loopback and _is_loopback_host(target)
    if target.scheme != "https" and not loopback:
        raise RefusedUrl("must be an https URL")
    return loopback


def _is_loopback_host(target: ParsedUrl) -> bool:
    if target.host == "localhost":
        return True
    try:
        return ipaddress.ip_address(target.host).is_loopback
    except ValueError:
        return False
