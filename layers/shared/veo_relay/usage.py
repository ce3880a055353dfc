"""`GET /v1/usage`: a principal's month: what it spent, what is reserved for tasks not ended yet,
its budget, and its tasks by status."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from veo_relay.errors import InvalidRequest
from veo_relay.pricing import to_usd
from veo_relay.tasks import TaskStatus

if TYPE_CHECKING:
    from veo_relay.ports import SpendRecords, TaskRepository
    from veo_relay.spending import BudgetPolicy

_MONTH = re.compile(r"(\d{4})-(0[1-9]|1[0-2])", re.ASCII)


def parse_month(value: str | None, now: datetime | None = None) -> str:
    """`YYYY-MM`; None: this month (UTC)."""
    if value is None:
        return (now or datetime.now(UTC)).strftime("%Y-%m")
    if not _MONTH.fullmatch(value):
        raise InvalidRequest("month", f"must be a month as YYYY-MM, got {value[:20]!r}")
    return value


@dataclass(frozen=True)
class UsageReport:
    ledger: SpendRecords
    tasks: TaskRepository
    budgets: BudgetPolicy

    def usage(self, owner: str, month: str) -> dict[str, Any]:
        committed, spent = self.ledger.read(owner, month)
        budget = self.budgets.for_owner(owner)
        counts = self.tasks.count_by_status(owner, month)
        return {
            "month": month,
            "spent_usd": to_usd(spent),
            "reserved_usd": to_usd(max(committed - spent, 0)),
            "budget_usd": None if budget is None else to_usd(budget),
            "tasks": {status.value: counts.get(status.value, 0) for status in TaskStatus},
        }
