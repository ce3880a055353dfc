"""Pacing submits to each provider's rate limit, across every function instance.

Providers refuse rather than queue when pushed too fast, and count in sliding windows. Each submit
reserves the provider's next free slot, `window / requests` seconds after the previous one (a
generic cell rate algorithm), so no window ever holds more than the limit. The schedule is one
item per provider, moved forward by conditional writes.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import UpdateError
from pynamodb.models import Model

from veo_relay.settings import RateLimit


class SubmitScheduleRecord(Model):
    class Meta:
        table_name = "unbound"  # bound to the tasks table by SubmitSlots

    id = UnicodeAttribute(hash_key=True)  # "submit-schedule#{provider}": never a task id
    next_slot_at = NumberAttribute()


class SubmitSlots:
    def __init__(self, table_name: str, clock: Callable[[], float] = time.time) -> None:
        SubmitScheduleRecord.Meta.table_name = table_name
        SubmitScheduleRecord._connection = None
        self._clock = clock

    def reserve(self, provider: str, limit: RateLimit) -> float:
        """Reserves the provider's next slot; returns its time (epoch seconds, maybe now).

        Two writes at most and no read: a free schedule is restarted at `now`; otherwise the
        schedule is pushed forward atomically and the slot is where it stood."""
        spacing = limit.slot_spacing
        record = SubmitScheduleRecord(f"submit-schedule#{provider}")
        now = self._clock()
        try:
            record.update(
                actions=[SubmitScheduleRecord.next_slot_at.set(now + spacing)],
                condition=SubmitScheduleRecord.next_slot_at.does_not_exist()
                | (SubmitScheduleRecord.next_slot_at <= now),
            )
            return now
        except UpdateError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise
        record.update(actions=[SubmitScheduleRecord.next_slot_at.add(spacing)])
        return float(record.next_slot_at) - spacing
