"""The SQS hand-offs: the copy queue and the submit queue, and the messages they carry."""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from typing import Any

from veo_relay.settings import SQS_MAX_DELAY_SECONDS


@dataclass(frozen=True)
class SubmitTicket:
    """What a submit needs beyond the stored task. Nothing secret: the callback token is derived
    at the submit (veo_relay.callback_tokens)."""

    task_id: str
    callback_base_url: str

    def callback_url(self, provider: str, token: str) -> str:
        return f"{self.callback_base_url.rstrip('/')}/v1/callbacks/{provider}/{token}"


# The reason of a callback's copy deferred to the end of a quiet time (veo_relay.callbacks): its
# copy takes the lease as the callback would have.
DEFERRED_CALLBACK = "deferred callback"


class CopyQueue:
    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs = sqs
        self._queue_url = queue_url

    def request_copy(
        self, task_id: str, reason: str, lease: str | None = None, delay_seconds: int = 0
    ) -> None:
        """`lease`: when the requester took the copy's lease for it (the callback does).
        `delay_seconds`: delivered no sooner (at most SQS's 900)."""
        message = {"task_id": task_id, "reason": reason}
        if lease is not None:
            message["lease"] = lease
        self._sqs.send_message(
            QueueUrl=self._queue_url,
            MessageBody=json.dumps(message),
            DelaySeconds=min(SQS_MAX_DELAY_SECONDS, max(0, delay_seconds)),
        )


class SubmitQueue:
    """Tasks waiting for a submit slot: each message a ticket and its slot."""

    MAX_DELAY_SECONDS = SQS_MAX_DELAY_SECONDS  # a later slot is waited for in more than one hop
    # Delivered this much before the slot, so that polling latency never makes a submit late.
    EARLY_SECONDS = 2

    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs = sqs
        self._queue_url = queue_url

    def request_submit(self, ticket: SubmitTicket, slot_at: float) -> None:
        delay = min(
            self.MAX_DELAY_SECONDS, max(0, math.floor(slot_at - time.time()) - self.EARLY_SECONDS)
        )
        self._sqs.send_message(
            QueueUrl=self._queue_url,
            MessageBody=json.dumps({**asdict(ticket), "slot_at": slot_at}),
            DelaySeconds=delay,
        )


def parse_submit_request(body: str) -> tuple[SubmitTicket, float]:
    """Fields a ticket no longer has are ignored: a message queued before tokens were derived
    carries a `callback_token`, which is not used."""
    message = json.loads(body)
    ticket = SubmitTicket(message["task_id"], message["callback_base_url"])
    return ticket, float(message.get("slot_at", 0))


@dataclass(frozen=True)
class CopyRequest:
    task_id: str
    lease: str | None  # when the requester took the copy's lease for it (the callback does)
    deferred: bool  # a callback's, deferred to the end of a quiet time (DEFERRED_CALLBACK)


def parse_copy_request(body: str) -> CopyRequest:
    message = json.loads(body)
    task_id = message.get("task_id") if isinstance(message, dict) else None
    if not isinstance(task_id, str) or not task_id:
        raise ValueError("copy request has no task_id")
    lease = message.get("lease")
    return CopyRequest(
        task_id,
        lease if isinstance(lease, str) else None,
        deferred=message.get("reason") == DEFERRED_CALLBACK,
    )
