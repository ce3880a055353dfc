"""The stored-video check and the failure announcer with in-memory ports: `Video Completed` only
for bytes that match their manifest, `Video Failed` once per task entering `failed`."""

from __future__ import annotations

import hashlib

from tests.fakes import FakeEvents, FakeMetrics, FakeVideos, make_task
from veo_relay.failure_announcement import FailureAnnouncer
from veo_relay.manifests import build_manifest, encode_manifest, manifest_key
from veo_relay.tasks import StoredVideo, TaskStatus
from veo_relay.video_check import StoredVideoCheck, Verification

VIDEO = b"\x00\x00\x00\x18ftypmp42" + b"\x01" * 100


def stored(body: bytes = VIDEO) -> tuple[StoredVideoCheck, FakeEvents, FakeMetrics, str]:
    """A completed task's manifest (describing VIDEO) beside an object holding `body`."""
    task = make_task(TaskStatus.COMPLETED, id="vid_" + "9" * 24)
    task.video = StoredVideo(
        "videos", task.video_key, len(VIDEO), hashlib.sha256(VIDEO).hexdigest(), "video/mp4"
    )
    task.completed_at = task.updated_at
    videos = FakeVideos()
    videos.objects[task.video_key] = (body, {})
    key = manifest_key(task)
    videos.objects[key] = (encode_manifest(build_manifest(task)), {})
    events, metrics = FakeEvents(), FakeMetrics()
    return StoredVideoCheck(videos, events, metrics), events, metrics, key


def test_a_video_matching_its_manifest_is_announced_with_its_task_object():
    check, events, metrics, key = stored()

    assert check.verify_and_announce(key) is Verification.ANNOUNCED
    ((detail_type, detail),) = events.published
    assert detail_type == "Video Completed" and detail["id"] == "vid_" + "9" * 24
    assert metrics.recorded == [("video_verified", (True,))]


def test_a_video_that_differs_from_its_manifest_is_never_announced():
    check, events, metrics, key = stored(body=VIDEO[:-1] + b"\x02")

    assert check.verify_and_announce(key) is Verification.MISMATCH
    assert events.published == []
    assert metrics.recorded == [("video_verified", (False,))]


def test_an_object_that_is_not_a_manifest_is_left_alone():
    check, events, _, _ = stored()
    check.videos.objects["videos/x/notes.json"] = (b"[]", {})  # type: ignore[attr-defined]

    assert check.verify_and_announce("videos/x/notes.json") is Verification.NOT_A_MANIFEST
    assert events.published == []


def _image(status: str) -> dict[str, dict[str, str]]:
    return {
        "id": {"S": "vid_" + "8" * 24},
        "owner": {"S": "arn:aws:iam::123456789012:user/alice"},
        "status": {"S": status},
        "provider": {"S": "kie"},
        "prompt": {"S": "p"},
        "mode": {"S": "fast"},
        "generation_type": {"S": "TEXT_2_VIDEO"},
        "aspect_ratio": {"S": "16:9"},
        "root_id": {"S": "vid_" + "8" * 24},
        "created_at": {"S": "2026-12-01T00:00:00.000Z"},
        "updated_at": {"S": "2026-12-01T00:00:01.000Z"},
        "error": {"M": {"code": {"S": "timeout"}, "message": {"S": "no result"}}},
    }


def test_a_task_entering_failed_is_announced_once():
    events, metrics = FakeEvents(), FakeMetrics()
    announcer = FailureAnnouncer(events, metrics)

    assert announcer.announce(_image("failed"), _image("in_progress")) is True
    # A later change of a failed task (its expiry, say) is not a second failure
    assert announcer.announce(_image("failed"), _image("failed")) is False
    assert announcer.announce(_image("completed"), _image("storing")) is False

    ((detail_type, detail),) = events.published
    assert detail_type == "Video Failed"
    assert detail["error"] == {"code": "timeout", "message": "no result"}
    assert metrics.recorded == [("task_failed", ("kie",))]
