"""Budgets and the creates-per-minute quota: a reservation that would pass the budget is refused
and writes nothing; a reservation's settlement once its task ends makes it the task's cost."""

from __future__ import annotations

import pytest

from tests.fakes import FakeCreationCounts, FakeSpendLedger, default_prices, make_task, spending
from tests.helpers import ALICE
from veo_relay.errors import BudgetExceeded, CreatesThrottled
from veo_relay.spend_settlement import SpendSettler
from veo_relay.task_store import _to_record as to_record
from veo_relay.tasks import TaskError, TaskStatus

MONTH = "2026-12"
BOB = "arn:aws:iam::123456789012:user/bob"


def test_reservations_are_taken_up_to_the_budget_exactly_and_no_further():
    # Given a budget of $1.00 and a ledger with nothing spent
    ledger = FakeSpendLedger()
    money = spending(ledger, budget_micros=1_000_000)

    # When $0.20 videos are reserved until one is refused
    for _ in range(5):
        money.reserve(ALICE, MONTH, 200_000)
    with pytest.raises(BudgetExceeded) as refused:
        money.reserve(ALICE, MONTH, 200_000)

    # Then exactly the budget is committed, and the refusal names the budget and the spend
    assert ledger.read(ALICE, MONTH) == (1_000_000, 0)
    message = str(refused.value)
    assert message.startswith("budget: ")
    assert "$1.00" in message and "2026-12" in message and "reserved $1.00" in message
    assert refused.value.code == "budget_exceeded"


def test_a_principal_with_an_override_has_its_own_budget_and_others_none():
    money = spending(overrides={BOB: 100_000})
    with pytest.raises(BudgetExceeded):
        money.reserve(BOB, MONTH, 200_000)
    for _ in range(20):
        money.reserve(ALICE, MONTH, 1_500_000)  # no default budget: never refused


def test_a_months_budget_is_its_own():
    ledger = FakeSpendLedger()
    money = spending(ledger, budget_micros=200_000)
    money.reserve(ALICE, "2026-11", 200_000)
    money.reserve(ALICE, MONTH, 200_000)
    assert ledger.read(ALICE, MONTH) == (200_000, 0)


def test_the_creates_of_a_minute_past_the_limit_are_throttled_with_the_wait():
    counts = FakeCreationCounts()
    money = spending(creates_per_minute=2, counts=counts)
    money.admit(ALICE)
    money.admit(ALICE)
    with pytest.raises(CreatesThrottled) as throttled:
        money.admit(ALICE)
    assert throttled.value.retry_after_seconds == 42
    assert "at most 2 per minute" in str(throttled.value)
    money.admit(BOB)  # another principal's minute is its own


def test_auto_reserves_the_highest_price_it_may_pay():
    money = spending()
    prices = default_prices()
    hold = money.hold_for(["apixo", "kie"], "quality", "720p")
    assert hold == max(
        prices.price("apixo", "quality", "720p"), prices.price("kie", "quality", "720p")
    )


# ---------------------------------------------------------------------------- settlement


def image(task) -> dict:
    """The task as the table's stream shows it (DynamoDB JSON)."""
    return to_record(task).serialize()


def settle(task, reserved: int, ledger: FakeSpendLedger, before: str = "in_progress") -> bool:
    ledger.reserve(task.owner, task.created_at[:7], reserved, None)
    task.reserved_micros = reserved
    old = image(task) | {"status": {"S": before}}
    return SpendSettler(ledger, default_prices()).settle(image(task), old)


def ended(status: TaskStatus, **fields):
    """A task of December that ended in `status`; never sent unless `fields` say otherwise."""
    fields = {"provider_task_id": None, "submit_claimed_at": None, **fields}
    return make_task(status, created_at="2026-12-02T10:00:00.000Z", **fields)


def test_a_completed_tasks_reservation_becomes_its_cost():
    ledger = FakeSpendLedger()
    task = ended(
        TaskStatus.COMPLETED, provider_task_id="t1", cost_usd=0.2, cost_source="price_table"
    )
    assert settle(task, 200_000, ledger)
    assert ledger.read(task.owner, MONTH) == (200_000, 200_000)


def test_the_providers_own_figure_adjusts_the_reservation():
    # Given auto reserved $0.30 and the provider reported $0.123
    ledger = FakeSpendLedger()
    task = ended(
        TaskStatus.COMPLETED, provider_task_id="t1", cost_usd=0.123, cost_source="provider"
    )
    assert settle(task, 300_000, ledger)
    assert ledger.read(task.owner, MONTH) == (123_000, 123_000)


@pytest.mark.parametrize(
    "fields",
    [
        {},  # cancelled, or never left the queue
        {"submit_claimed_at": "2026-12-02T10:00:01.000Z", "cost_usd": 0.0},  # refused
    ],
)
def test_a_task_no_provider_created_releases_its_reservation(fields):
    ledger = FakeSpendLedger()
    task = ended(TaskStatus.FAILED, error=TaskError("cancelled", "cancelled"), **fields)
    assert settle(task, 200_000, ledger, before="queued")
    assert ledger.read(task.owner, MONTH) == (0, 0)
    assert task.cost == {"usd": 0.0, "source": "price_table"}


def test_a_submit_whose_answer_was_lost_keeps_its_price():
    # Given a task whose submit may have reached the provider, closed by the poller's deadline
    ledger = FakeSpendLedger()
    task = ended(
        TaskStatus.FAILED,
        provider="apixo",
        submit_claimed_at="2026-12-02T10:00:01.000Z",
        error=TaskError("timeout", "deadline"),
    )
    assert settle(task, 200_000, ledger)
    assert ledger.read(task.owner, MONTH) == (200_000, 200_000)


def test_a_stream_record_delivered_again_settles_nothing_more():
    ledger = FakeSpendLedger()
    task = ended(TaskStatus.FAILED, error=TaskError("cancelled", "cancelled"))
    assert settle(task, 200_000, ledger, before="queued")
    again = SpendSettler(ledger, default_prices())
    assert not again.settle(image(task), image(task) | {"status": {"S": "queued"}})
    assert ledger.read(task.owner, MONTH) == (0, 0)


def test_changes_that_end_nothing_and_tasks_without_a_reservation_are_left_alone():
    ledger = FakeSpendLedger()
    settler = SpendSettler(ledger, default_prices())
    running = ended(TaskStatus.IN_PROGRESS, reserved_micros=200_000)
    assert not settler.settle(image(running), image(running) | {"status": {"S": "queued"}})
    old_task = ended(TaskStatus.COMPLETED, provider_task_id="t1")
    assert not settler.settle(image(old_task), image(old_task) | {"status": {"S": "storing"}})
    assert ledger.months == {} and ledger.settled == set()
