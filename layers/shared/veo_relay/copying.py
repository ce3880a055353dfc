"""The copy: confirm the outcome with the provider, then stream the video into our bucket."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from aws_lambda_powertools import Logger

from veo_relay.deadlines import Deadline
from veo_relay.downloader import DownloadError
from veo_relay.manifests import (
    MANIFEST_CONTENT_TYPE,
    build_manifest,
    encode_manifest,
    manifest_key,
)
from veo_relay.ports import Metrics, TaskRepository, VideoSource, VideoStorage
from veo_relay.provider_results import ProviderResults
from veo_relay.provider_status import Remains, apply_provider_status
from veo_relay.tasks import StoredVideo, Task, TaskError, TaskStatus, parse_timestamp

logger = Logger(child=True)


class CopyOutcome(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"
    STILL_RUNNING = "still_running"
    ALREADY_CLOSED = "already_closed"


@dataclass(frozen=True)
class VideoCopier:
    tasks: TaskRepository
    videos: VideoStorage
    results: ProviderResults
    metrics: Metrics
    # The provider's video, each provider's under its own policy (veo_relay.downloader).
    sources: VideoSource
    # How long a copy owns a `storing` task before another worker may take it over.
    copy_lease: timedelta
    # After a callback the provider's status did not confirm, how long further ones are ignored.
    callback_quiet: timedelta
    # VideoRetentionDays: the completed task's record expires when its video does; None keeps it.
    video_retention: timedelta | None = None

    def copy(
        self,
        task_id: str,
        lease_taken_at: str | None = None,
        deadline: Deadline | None = None,
        deferred: bool = False,
    ) -> CopyOutcome:
        """Idempotent: a repeated request for a stored or closed task changes nothing.

        `lease_taken_at`: the copy's lease was taken for this request (by the callback), so no
        second write is needed to take it. `deadline`: by when the download must have ended (a
        slower one is cut off then, its upload aborted and the lease given back). `deferred`: the
        request of a callback that came while callbacks were quiet, delivered at the end of that
        time; it takes the lease as the callback would have, so that an unconfirmed one is forgotten
        the same way. Raises on transient trouble (provider status, download, S3) so that the queue
        retries it."""
        task = self.tasks.get(task_id)
        if task.status.is_terminal:
            return self._closed_already(task)
        if deferred:
            # None: closed, called back since (that callback's copy has the lease) or being copied.
            held = self.tasks.record_callback(task.id)
            if held is None:
                return CopyOutcome.ALREADY_CLOSED
            task = held
        else:
            held = self._held_lease(task, lease_taken_at)
        if task.provider_task_id is None:
            # Nothing to ask the provider about (the submit's answer was lost, and no callback named
            # its task yet): the lease is given back, so that the callback that does name it still
            # starts the copy.
            self._forget_callback(held)
            return CopyOutcome.STILL_RUNNING
        status = self.results.read(task)
        applied = apply_provider_status(task, status, self.tasks, self.metrics)
        if applied.remains is Remains.UPGRADING:
            # Confirmed, but its video is being upgraded (the poller watches the upgrade): the
            # lease is given back without quiet time, so that the upgrade's callback copies it.
            if held is not None:
                self.tasks.answer_callback(held.id, held.updated_at)
            return CopyOutcome.STILL_RUNNING
        if applied.remains is Remains.RUNNING:
            # Nothing to copy yet (an early callback); the fallback poller keeps watching the task.
            self._forget_callback(held)
            return CopyOutcome.STILL_RUNNING
        if applied.remains is Remains.CLOSED:
            return CopyOutcome.FAILED
        return self._store_video(task, held, applied.video_urls, deadline, status.cost_usd)

    def _closed_already(self, task: Task) -> CopyOutcome:
        if task.status is TaskStatus.COMPLETED:
            # A redelivered request, perhaps after a crash between the completed write and the
            # manifest: the manifest's write is create-only, so one that exists is left alone.
            self._publish_manifest(task)
        return CopyOutcome.ALREADY_CLOSED

    def _store_video(
        self,
        task: Task,
        held: Task | None,
        urls: tuple[str, ...],
        deadline: Deadline | None,
        provider_cost_usd: float | None,
    ) -> CopyOutcome:
        """Takes the copy's lease (unless this request holds it already), streams the video into the
        bucket and records the task completed."""
        leased = held or self.tasks.mark_storing(task.id, self.copy_lease)
        if leased is None:
            # Closed meanwhile, or another worker's copy is under way (its lease still runs; should
            # that worker die, the poller requests the copy again once the lease is out).
            return CopyOutcome.ALREADY_CLOSED
        started = time.monotonic()
        try:
            # An earlier attempt may have stored the video already: the store then takes that
            # object.
            stored = self._download(task, urls, deadline)
        except Exception:
            self.tasks.release_storing(task.id, leased.updated_at)
            raise
        if stored is None:
            return CopyOutcome.FAILED
        return self._complete(task, stored, time.monotonic() - started, provider_cost_usd)

    def _complete(
        self,
        task: Task,
        stored: StoredVideo,
        copy_seconds: float,
        provider_cost_usd: float | None,
    ) -> CopyOutcome:
        completed = self.tasks.mark_completed(
            task.id, stored, provider_cost_usd, retention=self.video_retention
        )
        if completed is None:
            return CopyOutcome.ALREADY_CLOSED
        # Counted at the completed write, before the manifest (whose failure is retried without it).
        self.metrics.task_completed(
            task.provider,
            stored.size_bytes,
            copy_seconds,
            _since_callback(completed),
            cost_usd=completed.cost_usd,
        )
        self._publish_manifest(completed)
        logger.info("video stored", extra={"task_id": task.id, "size_bytes": stored.size_bytes})
        return CopyOutcome.COMPLETED

    def _forget_callback(self, held: Task | None) -> None:
        """Gives back the lease a callback took (if this request holds it), forgetting the callback,
        and makes callbacks quiet for a while (TaskStore.release_storing). A task not submitted as
        far as we know (no provider task id) goes back to `queued`, where its lease was taken."""
        if held is not None:
            back_to = TaskStatus.IN_PROGRESS if held.provider_task_id else TaskStatus.QUEUED
            self.tasks.release_storing(
                held.id, held.updated_at, forget_callback_for=self.callback_quiet, back_to=back_to
            )

    def _held_lease(self, task: Task, taken_at: str | None) -> Task | None:
        """The task, when the lease taken for this request is still its own; renewed when the
        request
        waited in the queue for a good part of it."""
        if taken_at is None or task.status is not TaskStatus.STORING or task.updated_at != taken_at:
            return None
        age = datetime.now(UTC) - parse_timestamp(taken_at)
        if age < self.copy_lease / 6:
            return task
        return self.tasks.renew_lease(task.id, taken_at)

    def _publish_manifest(self, task: Task) -> None:
        """After the completed write, never before: the manifest's ObjectCreated event tells
        consumers
        the video is ready. A failure here fails the request, whose redelivery writes it; a manifest
        written already is not written again (one ObjectCreated event per video)."""
        self.videos.put_document(
            manifest_key(task),
            encode_manifest(build_manifest(task)),
            MANIFEST_CONTENT_TYPE,
            _metadata(task),
        )

    def _download(
        self, task: Task, urls: tuple[str, ...], deadline: Deadline | None
    ) -> StoredVideo | None:
        if not urls:
            self.tasks.mark_failed(
                task.id,
                TaskError("provider_error", "provider reported success without a video URL"),
            )
            return None
        try:
            with self.sources.open(urls[0], task.provider, deadline) as stream:
                return self.videos.store(stream, task.video_key, _metadata(task))
        except DownloadError as exc:
            if exc.retryable:
                raise
            self.tasks.mark_failed(
                task.id,
                TaskError("provider_error", f"the provider's video could not be copied: {exc}"),
            )
            return None


def _since_callback(task: Task) -> float | None:
    if task.callback_received_at is None:
        return None
    elapsed = datetime.now(UTC) - parse_timestamp(task.callback_received_at)
    return max(0.0, elapsed.total_seconds())


def _metadata(task: Task) -> dict[str, str]:
    """The ids, on the video and on its manifest (S3 returns them as x-amz-meta-*)."""
    metadata = {
        "task-id": task.id,
        "root-id": task.root_id,
        "provider": task.provider,
        "resolution": task.resolution,
    }
    if task.parent_id:
        metadata["parent-id"] = task.parent_id
    if task.provider_task_id:
        metadata["provider-task-id"] = task.provider_task_id
    return metadata
