"""Settling each task's budget reservation once the task ends (veo_relay.spending): the tasks
table's stream, filtered to tasks entering `completed` or `failed`, delivers each such change at
least once, the state machine's own closing writes included."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger

from veo_relay.ports import SpendRecords
from veo_relay.pricing import PriceTable, to_micros, to_usd
from veo_relay.spending import month_of
from veo_relay.task_store import task_from_image
from veo_relay.tasks import TERMINAL_STATUSES, Task

logger = Logger(child=True)


@dataclass(frozen=True)
class SpendSettler:
    """Settles a task's reservation once the task ends: the tasks table's stream, filtered to
    tasks entering `completed` or `failed`, delivers each such change at least once."""

    ledger: SpendRecords
    prices: PriceTable

    def settle(self, new_image: dict[str, Any], old_image: dict[str, Any]) -> bool:
        """True when this change settled a reservation; False for any other change (the stream's
        filter drops most in AWS), a task with nothing reserved, or one settled before."""
        task = task_from_image(new_image)
        before = old_image.get("status", {}).get("S")
        if task is None or task.status not in TERMINAL_STATUSES or before in TERMINAL_STATUSES:
            return False
        if task.reserved_micros is None or not self.ledger.mark_settled(task.id):
            return False
        cost = self.final_cost(task)
        self.ledger.adjust(task.owner, month_of(task.created_at), cost - task.reserved_micros, cost)
        logger.info(
            "reservation settled",
            extra={
                "task_id": task.id,
                "reserved_usd": to_usd(task.reserved_micros),
                "cost_usd": to_usd(cost),
            },
        )
        return True

    def final_cost(self, task: Task) -> int:
        """What the ended task costs: its recorded cost; 0 when no submit ever reached a
        provider; else (a submit whose answer was lost, closed before its cost was noted) its
        price."""
        if task.cost_usd is not None:
            return to_micros(task.cost_usd)
        if task.never_sent:
            return 0
        return self.prices.price(task.provider, task.mode, task.resolution)
