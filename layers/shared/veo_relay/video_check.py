"""The stored-video check: a manifest landed; the video beside it must match it before
`Video Completed` is announced (so the announcement vouches for the bytes in S3). At least once:
consumers deduplicate on `detail.id` and `detail.status`."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from aws_lambda_powertools import Logger

from veo_relay.manifests import MAX_MANIFEST_BYTES, ManifestError, parse_manifest, task_object
from veo_relay.ports import EventPublisher, Metrics, VideoStorage
from veo_relay.video_events import VIDEO_COMPLETED

logger = Logger(child=True)


class Verification(StrEnum):
    ANNOUNCED = "announced"
    MISMATCH = "mismatch"
    NOT_A_MANIFEST = "not_a_manifest"


@dataclass(frozen=True)
class StoredVideoCheck:
    videos: VideoStorage
    events: EventPublisher
    metrics: Metrics

    def verify_and_announce(self, manifest_key: str) -> Verification:
        """Checks the video beside a manifest against it (size, then SHA-256 over the bytes)
        and, when they agree, announces `Video Completed`. A mismatch is reported (log, metric,
        alarm), never announced; S3 reads and the announcement raise on trouble so that the
        queue retries."""
        try:
            manifest = parse_manifest(self.videos.read_document(manifest_key, MAX_MANIFEST_BYTES))
        except (ManifestError, ValueError) as exc:
            logger.warning("not a manifest", extra={"key": manifest_key, "reason": str(exc)})
            return Verification.NOT_A_MANIFEST
        expected = manifest["video"]
        logger.append_keys(task_id=manifest["task_id"])
        problem = self._problem(expected)
        self.metrics.video_verified(problem is None)
        if problem is not None:
            logger.error("stored video does not match its manifest", extra={"problem": problem})
            return Verification.MISMATCH
        self.events.publish(VIDEO_COMPLETED, task_object(manifest))
        logger.info("video announced", extra={"key": expected["key"]})
        return Verification.ANNOUNCED

    def _problem(self, expected: dict[str, Any]) -> str | None:
        if expected["bucket"] != self.videos.bucket:
            return f"the manifest names bucket {expected['bucket']}"
        size, sha256 = self.videos.measure(expected["key"])
        if size != expected["size_bytes"]:
            return f"the object has {size} bytes, the manifest says {expected['size_bytes']}"
        if sha256 != expected["sha256"]:
            return f"the object's SHA-256 is {sha256}, the manifest says {expected['sha256']}"
        return None
