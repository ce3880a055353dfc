"""`Video Failed`: the tasks table's stream sees every failed transition, the state machine's
own writes included. At least once: consumers deduplicate on `detail.id` and `detail.status`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger

from veo_relay.ports import EventPublisher, Metrics
from veo_relay.task_store import task_from_image
from veo_relay.tasks import TaskStatus
from veo_relay.video_events import VIDEO_FAILED

logger = Logger(child=True)


@dataclass(frozen=True)
class FailureAnnouncer:
    events: EventPublisher
    metrics: Metrics

    def announce(self, new_image: dict[str, Any], old_image: dict[str, Any]) -> bool:
        """`Video Failed` when a stream record shows a task entering `failed`; False for any
        other change (the stream's filter already drops them in AWS)."""
        task = task_from_image(new_image)
        before = old_image.get("status", {}).get("S")
        if task is None or task.status is not TaskStatus.FAILED or before == TaskStatus.FAILED:
            return False
        self.metrics.task_failed(task.provider)
        self.events.publish(VIDEO_FAILED, task.to_public())
        logger.info("failure announced", extra={"task_id": task.id})
        return True
