"""Each principal's spending per calendar month, in the tasks table: one item per principal and
month, moved only by atomic counters (veo_relay.spending says when).

`committed` is every reservation not settled yet plus every settled cost: the figure a budget is
held to, in the one conditional write that reserves a price. `spent` is the settled part. Plain
UpdateItems, not transactions: every create of a principal writes the same item, and DynamoDB
refuses a transaction that meets another write on its item (TransactionConflict), while it
serialises single-item writes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pynamodb.attributes import NumberAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.exceptions import DoesNotExist, PutError, UpdateError
from pynamodb.expressions.update import Action
from pynamodb.models import Model

# A settlement's marker outlives every redelivery of its stream record (24 hours at most).
_MARKER_LIFETIME = timedelta(days=7)


class SpendRecord(Model):
    class Meta:
        table_name = "unbound"  # bound to the tasks table by SpendLedger

    id = UnicodeAttribute(hash_key=True)  # "spend#{owner}#{YYYY-MM}": never a task id
    committed_micros = NumberAttribute(null=True)
    spent_micros = NumberAttribute(null=True)


class SettlementRecord(Model):
    """That a task's reservation was settled: a stream record delivered again settles nothing."""

    class Meta:
        table_name = "unbound"

    id = UnicodeAttribute(hash_key=True)  # "settled#{task_id}"
    expires_at = TTLAttribute()


def _is_condition_failure(exc: PutError | UpdateError) -> bool:
    return exc.cause_response_code == "ConditionalCheckFailedException"


class SpendLedger:
    def __init__(self, table_name: str) -> None:
        for model in (SpendRecord, SettlementRecord):
            model.Meta.table_name = table_name
            model._connection = None

    def reserve(self, owner: str, month: str, micros: int, budget_micros: int | None) -> bool:
        """Adds `micros` to the month's committed spending, unless that would pass
        `budget_micros` (None: no budget): one conditional write. False: refused, nothing
        written."""
        record = SpendRecord(_key(owner, month))
        condition = None
        if budget_micros is not None:
            if micros > budget_micros:
                return False
            condition = SpendRecord.committed_micros.does_not_exist() | (
                SpendRecord.committed_micros <= budget_micros - micros
            )
        try:
            record.update(actions=[SpendRecord.committed_micros.add(micros)], condition=condition)
        except UpdateError as exc:
            if _is_condition_failure(exc):
                return False
            raise
        return True

    def adjust(self, owner: str, month: str, committed_micros: int, spent_micros: int) -> None:
        """Moves the month's counters by these amounts (a release is a negative commitment)."""
        actions: list[Action] = [SpendRecord.committed_micros.add(committed_micros)]
        if spent_micros:
            actions.append(SpendRecord.spent_micros.add(spent_micros))
        SpendRecord(_key(owner, month)).update(actions=actions)

    def read(self, owner: str, month: str) -> tuple[int, int]:
        """(committed, spent) micro-dollars of the month."""
        try:
            record = SpendRecord.get(_key(owner, month), consistent_read=True)
        except DoesNotExist:
            return 0, 0
        return int(record.committed_micros or 0), int(record.spent_micros or 0)

    def mark_settled(self, task_id: str) -> bool:
        """Takes the one settlement of a task's reservation; False when it was taken before."""
        marker = SettlementRecord(
            f"settled#{task_id}", expires_at=datetime.now(UTC) + _MARKER_LIFETIME
        )
        try:
            marker.save(condition=SettlementRecord.id.does_not_exist())
        except PutError as exc:
            if _is_condition_failure(exc):
                return False
            raise
        return True


def _key(owner: str, month: str) -> str:
    return f"spend#{owner}#{month}"
