"""Builders for the client's tests: task objects as the API answers them."""

from __future__ import annotations

import hashlib
from typing import Any

API = "http://127.0.0.1:3000"
TASK_ID = "vid_0123456789abcdef01234567"
VIDEO_BYTES = b"\x00\x00\x00\x18ftypmp42" + b"x" * 3000
DOWNLOAD_URL = "http://127.0.0.1:5000/videos/vid.mp4?X-Amz-Signature=abc"


def task_body(status: str = "in_progress", **overrides: Any) -> dict[str, Any]:
    """A task object as docs/openapi.json describes it; `completed` has a stored video."""
    body: dict[str, Any] = {
        "id": TASK_ID,
        "status": status,
        "provider": "kie",
        "provider_task_id": "kie-123",
        "mode": "fast",
        "generation_type": "TEXT_2_VIDEO",
        "aspect_ratio": "16:9",
        "prompt": "a red fox in snow",
        "image_urls": [],
        "seed": None,
        "parent_id": None,
        "root_id": TASK_ID,
        "resolution": "1080p",
        "progress": None,
        "cost": {"usd": 0.33, "source": "price_table"},
        "created_at": "2026-12-02T10:00:00Z",
        "updated_at": "2026-12-02T10:00:05Z",
        "completed_at": None,
        "video": None,
        "error": None,
    }
    if status == "completed":
        body["completed_at"] = "2026-12-02T10:00:09Z"
        body["video"] = {
            "bucket": "videos",
            "key": f"videos/{TASK_ID}.mp4",
            "size_bytes": len(VIDEO_BYTES),
            "sha256": hashlib.sha256(VIDEO_BYTES).hexdigest(),
            "content_type": "video/mp4",
            "download_url": DOWNLOAD_URL,
        }
    if status == "failed":
        body["error"] = {"code": "content_violation", "message": "the provider refused it"}
    body.update(overrides)
    return body


def error_body(code: str, message: str = "it went wrong") -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}
