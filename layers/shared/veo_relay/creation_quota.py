"""Creates per principal per minute (CREATES_PER_MINUTE), counted in the tasks table: one item per
principal and minute, taken by one conditional write, expiring after its minute."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime

from pynamodb.attributes import NumberAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.exceptions import UpdateError
from pynamodb.models import Model

_WINDOW_SECONDS = 60


class CreationCountRecord(Model):
    class Meta:
        table_name = "unbound"  # bound to the tasks table by CreationQuota

    id = UnicodeAttribute(hash_key=True)  # "creates#{owner}#{minute}": never a task id
    creates = NumberAttribute(null=True)
    expires_at = TTLAttribute(null=True)


class CreationQuota:
    def __init__(self, table_name: str, clock: Callable[[], float] = time.time) -> None:
        CreationCountRecord.Meta.table_name = table_name
        CreationCountRecord._connection = None
        self._clock = clock

    def take(self, owner: str, per_minute: int) -> float | None:
        """Counts one create of `owner` in this minute; None when the minute has room, else the
        seconds until the next minute, when it will (nothing is counted then)."""
        now = self._clock()
        minute = math.floor(now / _WINDOW_SECONDS)
        ends_at = (minute + 1) * _WINDOW_SECONDS
        record = CreationCountRecord(f"creates#{owner}#{minute}")
        try:
            record.update(
                actions=[
                    CreationCountRecord.creates.add(1),
                    # Gone once its minute is long over (TTL deletes within days, harmlessly).
                    CreationCountRecord.expires_at.set(
                        datetime.fromtimestamp(ends_at + _WINDOW_SECONDS, UTC)
                    ),
                ],
                condition=CreationCountRecord.creates.does_not_exist()
                | (CreationCountRecord.creates < per_minute),
            )
        except UpdateError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise
            return max(ends_at - now, 1.0)
        return None
