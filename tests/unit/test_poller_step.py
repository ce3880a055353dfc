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
    FakeUpgrades,
    failed,
    make_task,
    results_of,
    succeeded,
)
from veo_relay.errors import ProviderError
from veo_relay.polling import UPGRADE_POLL_SECONDS, Poller, PollResult
from veo_relay.providers.base import ProviderState, ProviderStatus
from veo_relay.providers.registry import spec_of
from veo_relay.settings import PollSettings
from veo_relay.tasks import TaskStatus, format_timestamp, parse_timestamp

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
        return self.step(now=now).outcome

    def step(self, attempt: int = 0, now: datetime | None = None) -> PollResult:
        results = results_of(self.tasks, self.providers)
        poller = Poller(self.tasks, results, self.copies, self.metrics, POLL, LEASE)
        return poller.poll_task(TASK_ID, attempt, now=now)

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


# --- upgrades and progress ----------------------------------------------------------------------


def upgrading_kie(**fields: object) -> Step:
    step = running(provider="kie", resolution="1080p", **fields)
    kie = step.providers.get("kie")
    kie.capabilities = spec_of("kie").capabilities
    kie.upgrades = FakeUpgrades()
    return step


def test_a_generation_found_done_starts_its_upgrade_and_the_next_look_comes_soon():
    # Given a 1080p kie task whose callback never came, its generation done
    step = upgrading_kie()
    step.providers.get("kie").statuses = [succeeded("https://tempfile.aiquickdraw.com/v/1.mp4")]

    # When the poller looks late in its schedule (its backoff would wait minutes)
    result = step.step(attempt=8)

    # Then the upgrade is asked for, nothing is copied yet, and it looks again within 30 s
    assert result.outcome == "open" and result.wait_seconds <= UPGRADE_POLL_SECONDS
    upgrades = step.providers.get("kie").upgrades
    assert upgrades is not None and len(upgrades.starts) == 1
    assert step.copies.sent == [] and step.status is TaskStatus.IN_PROGRESS


def test_a_finished_upgrade_is_handed_to_the_copy():
    step = upgrading_kie(upgrade_started_at="2026-12-02T10:00:00.000Z")
    upgrades = step.providers.get("kie").upgrades
    assert upgrades is not None
    upgrades.statuses = [succeeded("https://tempfile.aiquickdraw.com/p/1080.mp4")]

    assert step.poll() == "open"
    (copy,) = step.copies.sent
    assert copy.reason == "poller"


def test_an_upgrade_never_ready_ends_at_the_deadline_with_the_generated_video_kept():
    # Given a 1080p task whose upgrade never became ready, past its deadline
    source = "https://tempfile.aiquickdraw.com/v/720.mp4"
    step = upgrading_kie(upgrade_started_at="2026-12-02T10:00:00.000Z", source_video_url=source)
    created = step.tasks.get(TASK_ID).created_at

    # When the poller looks
    late = parse_timestamp(created) + timedelta(seconds=POLL.deadline_seconds + 1)
    assert step.poll(now=late) == "closed"

    # Then the task is failed for time, saying the 1080p version was not made, the 720p's URL kept
    task = step.tasks.get(TASK_ID)
    assert task.status is TaskStatus.FAILED and task.error is not None
    assert task.error.code == "timeout" and "1080p" in task.error.message
    assert task.source_video_url == source


def test_the_providers_progress_is_noted_while_it_works_and_only_when_it_moves():
    # Given apimart reporting 40 %, then 40 % again, then 75 %
    step = running(provider="apimart")
    step.providers.get("apimart").statuses = [
        ProviderStatus(ProviderState.RUNNING, progress=40),
        ProviderStatus(ProviderState.RUNNING, progress=40),
        ProviderStatus(ProviderState.RUNNING, progress=75),
    ]

    # When the poller looks three times
    for _ in range(3):
        assert step.poll() == "open"

    # Then the task's progress follows, written twice
    assert step.tasks.get(TASK_ID).progress == 75
    assert step.tasks.writes.count("progress noted") == 2
