"""When a failed webhook delivery is tried again: the schedule (WEBHOOK_RETRY_SECONDS) is the
wait before each attempt after the first; once it has run out the delivery gives up, and the
queue's redrive moves its message to the dead-letter queue."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace

from veo_relay.webhook_messages import Delivery


class WebhookGaveUp(Exception):
    """Every attempt of the schedule failed; the message goes to the dead-letter queue."""


def next_attempt(
    failed: Delivery, delays: Sequence[float], last_failure: object
) -> tuple[Delivery, float]:
    """The attempt after `failed`, and in how many seconds it is due, by the schedule `delays`
    (the waits before attempts 2, 3, ...). Raises WebhookGaveUp when the schedule has run out."""
    if failed.attempt > len(delays):
        raise WebhookGaveUp(
            f"{failed.event_type} for {failed.task_id} failed {failed.attempt} times "
            f"(last: {last_failure})"
        )
    delay = delays[failed.attempt - 1]
    return replace(failed, attempt=failed.attempt + 1, not_before=time.time() + delay), delay
