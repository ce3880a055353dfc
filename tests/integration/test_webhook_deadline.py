"""Fault injection for client webhooks: a receiver that answers a byte at a time.

Socket timeouts bound each read, not their sum, so a receiver that keeps sending (slowly) never
trips one. A delivery must end by its own deadline (WEBHOOK_TIMEOUT_SECONDS) whatever the
receiver does, and read no more of the answer than its status line.
"""

from __future__ import annotations

import json
import socketserver
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers import load_event

TIMEOUT_SECONDS = 2
DRIBBLE_INTERVAL = 0.25  # seconds between two bytes: far below any socket timeout
pytestmark = pytest.mark.stack_env(
    WEBHOOK_ALLOW_LOOPBACK="true",
    WEBHOOK_RETRY_SECONDS="0,0",
    WEBHOOK_TIMEOUT_SECONDS=str(TIMEOUT_SECONDS),
    POLL_FIRST_WAIT_SECONDS="600",  # only the test drives anything
)


class DribblingReceiver:
    """A webhook receiver that reads the request, sends `prompt` bytes of its answer at once and
    the rest one byte every DRIBBLE_INTERVAL, for as long as the sender stays."""

    def __init__(self, answer: bytes, prompt: int = 0) -> None:
        self.answer, self.prompt = answer, prompt
        self.requests = 0
        receiver = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                self.request.settimeout(5)
                received = b""
                while b"\r\n\r\n" not in received:
                    received += self.request.recv(65536)
                receiver.requests += 1
                try:
                    self.request.sendall(receiver.answer[: receiver.prompt])
                    for index in range(receiver.prompt, len(receiver.answer)):
                        time.sleep(DRIBBLE_INTERVAL)
                        self.request.sendall(receiver.answer[index : index + 1])
                except OSError:
                    pass  # the sender hung up

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks/veo"

    @property
    def dribble_seconds(self) -> float:
        return (len(self.answer) - self.prompt) * DRIBBLE_INTERVAL

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receivers() -> Iterator[list[DribblingReceiver]]:
    started: list[DribblingReceiver] = []
    yield started
    for receiver in started:
        receiver.stop()


def deliver_to(stack: Any, receiver: DribblingReceiver) -> tuple[Any, float]:
    """A task with that webhook, and the webhook sender run on its Video Completed: the
    sender's answer and how long it took."""
    task = stack.create_task("a fox", webhook_url=receiver.url)
    event = load_event("webhook_video_completed")
    body = json.loads(event["Records"][0]["body"])
    body["detail"]["id"] = task["id"]
    event["Records"][0]["body"] = json.dumps(body)
    started = time.monotonic()
    result = stack.invoke("WebhookSenderFunction", event)
    return result, time.monotonic() - started


def queued_retries(stack: Any) -> list[dict[str, Any]]:
    sqs = stack.client("sqs")
    messages = sqs.receive_message(
        QueueUrl=stack.template.names["WebhookQueue"], MaxNumberOfMessages=10
    ).get("Messages", [])
    return [json.loads(m["Body"])["retry"] for m in messages]


ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


def test_a_receiver_dribbling_its_status_line_is_cut_off_at_the_deadline_and_retried(
    stack, receivers
):
    # Given a receiver that would take ~18 s to send its 200, a byte every 0.25 s
    receiver = DribblingReceiver(ANSWER)
    receivers.append(receiver)
    assert receiver.dribble_seconds > 4 * TIMEOUT_SECONDS

    # When the webhook sender delivers to it
    result, elapsed = deliver_to(stack, receiver)

    # Then the attempt ended at the deadline, not when the receiver was done
    assert elapsed < TIMEOUT_SECONDS + 2, elapsed
    # And it failed as a retryable attempt: attempt 2 is queued, the record is not failed
    assert result == {"batchItemFailures": []}
    assert [r["attempt"] for r in queued_retries(stack)] == [2]
    assert receiver.requests == 1


def test_a_receiver_dribbling_its_headers_and_body_is_answered_by_its_status_line(stack, receivers):
    # Given a receiver whose status line comes at once, then its headers and body a byte at a time
    status_line = len(b"HTTP/1.1 200 OK\r\n")
    receiver = DribblingReceiver(ANSWER + b" " * 16, prompt=status_line)
    receivers.append(receiver)
    assert receiver.dribble_seconds > 4 * TIMEOUT_SECONDS

    # When the webhook sender delivers to it
    result, elapsed = deliver_to(stack, receiver)

    # Then the 200 is the answer: delivered, without waiting for the rest
    assert elapsed < TIMEOUT_SECONDS + 2, elapsed
    assert result == {"batchItemFailures": []}
    assert queued_retries(stack) == []
    assert receiver.requests == 1


def test_a_receiver_that_never_answers_is_cut_off_at_the_deadline(stack, receivers):
    # Given a receiver that accepts the request and then says nothing (a byte every 0.25 s,
    # none of which ends a line)
    receiver = DribblingReceiver(b"HTTP/1.1 200" + b" " * 200)
    receivers.append(receiver)

    # When the webhook sender delivers to it
    result, elapsed = deliver_to(stack, receiver)

    # Then the attempt ends at the deadline and is retried
    assert TIMEOUT_SECONDS - 0.5 < elapsed < TIMEOUT_SECONDS + 2, elapsed
    assert result == {"batchItemFailures": []}
    assert [r["attempt"] for r in queued_retries(stack)] == [2]


def test_the_sender_does_not_wait_for_the_body(stack, receivers):
    # Given a receiver whose status line and headers come at once, then its 40-byte body a byte
    # at a time (10 s)
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n"
    receiver = DribblingReceiver(head + b"x" * 40, prompt=len(head))
    receivers.append(receiver)

    # When the webhook sender delivers to it
    result, elapsed = deliver_to(stack, receiver)

    # Then it is delivered at once: the body was never waited for
    assert elapsed < 1.5, elapsed
    assert result == {"batchItemFailures": []}
    assert queued_retries(stack) == []
