"""The manifest beside each stored video: what an S3 consumer needs, without our API or table.

Written only once the task is `completed` (the video is whole, tagged with its SHA-256, and
recorded), so a manifest's ObjectCreated event means the video next to it can be used.
"""

from __future__ import annotations

import json
from typing import Any

from veo_relay.providers.capabilities import DEFAULT_RESOLUTION
from veo_relay.tasks import Task, TaskObject, TaskObjectCost, TaskStatus, manifest_key_for

MANIFEST_VERSION = 1
MANIFEST_CONTENT_TYPE = "application/json"
MAX_MANIFEST_BYTES = 64 * 1024  # a prompt is at most 10,000 characters
_COST_SOURCES = ("price_table", "provider")


class ManifestError(ValueError):
    """Not a veo-relay manifest (or not one this version understands)."""


def manifest_key(task: Task) -> str:
    return manifest_key_for(task.video_key)


def build_manifest(task: Task) -> dict[str, Any]:
    if task.status is not TaskStatus.COMPLETED or task.video is None:
        raise ValueError(f"task {task.id} is {task.status.value}; only a stored video has one")
    video = task.video
    return {
        "manifest_version": MANIFEST_VERSION,
        "task_id": task.id,
        "parent_id": task.parent_id,
        "root_id": task.root_id,
        "provider": task.provider,
        "provider_task_id": task.provider_task_id,
        "prompt": task.prompt,
        "mode": task.mode,
        "generation_type": task.generation_type,
        "aspect_ratio": task.aspect_ratio,
        "resolution": task.resolution,
        "seed": task.seed,
        "image_urls": list(task.image_urls),
        # What the video cost: the provider's figure or the price table's (null: not known).
        "cost": task.cost,
        "video": {
            "bucket": video.bucket,
            "key": video.key,
            "size_bytes": video.size_bytes,
            "sha256": video.sha256,
            "content_type": video.content_type,
        },
        "created_at": task.created_at,
        "completed_at": task.completed_at,
    }


def encode_manifest(manifest: dict[str, Any]) -> bytes:
    return json.dumps(manifest, ensure_ascii=False, indent=2).encode()


def parse_manifest(raw: bytes) -> dict[str, Any]:
    """The manifest in `raw`, its fields checked; ManifestError names the first one at fault."""
    try:
        manifest = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise ManifestError("not JSON") from None
    if not isinstance(manifest, dict):
        raise ManifestError("not a JSON object")
    if manifest.get("manifest_version") != MANIFEST_VERSION:
        raise ManifestError(f"manifest_version is not {MANIFEST_VERSION}")
    # The strings task_object cannot do without (the task object's other fields may be null).
    for name in (
        "task_id",
        "root_id",
        "provider",
        "prompt",
        "mode",
        "generation_type",
        "aspect_ratio",
        "created_at",
        "completed_at",
    ):
        if not isinstance(manifest.get(name), str) or not manifest[name]:
            raise ManifestError(f"{name} is missing")
    video = manifest.get("video")
    if not isinstance(video, dict):
        raise ManifestError("video is missing")
    for name in ("bucket", "key", "sha256", "content_type"):
        if not isinstance(video.get(name), str) or not video[name]:
            raise ManifestError(f"video.{name} is missing")
    size = video.get("size_bytes")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ManifestError("video.size_bytes is not a size")
    return manifest


def _cost(value: Any) -> TaskObjectCost | None:
    """The manifest's cost; None for one written before costs existed, or not of its form."""
    if not isinstance(value, dict):
        return None
    usd, source = value.get("usd"), value.get("source")
    if isinstance(usd, bool) or not isinstance(usd, int | float) or source not in _COST_SOURCES:
        return None
    return {"usd": float(usd), "source": source}


def task_object(manifest: dict[str, Any]) -> TaskObject:
    """The contract's task object for a stored video, from its manifest alone (no download URL:
    whoever holds the bucket's permissions reads `video.bucket`/`video.key`)."""
    video = manifest["video"]
    return {
        "id": manifest["task_id"],
        "status": TaskStatus.COMPLETED,
        "provider": manifest["provider"],
        "provider_task_id": manifest.get("provider_task_id"),
        "mode": manifest["mode"],
        "generation_type": manifest["generation_type"],
        "aspect_ratio": manifest["aspect_ratio"],
        "prompt": manifest["prompt"],
        "image_urls": manifest.get("image_urls") or [],
        "seed": manifest.get("seed"),
        "parent_id": manifest.get("parent_id"),
        "root_id": manifest["root_id"],
        # Manifests written before resolutions existed are of 720p videos.
        "resolution": manifest.get("resolution", DEFAULT_RESOLUTION),
        "progress": None,
        "cost": _cost(manifest.get("cost")),
        "created_at": manifest["created_at"],
        "updated_at": manifest["completed_at"],
        "completed_at": manifest["completed_at"],
        "video": {
            "bucket": video["bucket"],
            "key": video["key"],
            "size_bytes": video["size_bytes"],
            "sha256": video["sha256"],
            "content_type": video["content_type"],
            "download_url": None,
        },
        "error": None,
    }
