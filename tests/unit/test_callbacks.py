"""The callback use case (veo_relay.callbacks) with in-memory ports: a callback with its task's
token takes the copy's lease and queues the copy, once; anything else changes nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from tests.fakes import FakeCopyQueue, FakeProviders, FakeTasks, make_task
from veo_relay.callback_tokens import CallbackTokens
from veo_relay.callbacks import CallbackIntake, CallbackOutcome
from veo_relay.errors import InvalidCallback
from veo_relay.queues import DEFERRED_CALLBACK
from veo_relay.tasks import TaskStatus, format_timestamp

TASK_ID = "vid_" + "b" * 24
TOKENS = CallbackTokens(lambda: b"k" * 32)


@dataclass
class Callbacks:
    tasks: FakeTasks
    providers: FakeProviders = field(default_factory=FakeProviders)
    copies: FakeCopyQueue = field(default_factory=FakeCopyQueue)

    @property
    def intake(self) -> CallbackIntake:
        return CallbackIntake(
            tasks=self.tasks,
            providers=self.providers,
            provider_names=frozenset({"apixo", "kie", "apimart"}),
            callback_tokens=TOKENS,
            copy_queue=self.copies,
        )

    def call(self, token: str | None = None, provider: str = "apixo") -> CallbackOutcome:
        return self.intake.accept(provider, token or TOKENS.mint(provider, TASK_ID, 1), b"{}", {})


def waiting(status: TaskStatus = TaskStatus.IN_PROGRESS, **fields: object) -> Callbacks:
    return Callbacks(FakeTasks(make_task(status, id=TASK_ID, **fields)))


def test_the_first_callback_takes_the_lease_and_queues_one_copy():
    given = waiting()

    outcome = given.call()

    assert outcome is CallbackOutcome.QUEUED
    task = given.tasks.get(TASK_ID)
    assert task.status is TaskStatus.STORING
    (copy,) = given.copies.sent
    assert (copy.task_id, copy.reason, copy.lease) == (TASK_ID, "callback", task.updated_at)


def test_a_repeated_callback_queues_nothing_more():
    given = waiting()
    given.call()

    assert given.call() is CallbackOutcome.DUPLICATE
    assert len(given.copies.sent) == 1


def test_a_callback_for_a_closed_task_is_answered_and_ignored():
    given = waiting(TaskStatus.COMPLETED)

    assert given.call() is CallbackOutcome.ALREADY_CLOSED
    assert given.copies.sent == [] and given.tasks.writes == []


@pytest.mark.parametrize(
    "token",
    [
        TOKENS.mint("kie", TASK_ID, 1),  # another provider's
        TOKENS.mint("apixo", TASK_ID, 2),  # another attempt's
        TOKENS.mint("apixo", "vid_" + "c" * 24, 1),  # no such task
    ],
    ids=["other-provider", "other-attempt", "unknown-task"],
)
def test_a_token_that_is_not_the_tasks_latest_is_refused(token):
    given = waiting()

    with pytest.raises(InvalidCallback):
        given.call(token)
    assert given.copies.sent == [] and given.tasks.writes == []


def test_a_callback_naming_the_provider_task_of_a_lost_submit_answer_records_it():
    # Given a task whose submit's answer was lost (queued, claimed, no provider task id)
    given = waiting(TaskStatus.QUEUED, submit_claimed_at="2026-12-01T00:00:00.000Z")
    given.tasks.items[TASK_ID].submit_attempt = 1
    given.providers.get("apixo").notice_task_id = "apixo-task-9"

    # When the provider calls the task's own URL
    outcome = given.call()

    # Then the provider's task id is recorded, and the copy queued
    assert outcome is CallbackOutcome.QUEUED
    assert given.tasks.get(TASK_ID).provider_task_id == "apixo-task-9"


def test_a_callback_naming_another_provider_task_is_refused():
    given = waiting()
    given.providers.get("apixo").notice_task_id = "someone-elses-task"

    with pytest.raises(InvalidCallback):
        given.call()
    assert given.copies.sent == []


STARTED = "2026-12-02T10:00:00.000Z"


def test_an_upgrades_callback_naming_its_own_task_queues_the_copy():
    # Given a task whose 4K upgrade runs as kie's task "veo_4k_1"
    given = waiting(upgrade_started_at=STARTED, upgrade_task_id="veo_4k_1")
    given.providers.get("apixo").notice_task_id = "veo_4k_1"

    # When the 4K's callback comes to the task's URL, Then it takes the lease like any callback
    assert given.call() is CallbackOutcome.QUEUED
    assert given.tasks.get(TASK_ID).status is TaskStatus.STORING


def test_an_upgrades_callback_after_a_lost_start_answer_records_the_upgrade_task():
    # Given a task whose upgrade was asked for but whose answer (the 4K's task id) was lost
    given = waiting(upgrade_started_at=STARTED)
    given.providers.get("apixo").notice_task_id = "veo_4k_9"

    # When the 4K's callback names its task, Then that task is the upgrade's from now on
    assert given.call() is CallbackOutcome.QUEUED
    assert given.tasks.get(TASK_ID).upgrade_task_id == "veo_4k_9"


@pytest.mark.parametrize(
    "fields",
    [{}, {"upgrade_started_at": STARTED, "upgrade_task_id": "veo_4k_1"}],
    ids=["no upgrade", "another upgrade task"],
)
def test_a_callback_naming_neither_the_generation_nor_its_upgrade_is_refused(fields):
    given = waiting(**fields)
    given.providers.get("apixo").notice_task_id = "veo_4k_2"
    with pytest.raises(InvalidCallback):
        given.call()
    assert given.copies.sent == []
    assert given.tasks.get(TASK_ID).upgrade_task_id == fields.get("upgrade_task_id")


def test_within_the_quiet_time_only_the_first_callback_defers_one_copy_to_its_end():
    # Given a task whose callbacks are quiet for another 20 s
    until = format_timestamp(datetime.now(UTC) + timedelta(seconds=20))
    given = waiting(callbacks_quiet_until=until)

    # When two callbacks come within it
    first, second = given.call(), given.call()

    # Then both are ignored, and one copy is queued for the end of the quiet time
    assert (first, second) == (CallbackOutcome.IGNORED, CallbackOutcome.IGNORED)
    (copy,) = given.copies.sent
    assert copy.reason == DEFERRED_CALLBACK and 20 <= copy.delay_seconds <= 22
    assert given.tasks.get(TASK_ID).status is TaskStatus.IN_PROGRESS
