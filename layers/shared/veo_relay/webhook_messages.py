"""The webhook queue's messages: what a delivery is, read from an event of our bus (a first
attempt) or from a retry the sender queued, and how a retry is queued.

The queue receives each `Video Completed` / `Video Failed` event from our bus (an EventBridge
rule); a failed attempt is queued again, delayed until it is due (`webhook_retries`).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Any

EVENT_TYPES = {"Video Completed": "video.completed", "Video Failed": "video.failed"}


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
