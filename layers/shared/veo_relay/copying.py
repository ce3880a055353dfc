"""The copy: confirm the outcome with the provider, then stream the video into our bucket."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

from aws_lambda_powertools import Logger

from veo_relay.downloader import DownloadError, open_video
from veo_relay.providers.base import ProviderState
from veo_relay.runtime import Runtime
from veo_relay.tasks import StoredVideoRef, Task, TaskError
from veo_relay.video_store import StoredVideo

logger = Logger(child=True)


class CopyOutcome(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"
    STILL_RUNNING = "still_running"
    ALREADY_CLOSED = "already_closed"


def copy_video(runtime: Runtime, task_id: str) -> CopyOutcome:
    """Idempotent: a repeated request for a stored or closed task changes nothing.

    Raises on transient trouble (provider status, download, S3) so that the queue retries it.
    """
    task = runtime.tasks.get(task_id)
    if task.status.is_terminal:
        return CopyOutcome.ALREADY_CLOSED
    if task.provider_task_id is None:
        return CopyOutcome.STILL_RUNNING
    status = runtime.provider(task.provider).read_status(task.provider_task_id, task.kind)
    if status.state is ProviderState.RUNNING:
        # Nothing to copy yet; the fallback poller keeps watching the task.
        if task.callback_received_at is not None:
            runtime.tasks.forget_callback(task.id)
        return CopyOutcome.STILL_RUNNING
    if status.state is ProviderState.FAILED:
        assert status.error is not None
        runtime.tasks.mark_failed(task.id, status.error)
        return CopyOutcome.FAILED
    lease = timedelta(seconds=runtime.settings.copy_lease_seconds)
    leased = runtime.tasks.mark_storing(task.id, lease)
    if leased is None:
        # Closed meanwhile, or another worker's copy is under way (its lease still runs; should
        # that worker die, the poller requests the copy again once the lease is out).
        return CopyOutcome.ALREADY_CLOSED
    try:
        stored = runtime.videos.find(task.video_key) or _download(runtime, task, status.video_urls)
    except Exception:
        runtime.tasks.release_storing(task.id, leased.updated_at)
        raise
    if stored is None:
        return CopyOutcome.FAILED
    runtime.tasks.mark_completed(
        task.id,
        StoredVideoRef(
            bucket=stored.bucket,
            key=stored.key,
            size_bytes=stored.size_bytes,
            sha256=stored.sha256,
            content_type=stored.content_type,
        ),
    )
    logger.info("video stored", extra={"task_id": task.id, "size_bytes": stored.size_bytes})
    return CopyOutcome.COMPLETED


def _download(runtime: Runtime, task: Task, urls: tuple[str, ...]) -> StoredVideo | None:
    if not urls:
        runtime.tasks.mark_failed(
            task.id, TaskError("provider_error", "provider reported success without a video URL")
        )
        return None
    try:
        with open_video(urls[0], runtime.download_policy(task.provider)) as stream:
            return runtime.videos.store(stream, task.video_key, _metadata(task))
    except DownloadError as exc:
        if exc.retryable:
            raise
        runtime.tasks.mark_failed(
            task.id, TaskError("provider_error", f"the provider's video could not be copied: {exc}")
        )
        return None


def _metadata(task: Task) -> dict[str, str]:
    metadata = {"task-id": task.id, "root-id": task.root_id, "provider": task.provider}
    if task.parent_id:
        metadata["parent-id"] = task.parent_id
    return metadata
