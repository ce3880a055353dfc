"""Reading tasks: one by id, or the caller's list. Another principal's task does not exist."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from typing_extensions import TypedDict  # as veo_relay.tasks explains

from veo_relay.errors import InvalidRequest, TaskNotFound
from veo_relay.json_input import parse_json
from veo_relay.ports import TaskRepository, VideoStorage
from veo_relay.tasks import Task, TaskObject, TaskStatus


class TaskList(TypedDict):
    """A page of the caller's tasks, newest first. `next_cursor` asks for the next page (as
    `cursor`); null on the last."""

    items: list[TaskObject]
    next_cursor: str | None


@dataclass(frozen=True)
class TaskQueries:
    tasks: TaskRepository
    videos: VideoStorage
    presign_expires_seconds: int

    def get_video(self, owner: str, task_id: str) -> TaskObject:
        task = self.tasks.get(task_id)
        if task.owner != owner or task.is_gone(datetime.now(UTC)):
            raise TaskNotFound(task_id)
        return self.public_task(task)

    def list_videos(
        self,
        owner: str,
        limit: int,
        cursor: str | None,
        status: str | None,
        root_id: str | None = None,
    ) -> TaskList:
        """The caller's tasks, newest first; with `root_id`, one family (a video and its
        extensions)."""
        if status is not None and status not in {s.value for s in TaskStatus}:
            raise InvalidRequest(
                "status", f"must be one of {', '.join(s.value for s in TaskStatus)}"
            )
        tasks, last_key = self.tasks.list_for_owner(
            owner, limit, _decode_cursor(cursor, owner, root_id), status, root_id
        )
        return {
            "items": [self.public_task(task) for task in tasks],
            "next_cursor": _encode_cursor(last_key),
        }

    def public_task(self, task: Task) -> TaskObject:
        """The task object, with a presigned download_url once completed."""
        download_url = None
        if task.status is TaskStatus.COMPLETED and task.video is not None:
            download_url = self.videos.presigned_url(task.video.key, self.presign_expires_seconds)
        return task.to_public(download_url)


def _encode_cursor(key: dict[str, Any] | None) -> str | None:
    if not key:
        return None
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


# DynamoDB refuses a key value of more bytes than this (a sort key's limit; ids and timestamps
# are far shorter), and answers a malformed ExclusiveStartKey with a ValidationException: a 500.
_MAX_KEY_VALUE_LENGTH = 1024


def _decode_cursor(cursor: str | None, owner: str, root_id: str | None) -> dict[str, Any] | None:
    """A cursor is the last key of the previous page, of this caller's listing and no other:
    exactly the index's key names, each exactly {"S": a non-empty string}."""
    if not cursor:
        return None
    refused = InvalidRequest("cursor", "is not a cursor this API returned for this listing")
    try:
        key = parse_json(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, binascii.Error):  # MalformedJson is a ValueError
        raise refused from None
    partition = {"root_id": root_id} if root_id else {"owner": owner}
    expected = {"id", "created_at", *partition}
    if not isinstance(key, dict) or set(key) != expected:
        raise refused
    values = {name: _string_value(value) for name, value in key.items()}
    if any(value is None for value in values.values()):
        raise refused
    if any(values[name] != value for name, value in partition.items()):
        raise refused
    return key


def _string_value(value: Any) -> str | None:
    """The string of a DynamoDB {"S": ...} value, or None when it is anything else."""
    if not isinstance(value, dict) or set(value) != {"S"}:
        return None
    text = value["S"]
    if not isinstance(text, str):
        return None
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate, which DynamoDB cannot store either
        return None
    return text if 0 < size <= _MAX_KEY_VALUE_LENGTH else None
