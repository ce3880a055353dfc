"""One step of the fallback poller: read the provider's status and decide what comes next."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aws_lambda_powertools import Logger

from veo_relay.errors import ProviderError
from veo_relay.ports import CopyRequests, Metrics, TaskRepository
from veo_relay.provider_results import ProviderResults
from veo_relay.provider_status import Remains, apply_provider_status
from veo_relay.settings import PollSettings
from veo_relay.tasks import Task, TaskError, TaskStatus, parse_timestamp

logger = Logger(child=True)

# The longest wait between two reads of an upgrade under way (kie: "retry every 20-30 s").
UPGRADE_POLL_SECONDS = 30


@dataclass(frozen=True)
class PollResult:
    outcome: str  # "open" (wait and poll again) or "closed"
    wait_seconds: int
    attempt: int

    def to_dict(self) -> dict[str, object]:
        return {"outcome": self.outcome, "wait_seconds": self.wait_seconds, "attempt": self.attempt}


@dataclass(frozen=True)
class Poller:
    """One step of the fallback poller, for the state machine's PollProvider state."""

    tasks: TaskRepository
    results: ProviderResults
    copy_queue: CopyRequests
    metrics: Metrics
    poll: PollSettings
    # A copy holding its lease this long is let finish, even past the deadline.
    copy_lease: timedelta

    def poll_task(self, task_id: str, attempt: int, now: datetime | None = None) -> PollResult:
        now = now or datetime.now(UTC)
        poll = self.poll
        task = self.tasks.get(task_id)
        closed = PollResult("closed", 0, attempt + 1)
        if task.status.is_terminal:
            return closed
        deadline = parse_timestamp(task.created_at) + timedelta(seconds=poll.deadline_seconds)
        if now >= deadline and not self._copy_under_way(task, now):
            self.tasks.mark_failed(task.id, _deadline_error(task, poll.deadline_seconds))
            return closed
        checked = self._check_provider(task)
        if checked is Remains.CLOSED:
            return closed
        wait = next_wait_seconds(poll, attempt, now, deadline)
        if checked is Remains.UPGRADING:
            # An upgrade is asked after every 20-30 s (kie's advice), not at the poll's backoff.
            wait = min(wait, UPGRADE_POLL_SECONDS)
        return PollResult("open", wait, attempt + 1)

    def _check_provider(self, task: Task) -> Remains:
        if task.status is TaskStatus.STORING:
            if not self._copy_under_way(task, datetime.now(UTC)):
                # The copy's worker is gone without a word (a crash, a timeout): ask for it again.
                self.copy_queue.request_copy(task.id, reason="stalled copy")
            return Remains.RUNNING
        if task.provider_task_id is None:
            return Remains.RUNNING  # not submitted yet: only the task's own state can change
        try:
            status = self.results.read(task)
        except ProviderError as exc:
            self.metrics.provider_error(task.provider, exc.code)
            if exc.retryable:
                logger.warning(
                    "provider status unavailable", extra={"task_id": task.id, "code": exc.code}
                )
                return Remains.RUNNING
            self.tasks.mark_failed(
                task.id,
                TaskError(
                    exc.code, str(exc), provider_code=exc.raw_code, provider_message=exc.raw_message
                ),
            )
            return Remains.CLOSED
        if status.progress is not None and status.progress != task.progress:
            self.tasks.note_progress(task.id, status.progress)
        applied = apply_provider_status(task, status, self.tasks, self.metrics)
        if applied.remains is Remains.COPY:
            # The same copy path as a callback; the poller goes on until the video is stored.
            self.copy_queue.request_copy(task.id, reason="poller")
        return applied.remains

    def _copy_under_way(self, task: Task, now: datetime) -> bool:
        """A copy holding its lease is let finish, even past the deadline: failing the task under it
        would orphan the stored video."""
        if task.status is not TaskStatus.STORING:
            return False
        return parse_timestamp(task.updated_at) + self.copy_lease > now


def _deadline_error(task: Task, deadline_seconds: int) -> TaskError:
    if task.upgrade_started_at is not None:
        # The generation's own video stays on the record (source_video_url) for audit.
        return TaskError(
            "timeout",
            f"the video was generated, but its {task.resolution} version was not ready within "
            f"{deadline_seconds} seconds",
        )
    if task.provider_task_id is None and task.submit_claimed_at is not None:
        return TaskError(
            "timeout",
            f"the provider never confirmed the submit within {deadline_seconds} seconds; whether "
            "it created the task is unknown, and it was not submitted again so as not to pay twice",
        )
    return TaskError("timeout", f"no result within {deadline_seconds} seconds")


def next_wait_seconds(poll: PollSettings, attempt: int, now: datetime, deadline: datetime) -> int:
    """Growing, capped and jittered; never past the deadline, so its check runs on time (past
    it, a copy is being let finish: the usual interval)."""
    base = min(poll.max_interval_seconds, poll.interval_seconds * 1.5**attempt)
    wait = base * random.uniform(0.8, 1.2)
    remaining = (deadline - now).total_seconds()
    if remaining > 0:
        wait = min(wait, remaining)
    return max(1, math.floor(wait))
