"""One fallback poller step (veo_relay.polling.Poller) with in-memory ports: what it asks the
provider, what it hands to the copy queue, and when it closes a task."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from tests.fakes import (
    FakeCopyQueue,
    FakeMetrics,
    FakeProviders,
    FakeTasks,
    failed,
    make_task,
    results_of,
    succeeded,
)
from veo_relay.errors import ProviderError
from veo_relay.polling import Poller
from veo_relay.settings import PollSettings
from veo_relay.tasks import TaskStatus, format_timestamp

TASK_ID = "vid_" + "a" * 24
POLL = PollSettings(interval_seconds=15, max_interval_seconds=180, deadline_seconds=2700)
LEASE = timedelta(seconds=360)


@dataclass
class Step:
    tasks: FakeTasks
    providers: FakeProviders = field(default_factory=FakeProviders)
    copies: FakeCopyQueue = field(default_factory=FakeCopyQueue)
    metrics: FakeMetrics = field(default_factory=FakeMetrics)

    def poll(self, now: datetime | None = None) -> str:
        results = results_of(self.tasks, self.providers)
        poller = Poller(self.tasks, results, self.copies, self.metrics, POLL, LEASE)
        return poller.poll_task(TASK_ID, 0, now=now).outcome

    @property
    def status(self) -> TaskStatus:
        return self.tasks.get(TASK_ID).status


def running(status: TaskStatus = TaskStatus.IN_PROGRESS, **fields: object) -> Step:
    return Step(FakeTasks(make_task(status, id=TASK_ID, **fields)))


def test_a_finished_task_is_handed_to_the_copy_and_watched_until_stored():
    step = running()
    step.providers.get("apixo").statuses = [succeeded("https://cdn.apixo.ai/v.mp4")]

    assert step.poll() == "open"
    (copy,) = step.copies.sent
    assert (copy.task_id, copy.reason) == (TASK_ID, "poller")
    assert step.status is TaskStatus.IN_PROGRESS  # the copy, not the poller, completes it


def test_a_provider_failure_closes_the_task_with_its_error():
    step = running()
    step.providers.get("apixo").statuses = [failed("content_violation")]

    assert step.poll() == "closed"
    assert step.status is TaskStatus.FAILED
    assert ("provider_error", ("apixo", "content_violation")) in step.metrics.recorded


def test_an_unavailable_status_api_keeps_the_task_open():
    step = running()
    step.providers.get("apixo").statuses = [
        ProviderError("provider_unavailable", "503", retryable=True)
    ]

    assert step.poll() == "open"
    assert step.status is TaskStatus.IN_PROGRESS


def test_a_task_past_its_deadline_is_failed_with_a_timeout():
    created = datetime.now(UTC) - timedelta(seconds=POLL.deadline_seconds + 1)
    step = running(created_at=format_timestamp(created))

    assert step.poll() == "closed"
    task = step.tasks.get(TASK_ID)
    assert task.status is TaskStatus.FAILED and task.error is not None
    assert task.error.code == "timeout"
    assert step.providers.get("apixo").status_reads == []


def test_a_copy_holding_its_lease_is_let_finish_past_the_deadline():
    # Given a task past its deadline whose copy took its lease a moment ago
    created = datetime.now(UTC) - timedelta(seconds=POLL.deadline_seconds + 1)
    step = running(created_at=format_timestamp(created))
    assert step.tasks.mark_storing(TASK_ID, LEASE) is not None

    # When the poller looks, Then it leaves the task to the copy
    assert step.poll() == "open"
    assert step.status is TaskStatus.STORING and step.copies.sent == []


def test_a_copy_whose_worker_vanished_is_requested_again_once_its_lease_is_out():
    stale = format_timestamp(datetime.now(UTC) - LEASE - timedelta(seconds=1))
    step = running(TaskStatus.STORING, updated_at=stale)

    assert step.poll() == "open"
    (copy,) = step.copies.sent
    assert copy.reason == "stalled copy"


def test_a_closed_task_closes_the_execution_without_asking_anyone():
    step = running(TaskStatus.COMPLETED)

    assert step.poll() == "closed"
    assert step.providers.get("apixo").status_reads == [] and step.tasks.writes == []
