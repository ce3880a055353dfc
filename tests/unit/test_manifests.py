"""Unit tests for veo_relay.manifests: the manifest beside each stored video, from a completed task,
read back with its fields checked, and the task object it announces."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from veo_relay.manifests import (
    MANIFEST_CONTENT_TYPE,
    MANIFEST_VERSION,
    MAX_MANIFEST_BYTES,
    ManifestError,
    build_manifest,
    encode_manifest,
    manifest_key,
    parse_manifest,
    task_object,
)
from veo_relay.tasks import StoredVideo, Task, TaskError, TaskStatus

SHA256 = "3f0a1c6a2b5c44c1f2d6a3c0b9a1e0f5d4c3b2a1908f7e6d5c4b3a2918f7e6d5"

# The contract's task object (Task.to_public), which events and manifests carry.
TASK_OBJECT_KEYS = {
    "id",
    "status",
    "provider",
    "provider_task_id",
    "mode",
    "generation_type",
    "aspect_ratio",
    "prompt",
    "image_urls",
    "seed",
    "parent_id",
    "root_id",
    "resolution",
    "progress",
    "cost",
    "created_at",
    "updated_at",
    "completed_at",
    "video",
    "error",
}
VIDEO_KEYS = {"bucket", "key", "size_bytes", "sha256", "content_type", "download_url"}


def completed_task(**changes: Any) -> Task:
    """An extension (so that parent and root differ), completed with its stored video."""
    task = Task(
        id="vid_222222222222222222222222",
        owner="arn:aws:iam::123456789012:user/alice",
        status=TaskStatus.COMPLETED,
        provider="kie",
        prompt="the fox jumps over the fence — «ünïcödé» 🦊",
        mode="quality",
        generation_type="REFERENCE_2_VIDEO",
        aspect_ratio="9:16",
        root_id="vid_000000000000000000000000",
        created_at="2026-11-21T10:00:00.000Z",
        updated_at="2026-11-21T10:02:05.120Z",
        resolution="1080p",
        image_urls=["https://img.example.com/a.png", "https://img.example.com/b.png"],
        seed=4294967295,
        watermark="acme",
        parent_id="vid_111111111111111111111111",
        provider_task_id="task_kie_9f8e7d",
        provider_model="veo3_quality",
        cost_usd=1.275,  # kie's quality at 1080p: 250 + 5 credits at $0.005
        cost_source="price_table",
        reserved_micros=1_275_000,
        creation_id="not-for-manifests",
        callback_received_at="2026-11-21T10:02:00.000Z",
        completed_at="2026-11-21T10:02:05.120Z",
        video=StoredVideo(
            bucket="veo-relay-videos",
            key="videos/vid_000000000000000000000000/vid_222222222222222222222222.mp4",
            size_bytes=9437184,
            sha256=SHA256,
            content_type="video/mp4",
        ),
        webhook_url="https://hooks.example.com/secret-path",
    )
    for name, value in changes.items():
        setattr(task, name, value)
    return task


def test_the_manifest_holds_every_field_consumers_need():
    # Given a completed extension
    task = completed_task()

    # When its manifest is built
    manifest = build_manifest(task)

    # Then it names the task, its family, its provider's task, how it was made, and the video
    assert manifest == {
        "manifest_version": MANIFEST_VERSION,
        "task_id": "vid_222222222222222222222222",
        "parent_id": "vid_111111111111111111111111",
        "root_id": "vid_000000000000000000000000",
        "provider": "kie",
        "provider_task_id": "task_kie_9f8e7d",
        "prompt": "the fox jumps over the fence — «ünïcödé» 🦊",
        "mode": "quality",
        "generation_type": "REFERENCE_2_VIDEO",
        "aspect_ratio": "9:16",
        "resolution": "1080p",
        "seed": 4294967295,
        "image_urls": ["https://img.example.com/a.png", "https://img.example.com/b.png"],
        "cost": {"usd": 1.275, "source": "price_table"},
        "video": {
            "bucket": "veo-relay-videos",
            "key": "videos/vid_000000000000000000000000/vid_222222222222222222222222.mp4",
            "size_bytes": 9437184,
            "sha256": SHA256,
            "content_type": "video/mp4",
        },
        "created_at": "2026-11-21T10:00:00.000Z",
        "completed_at": "2026-11-21T10:02:05.120Z",
    }


def test_the_manifest_leaves_out_what_is_private():
    # Given a task with an owner, a webhook URL and a callback token hash
    encoded = encode_manifest(build_manifest(completed_task()))

    # When its manifest is encoded, Then none of them is in it
    for private in ("arn:aws:iam", "hooks.example.com", "not-for-manifests"):
        assert private.encode() not in encoded


def test_a_generated_video_has_a_null_parent_and_seed():
    # Given a generated (not extended) video without a seed
    task = completed_task(parent_id=None, seed=None, image_urls=[], root_id="vid_2" + "2" * 23)

    # When its manifest is built, Then parent and seed are null, the images an empty list
    manifest = build_manifest(task)
    assert manifest["parent_id"] is None
    assert manifest["seed"] is None
    assert manifest["image_urls"] == []
    assert parse_manifest(encode_manifest(manifest)) == manifest


def test_build_parse_round_trip_is_exact():
    # Given a manifest, encoded as it is written to S3
    manifest = build_manifest(completed_task())
    raw = encode_manifest(manifest)

    # When it is parsed back
    parsed = parse_manifest(raw)

    # Then nothing changed, and the bytes are UTF-8 JSON (not ASCII escapes) within the limit
    assert parsed == manifest
    assert "🦊".encode() in raw
    assert json.loads(raw.decode("utf-8")) == manifest
    assert len(raw) < MAX_MANIFEST_BYTES
    assert MANIFEST_CONTENT_TYPE == "application/json"


def test_the_largest_prompt_still_fits_the_manifest_limit():
    # Given a 10,000-character prompt of four-byte characters and three long image URLs
    task = completed_task(
        prompt="🦊" * 10000, image_urls=["https://img.example.com/" + "a" * 2000] * 3
    )

    # When its manifest is encoded, Then it fits in what the consumer reads
    assert len(encode_manifest(build_manifest(task))) <= MAX_MANIFEST_BYTES


def test_the_manifest_lies_beside_its_video():
    # Given a task, When its manifest key is asked for, Then it is the video's with .json
    task = completed_task()
    assert manifest_key(task) == (
        "videos/vid_000000000000000000000000/vid_222222222222222222222222.json"
    )
    assert manifest_key(task).removesuffix(".json") == task.video_key.removesuffix(".mp4")


@pytest.mark.parametrize(
    "status", [TaskStatus.QUEUED, TaskStatus.IN_PROGRESS, TaskStatus.STORING, TaskStatus.FAILED]
)
def test_only_a_completed_task_has_a_manifest(status):
    # Given a task that is not completed (even one that somehow holds a video)
    task = completed_task(status=status, error=TaskError("provider_error", "x"))

    # When its manifest is built, Then it is refused
    with pytest.raises(ValueError, match=status.value):
        build_manifest(task)


def test_a_completed_task_without_its_video_has_no_manifest():
    with pytest.raises(ValueError, match="completed"):
        build_manifest(completed_task(video=None))


def _without(manifest: dict[str, Any], path: str) -> dict[str, Any]:
    changed = copy.deepcopy(manifest)
    *parents, name = path.split(".")
    target = changed
    for parent in parents:
        target = target[parent]
    del target[name]
    return changed


def _with(manifest: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(manifest)
    *parents, name = path.split(".")
    target = changed
    for parent in parents:
        target = target[parent]
    target[name] = value
    return changed


REQUIRED = [
    "task_id",
    "root_id",
    "provider",
    "prompt",
    "mode",
    "generation_type",
    "aspect_ratio",
    "created_at",
    "completed_at",
    "video",
    "video.bucket",
    "video.key",
    "video.sha256",
    "video.content_type",
    "video.size_bytes",
]


@pytest.mark.parametrize("path", REQUIRED)
def test_a_missing_field_is_named(path):
    # Given a manifest without one required field
    raw = encode_manifest(_without(build_manifest(completed_task()), path))

    # When it is parsed, Then the error names that field
    with pytest.raises(ManifestError, match=rf"^{path} "):
        parse_manifest(raw)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("task_id", ""),
        ("task_id", 12),
        ("root_id", None),
        ("provider", ["kie"]),
        ("created_at", 1795255200),
        ("completed_at", ""),
        ("video", "videos/x.mp4"),
        ("video", None),
        ("video.bucket", ""),
        ("video.key", None),
        ("video.sha256", 0),
        ("video.content_type", ""),
        ("video.size_bytes", -1),
        ("video.size_bytes", "9437184"),
        ("video.size_bytes", 9437184.0),
        ("video.size_bytes", True),
        ("video.size_bytes", None),
    ],
)
def test_a_field_of_the_wrong_type_is_named(path, value):
    # Given a manifest with one field of the wrong type or empty
    raw = encode_manifest(_with(build_manifest(completed_task()), path, value))

    # When it is parsed, Then the error names that field
    with pytest.raises(ManifestError, match=rf"^{path} "):
        parse_manifest(raw)


@pytest.mark.parametrize("version", [None, 0, 2, "1", 1.5])
def test_another_manifest_version_is_refused(version):
    raw = encode_manifest(_with(build_manifest(completed_task()), "manifest_version", version))

    with pytest.raises(ManifestError, match="manifest_version"):
        parse_manifest(raw)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "not JSON"),
        (b"{", "not JSON"),
        (b"\xff\xfe\x00", "not JSON"),
        (b"[]", "not a JSON object"),
        (b'"manifest"', "not a JSON object"),
        (b"null", "not a JSON object"),
    ],
)
def test_what_is_not_a_json_object_is_refused(raw, reason):
    with pytest.raises(ManifestError, match=reason):
        parse_manifest(raw)


def test_a_manifest_error_is_a_value_error():
    # Callers that catch ValueError (the consumer) also catch a bad manifest.
    assert issubclass(ManifestError, ValueError)


def test_the_task_object_from_a_manifest_has_the_contracts_keys_and_values():
    # Given a completed task and its manifest, read back from S3's bytes
    task = completed_task()
    manifest = parse_manifest(encode_manifest(build_manifest(task)))

    # When the task object is made from the manifest alone
    announced = task_object(manifest)

    # Then it has exactly the contract's keys, and equals the task's own object without a URL
    assert set(announced) == TASK_OBJECT_KEYS
    assert set(announced["video"]) == VIDEO_KEYS
    assert announced == task.to_public(download_url=None)
    assert announced["status"] == "completed"
    assert announced["error"] is None
    assert announced["video"]["download_url"] is None
    assert announced["updated_at"] == announced["completed_at"] == task.completed_at


def test_the_task_object_keys_match_the_public_objects():
    # Given the keys of a task object built from the task, and of one built from its manifest
    task = completed_task(parent_id=None, seed=None)
    from_task = task.to_public("https://s3.example/x")
    from_manifest = task_object(build_manifest(task))

    # Then they are the same keys, so one consumer reads both
    assert set(from_manifest) == set(from_task)
    assert set(from_manifest["video"]) == set(from_task["video"])


def test_the_task_objects_video_is_a_copy_of_the_manifests():
    # Given a task object built from a manifest
    manifest = build_manifest(completed_task())
    announced = task_object(manifest)

    # When its video is changed, Then the manifest's is not
    announced["video"]["key"] = "elsewhere"
    assert manifest["video"]["key"].endswith(".mp4")
    assert "download_url" not in manifest["video"]
