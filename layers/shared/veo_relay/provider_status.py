"""What a provider's status means for its task, decided in one place for the copy and the poller:
a failure closes the task (counted, and the task failed with the provider's error); otherwise the
caller learns whether there is a video to copy yet."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from veo_relay.providers.base import ProviderState, ProviderStatus
from veo_relay.tasks import Task, TaskError


class FailsTasks(Protocol):
    def mark_failed(self, task_id: str, error: TaskError) -> Task | None: ...


class CountsProviderErrors(Protocol):
    def provider_error(self, provider: str, code: str) -> None: ...


class Remains(StrEnum):
    RUNNING = "running"  # nothing to copy yet
    # The provider confirmed the task, and is upgrading its video to the task's resolution.
    UPGRADING = "upgrading"
    COPY = "copy"  # the provider succeeded: the video at `video_urls` is to be stored
    CLOSED = "closed"  # the provider failed the task; it is failed here too


@dataclass(frozen=True)
class StatusApplied:
    remains: Remains
    video_urls: tuple[str, ...] = ()


def apply_provider_status(
    task: Task, status: ProviderStatus, tasks: FailsTasks, telemetry: CountsProviderErrors
) -> StatusApplied:
    if status.state is ProviderState.RUNNING:
        return StatusApplied(Remains.RUNNING)
    if status.state is ProviderState.UPGRADING:
        return StatusApplied(Remains.UPGRADING)
    if status.state is ProviderState.SUCCEEDED:
        return StatusApplied(Remains.COPY, status.video_urls)
    assert status.error is not None  # every adapter's FAILED status carries its error
    telemetry.provider_error(task.provider, status.error.code)
    tasks.mark_failed(task.id, status.error)
    return StatusApplied(Remains.CLOSED)
