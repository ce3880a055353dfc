"""The end of a task the client chooses: DELETE /v1/videos/{id} and POST /v1/videos/{id}/cancel.

A deletion is resumable. Its first write marks the task (veo_relay.task_states
DELETION_REQUESTED): from then on the task is gone to every reader (404, left out of lists).
Then its video and manifest are removed, `Video Deleted` is put on our bus, and the record is
stripped (DELETED). A DELETE retried after a fault midway finds the mark and does the rest; the
event is at least once, like the others. The stripped record stays, so that the id, and an
Idempotency-Key bound to it, never name a new task (veo_relay.idempotency). Extensions of a
deleted video are tasks of their own and stay.

A cancel fails a task still `queued` whose submit nobody claimed, in one conditional write; the
submit queue's message for it finds it failed then and does nothing (`claim_submit` takes only a
queued task). The failure announcer tells of it as of any failure (`Video Failed`, code
`cancelled`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from aws_lambda_powertools import Logger

from veo_relay.errors import TaskConflict, TaskNotFound
from veo_relay.ports import EventPublisher, TaskRepository, VideoStorage
from veo_relay.task_states import CANCELLED_CODE
from veo_relay.tasks import Task, TaskStatus, manifest_key_for
from veo_relay.video_events import VIDEO_DELETED

logger = Logger(child=True)


@dataclass(frozen=True)
class TaskLifecycle:
    tasks: TaskRepository
    videos: VideoStorage
    events: EventPublisher

    def delete(self, owner: str, task_id: str) -> None:
        """Deletes a closed task of `owner`'s; TaskNotFound for one that is not theirs or was
        deleted, TaskConflict for one still in flight."""
        task = self.tasks.get(task_id)
        if task.owner != owner or task.deleted_at is not None:
            raise TaskNotFound(task_id)
        if task.deletion_requested_at is None:
            if task.is_gone(datetime.now(UTC)):  # expired: its video is (or soon will be) gone
                raise TaskNotFound(task_id)
            if not task.status.is_terminal:
                raise TaskConflict(
                    f"id: video {task.id} is {task.status.value}; a video can be deleted once "
                    "it is completed or failed (a queued one can be cancelled first)"
                )
            if self.tasks.request_deletion(task_id) is None:
                raise TaskNotFound(task_id)  # another DELETE finished it meanwhile
        # Whatever the status, both keys: a copy that failed after storing may have left a video.
        self.videos.delete(task.video_key)
        self.videos.delete(manifest_key_for(task.video_key))
        # The task as it was (no download_url: events outlive a presigned URL).
        self.events.publish(VIDEO_DELETED, task.to_public())
        self.tasks.finish_deletion(task_id)
        logger.info("video deleted", extra={"task_id": task_id})

    def cancel(self, owner: str, task_id: str) -> Task:
        """The task, `failed` with code `cancelled`. A retried cancel whose answer was lost gets
        the same task. TaskConflict once the provider has it (or a submit of it is under way),
        or for a task that ended otherwise."""
        task = self.tasks.get(task_id)
        if task.owner != owner or task.is_gone(datetime.now(UTC)):
            raise TaskNotFound(task_id)
        cancelled = self.tasks.cancel(task_id)
        if cancelled is None:
            return self._not_cancelled(self.tasks.get(task_id))
        # Its reservation is released by its settlement (veo_relay.spend_settlement), as every
        # task's that ended before any provider had it: the stream sees this write too.
        logger.info("task cancelled", extra={"task_id": task_id})
        return cancelled

    @staticmethod
    def _not_cancelled(task: Task) -> Task:
        if task.status is TaskStatus.FAILED and task.error and task.error.code == CANCELLED_CODE:
            return task
        if task.status.is_terminal:
            raise TaskConflict(
                f"id: video {task.id} is {task.status.value}; only a queued video can be cancelled"
            )
        raise TaskConflict(
            f"id: the provider already has video {task.id} (it is {task.status.value}, its "
            "submit made or under way); it can no longer be cancelled"
        )
