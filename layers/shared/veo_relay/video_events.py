"""Our event bus: `Video Completed` / `Video Failed` / `Video Deleted`, each with the task object
as its detail."""

from __future__ import annotations

import json
from typing import Any

from veo_relay.tasks import TaskObject

VIDEO_COMPLETED = "Video Completed"
VIDEO_FAILED = "Video Failed"
VIDEO_DELETED = "Video Deleted"


class EventPublishError(Exception):
    """EventBridge did not take the event (retried by the caller's queue or stream)."""


class VideoEvents:
    def __init__(self, events_client: Any, bus_name: str, source: str) -> None:
        self._events = events_client
        self._bus = bus_name
        self._source = source

    def publish(self, detail_type: str, task: TaskObject) -> None:
        response = self._events.put_events(
            Entries=[
                {
                    "EventBusName": self._bus,
                    "Source": self._source,
                    "DetailType": detail_type,
                    "Detail": json.dumps(task),
                }
            ]
        )
        if response.get("FailedEntryCount"):
            entry = response["Entries"][0]
            raise EventPublishError(
                f"{detail_type} for {task['id']} refused: {entry.get('ErrorCode')} "
                f"{entry.get('ErrorMessage')}"
            )
