"""Idempotency-Key on creates and extends: the key is bound to its task by the task's id.

A task created under a key gets an id derived from its owner and the key, so the binding is the
task record itself, written by the same conditional put that creates the task: there is no moment
at which the task exists and the key is free, whatever fails after it. A repeat finds the task by
that id before anything is checked, reserved or submitted, and gets it back whatever became of it
(queued, in progress, failed...; a deleted or expired one is a conflict, its id never reused):
never a second task, never a second submit. The request's hash is kept on the task, so that the
same key with another body is a conflict. Keys are scoped to the owner: two principals never
share one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from veo_relay.errors import TaskConflict, TaskNotFound
from veo_relay.tasks import Task

if TYPE_CHECKING:
    from veo_relay.ports import TaskRepository


@dataclasses.dataclass(frozen=True)
class KeyBinding:
    """What a request under an Idempotency-Key creates its task with, and a repeat must match."""

    task_id: str
    request_hash: str


def binding_for(owner: str, key: str | None, request: dict[str, Any]) -> KeyBinding | None:
    """The binding of `owner`'s `key` to a task made from `request` (its kind and every field
    the caller chose, JSON-serialisable); None without a key."""
    if key is None:
        return None
    owner_and_key = json.dumps([owner, key]).encode()
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":")).encode()
    return KeyBinding(
        # The shape of every task id (vid_ and 96 bits in hex); a random one never equals it.
        task_id=f"vid_{hashlib.sha256(owner_and_key).hexdigest()[:24]}",
        request_hash=hashlib.sha256(canonical).hexdigest(),
    )


def bound_task(tasks: TaskRepository, owner: str, binding: KeyBinding) -> Task | None:
    """The task the key is bound to, if it has one (see `repeated_by`)."""
    try:
        task = tasks.get(binding.task_id)
    except TaskNotFound:
        return None
    return repeated_by(task, owner, binding.request_hash)


def repeated_by(task: Task, owner: str, request_hash: str | None) -> Task:
    """`task`, found under a key, for a request that repeats the one that created it; a conflict
    when it was created by another request."""
    if request_hash is None or task.owner != owner or task.request_hash != request_hash:
        raise TaskConflict("Idempotency-Key: already used with a different body; use a new key")
    if task.is_gone(datetime.now(UTC)):
        # Not a new task under the id the deleted (or expired) one had: its id stays 404.
        raise TaskConflict("Idempotency-Key: its video was deleted or expired; use a new key")
    return task
