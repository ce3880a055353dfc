"""GET /v1/usage's figures: a month's spend, what is reserved, the budget and tasks by status."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.fakes import FakeSpendLedger, FakeTasks, make_task
from tests.helpers import ALICE
from veo_relay.errors import BudgetExceeded, CreatesThrottled, InvalidRequest
from veo_relay.http_errors import status_for
from veo_relay.spending import BudgetPolicy
from veo_relay.tasks import TaskStatus
from veo_relay.usage import UsageReport, parse_month


def test_the_month_defaults_to_this_one_in_utc():
    assert parse_month(None, datetime(2026, 12, 31, 23, 59, tzinfo=UTC)) == "2026-12"
    assert parse_month("2026-01") == "2026-01"


@pytest.mark.parametrize("value", ["2026-13", "2026-00", "26-12", "2026-1", "2026-12-01", "now"])
def test_a_month_not_of_the_form_yyyy_mm_is_refused_naming_the_field(value):
    with pytest.raises(InvalidRequest) as refused:
        parse_month(value)
    assert refused.value.field == "month"


def task(status: TaskStatus, digit: str, created_at: str, owner: str = ALICE):
    return make_task(status, id="vid_" + digit * 24, created_at=created_at, owner=owner)


def test_usage_reports_spent_reserved_budget_and_tasks_by_status_of_that_month_only():
    # Given $0.50 settled and $0.20 still reserved in December, and tasks in several months
    ledger = FakeSpendLedger()
    ledger.adjust(ALICE, "2026-12", 700_000, 500_000)
    tasks = FakeTasks(
        task(TaskStatus.COMPLETED, "1", "2026-12-01T00:00:00.000Z"),
        task(TaskStatus.IN_PROGRESS, "2", "2026-12-02T00:00:00.000Z"),
        task(TaskStatus.COMPLETED, "3", "2026-11-30T23:59:59.999Z"),
        task(TaskStatus.FAILED, "4", "2026-12-02T00:00:00.000Z", owner="someone-else"),
    )
    report = UsageReport(ledger, tasks, BudgetPolicy(default=2_000_000, overrides={}))

    # When December's usage is read
    usage = report.usage(ALICE, "2026-12")

    # Then it has the figures of that month and that caller only
    assert usage == {
        "month": "2026-12",
        "spent_usd": 0.5,
        "reserved_usd": 0.2,
        "budget_usd": 2.0,
        "tasks": {"queued": 0, "in_progress": 1, "storing": 0, "completed": 1, "failed": 0},
    }


def test_no_budget_is_null():
    report = UsageReport(FakeSpendLedger(), FakeTasks(), BudgetPolicy(default=None, overrides={}))
    assert report.usage(ALICE, "2026-12")["budget_usd"] is None


def test_a_budget_refusal_is_402_and_a_throttled_create_429():
    assert status_for(BudgetExceeded("budget: ...")) == 402
    assert status_for(CreatesThrottled("creates: ...", retry_after_seconds=3)) == 429
