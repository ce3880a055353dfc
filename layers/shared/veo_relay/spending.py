"""Money per principal: the creates-per-minute quota, the monthly budget every create and extend
reserves its price against before any provider call, and the settlement of each reservation once
its task ends.

A reservation is the most the task can cost: the highest price among the providers `auto` may
still try. It is settled when the task ends (the tasks table's stream, so that the state machine's
own closing writes are settled too): released to 0 when no submit ever reached a provider (a
refusal that proves nothing was created, a cancel, a task that never left the queue), or made
the task's cost: the provider's figure where it reports one, else the price table's. A task
whose submit's answer was lost may have been charged: it keeps its price.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from veo_relay.errors import BudgetExceeded, CreatesThrottled
from veo_relay.ports import CreationCounts, SpendRecords
from veo_relay.pricing import PriceTable, to_usd


def month_of(timestamp: str) -> str:
    """`YYYY-MM` of a task's `created_at` (UTC): the month its price counts in."""
    return timestamp[:7]


@dataclass(frozen=True)
class BudgetPolicy:
    """Monthly budgets in micro-dollars: `default` for every principal (None: no budget), and
    per-principal `overrides` (by owner, as veo_relay.principals names it)."""

    default: int | None
    overrides: Mapping[str, int]

    def for_owner(self, owner: str) -> int | None:
        return self.overrides.get(owner, self.default)


@dataclass(frozen=True)
class Spending:
    """What a create or extend must pass before it is recorded (veo_relay.creation)."""

    ledger: SpendRecords
    counts: CreationCounts
    prices: PriceTable
    budgets: BudgetPolicy
    creates_per_minute: int | None

    def admit(self, owner: str) -> None:
        """Counts the create against the owner's minute; raises when the minute is full."""
        if self.creates_per_minute is None:
            return
        wait = self.counts.take(owner, self.creates_per_minute)
        if wait is not None:
            seconds = max(1, round(wait))
            raise CreatesThrottled(
                f"creates: at most {self.creates_per_minute} per minute for this caller; "
                f"retry in {seconds} s",
                retry_after_seconds=seconds,
            )

    def hold_for(self, providers: Collection[str], mode: str, resolution: str) -> int:
        """The reservation for a task `providers` may make: the highest of their prices."""
        return max(self.prices.price(name, mode, resolution) for name in providers)

    def reserve(self, owner: str, month: str, micros: int) -> None:
        """Reserves `micros` of the owner's month in one conditional write; a reservation that
        would pass the budget is refused, and nothing is written."""
        budget = self.budgets.for_owner(owner)
        if self.ledger.reserve(owner, month, micros, budget):
            return
        assert budget is not None  # only a budget refuses
        committed, spent = self.ledger.read(owner, month)
        raise BudgetExceeded(
            f"budget: this video's price of ${to_usd(micros):.2f} would take the monthly budget "
            f"of ${to_usd(budget):.2f} for {month} past its limit (spent ${to_usd(spent):.2f}, "
            f"reserved ${to_usd(committed - spent):.2f})"
        )

    def release(self, owner: str, month: str, micros: int) -> None:
        """Gives back a reservation whose task was never recorded."""
        self.ledger.adjust(owner, month, -micros, 0)
