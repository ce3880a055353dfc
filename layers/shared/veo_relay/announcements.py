"""Telling the world a task has ended: `Video Completed` / `Video Failed` on our event bus.

A completion is announced by the stored-video consumer once the object matches its manifest
(so the announcement vouches for the bytes in S3); a failure by the task table's stream, which
sees every failed transition, the state machine's own writes included. Both are at least once:
consumers deduplicate on `detail.id` and `detail.status`.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from aws_lambda_powertools import Logger

from veo_relay.manifests import MAX_MANIFEST_BYTES, ManifestError, parse_manifest, task_object
from veo_relay.runtime import Runtime
from veo_relay.tasks import TaskObject, TaskStatus

logger = Logger(child=True)

VIDEO_COMPLETED = "Video Completed"
VIDEO_FAILED = "Video Failed"


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


class Verification(StrEnum):
    ANNOUNCED = "announced"
    MISMATCH = "mismatch"
    NOT_A_MANIFEST = "not_a_manifest"


def verify_and_announce(runtime: Runtime, manifest_key: str) -> Verification:
    """Checks the video beside a manifest against it (size, then SHA-256 over the bytes) and, when
    they agree, announces `Video Completed`. A mismatch is reported (log, metric, alarm), never
    announced; S3 reads and the announcement raise on trouble so that the queue retries."""
    videos = runtime.videos
    try:
        manifest = parse_manifest(videos.read_document(manifest_key, MAX_MANIFEST_BYTES))
    except (ManifestError, ValueError) as exc:
        logger.warning("not a manifest", extra={"key": manifest_key, "reason": str(exc)})
        return Verification.NOT_A_MANIFEST
    expected = manifest["video"]
    logger.append_keys(task_id=manifest["task_id"])
    problem = None
    if expected["bucket"] != videos.bucket:
        problem = f"the manifest names bucket {expected['bucket']}"
    else:
        size, sha256 = videos.measure(expected["key"])
        if size != expected["size_bytes"]:
            problem = f"the object has {size} bytes, the manifest says {expected['size_bytes']}"
        elif sha256 != expected["sha256"]:
            problem = f"the object's SHA-256 is {sha256}, the manifest says {expected['sha256']}"
    runtime.telemetry.video_verified(problem is None)
    if problem is not None:
        logger.error("stored video does not match its manifest", extra={"problem": problem})
        return Verification.MISMATCH
    runtime.video_events.publish(VIDEO_COMPLETED, task_object(manifest))
    logger.info("video announced", extra={"key": expected["key"]})
    return Verification.ANNOUNCED


def announce_failure(
    runtime: Runtime, new_image: dict[str, Any], old_image: dict[str, Any]
) -> bool:
    """`Video Failed` when a stream record shows a task entering `failed`; False for any other
    change (the stream's filter already drops them in AWS)."""
    # Imported here, not at the top: the stored-video consumer imports this module too and never
    # reads the task table, so its cold start does not load PynamoDB.
    from veo_relay.task_store import task_from_image

    task = task_from_image(new_image)
    before = old_image.get("status", {}).get("S")
    if task is None or task.status is not TaskStatus.FAILED or before == TaskStatus.FAILED:
        return False
    runtime.telemetry.task_failed(task.provider)
    runtime.video_events.publish(VIDEO_FAILED, task.to_public())
    logger.info("failure announced", extra={"task_id": task.id})
    return True
