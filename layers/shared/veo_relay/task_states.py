"""The task state machine, declared once: each transition a task's record may make, the states it
may start from, the guards that must hold, and what it writes.

Every transition is one conditional write: a duplicate or late event that finds the task in
another state, or a guard false, changes nothing. `TaskStore` renders a transition as one
conditional UpdateItem; an in-memory repository applies the same declaration through
`Transition.allows` and `Transition.applied`; the fallback poller's own writes
(statemachine/fallback_poller.asl.json) are checked against `FAILED_BY_POLLER` and
`FAILED_STALLED_COPY` (tests/unit/test_task_states.py). Creating a task is not a transition: it
is the put of an id not taken yet.

A guard compares a task's field with one of the write's named values (`now`, `taken_at`, ...); a
field that is not set satisfies no comparison, as in DynamoDB. A copy's lease is the `updated_at`
of the write that took it (renewing it rewrites `updated_at`).
"""

from __future__ import annotations

import operator
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from veo_relay.tasks import (
    FAILED_TASK_RETENTION,
    StoredVideo,
    Task,
    TaskError,
    TaskStatus,
    format_timestamp,
    utc_now,
)

# --- conditions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatusIn:
    statuses: frozenset[TaskStatus]


@dataclass(frozen=True)
class Missing:
    field: str


@dataclass(frozen=True)
class Compare:
    field: str
    op: Literal["=", "<", "<="]
    value: str  # the name of the write's value the field is compared with


@dataclass(frozen=True)
class AnyOf:
    options: tuple[Condition, ...]


@dataclass(frozen=True)
class AllOf:
    parts: tuple[Condition, ...]


Condition = StatusIn | Missing | Compare | AnyOf | AllOf

# What each comparison means, for a task's field in Python as for a PynamoDB attribute.
COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "<": operator.lt,
    "<=": operator.le,
}


def holds(condition: Condition, task: Task, values: Mapping[str, Any]) -> bool:
    """Whether `condition` holds for `task` under the write's `values`: what DynamoDB decides for
    the same condition on the task's record."""
    match condition:
        case StatusIn(statuses):
            return task.status in statuses
        case Missing(name):
            return getattr(task, name) is None
        case Compare(name, op, value_name):
            current = getattr(task, name)
            return current is not None and bool(COMPARISONS[op](current, values[value_name]))
        case AnyOf(options):
            return any(holds(option, task, values) for option in options)
        case AllOf(parts):
            return all(holds(part, task, values) for part in parts)
    raise TypeError(f"not a condition: {condition!r}")


# --- effects -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Set:
    """The field takes the write's value named `value`; None leaves the field as it is."""

    field: str
    value: str


@dataclass(frozen=True)
class Remove:
    field: str


@dataclass(frozen=True)
class Increment:
    field: str


Effect = Set | Remove | Increment

_TASK_FIELDS = frozenset(f.name for f in fields(Task))


@dataclass(frozen=True, eq=False)  # each transition is one of the table's, compared by identity
class Transition:
    """`start`: each state the transition may start from, with the guard that must hold there
    besides (None: none). `guards` must hold whichever state it starts from. `to`: the states it
    leads to: none (the status stays), one, or several, of which the write's value `to` names one.
    `effects`: the fields it writes besides the status."""

    name: str
    start: Mapping[TaskStatus, Condition | None]
    to: tuple[TaskStatus, ...] = ()
    guards: tuple[Condition, ...] = ()
    effects: tuple[Effect, ...] = ()

    @property
    def from_states(self) -> frozenset[TaskStatus]:
        return frozenset(self.start)

    @property
    def condition(self) -> Condition:
        """The whole condition of the write: one of the start states (with its guard), and the
        guards."""
        unguarded = frozenset(s for s, guard in self.start.items() if guard is None)
        routes: list[Condition] = [StatusIn(unguarded)] if unguarded else []
        routes += [
            AllOf((StatusIn(frozenset({status})), guard))
            for status, guard in self.start.items()
            if guard is not None
        ]
        where = routes[0] if len(routes) == 1 else AnyOf(tuple(routes))
        return AllOf((where, *self.guards)) if self.guards else where

    def target(self, values: Mapping[str, Any]) -> TaskStatus | None:
        """The status the write sets, if any."""
        if len(self.to) <= 1:
            return self.to[0] if self.to else None
        chosen = values["to"]
        if chosen not in self.to:
            raise ValueError(f"{self.name} leads to one of {self.to}, not {chosen}")
        return TaskStatus(chosen)

    def allows(self, task: Task, values: Mapping[str, Any]) -> bool:
        return holds(self.condition, task, values)

    def applied(self, task: Task, values: Mapping[str, Any]) -> Task:
        """`task` as the write leaves it (whether it `allows` the write is the caller's check).
        Fields the task does not carry are left to the table."""
        changes: dict[str, Any] = {}
        target = self.target(values)
        if target is not None:
            changes["status"] = target
        for effect in self.effects:
            if effect.field not in _TASK_FIELDS:
                continue
            match effect:
                case Set(name, value_name) if values[value_name] is not None:
                    changes[name] = values[value_name]
                case Remove(name):
                    changes[name] = None
                case Increment(name):
                    changes[name] = getattr(task, name) + 1
        return replace(task, **changes)

    def narrowed(self, name: str, start: Mapping[TaskStatus, Condition | None]) -> Transition:
        """The same write, from fewer states or under more guards (the state machine's own)."""
        if not set(start) <= set(self.start):
            raise ValueError(f"{name} starts where {self.name} may not")
        return replace(self, name=name, start=start)


# --- guards --------------------------------------------------------------------------------------

# While a submit is under way or its answer is lost, nothing submits the task again (it could pay
# twice); only a refusal that proves nothing was created gives the claim back.
SUBMIT_UNCLAIMED = Missing("submit_claimed_at")
# Only a task's first callback starts a copy.
NOT_CALLED_BACK = Missing("callback_received_at")
# After a callback the provider's status did not confirm, callbacks are ignored until then.
CALLBACKS_NOT_QUIET = AnyOf(
    (Missing("callbacks_quiet_until"), Compare("callbacks_quiet_until", "<=", "now"))
)
# One deferred copy per quiet time: the first callback of that time queues it.
QUIET_UNTIL = Compare("callbacks_quiet_until", "=", "quiet_until")
NO_COPY_DEFERRED_FOR_IT = AnyOf(
    (Missing("deferred_copy_until"), Compare("deferred_copy_until", "<", "quiet_until"))
)
# The lease taken (or last renewed) at `taken_at` is still the task's: no later write took it.
LEASE_UNCHANGED = Compare("updated_at", "=", "taken_at")
# The lease ran out (`stale_before` is now minus a lease): its copy's worker crashed or timed out.
LEASE_RUN_OUT = Compare("updated_at", "<", "stale_before")
# An upgrade to the task's resolution is asked for once (a 4K costs credits of its own).
UPGRADE_NOT_STARTED = Missing("upgrade_started_at")
UPGRADE_TASK_UNKNOWN = Missing("upgrade_task_id")

# --- the transitions -----------------------------------------------------------------------------

_Q, _P, _S = TaskStatus.QUEUED, TaskStatus.IN_PROGRESS, TaskStatus.STORING
_OPEN: dict[TaskStatus, Condition | None] = {_Q: None, _P: None, _S: None}

SUBMIT_CLAIMED = Transition(
    "submit claimed",
    start={_Q: None},
    guards=(SUBMIT_UNCLAIMED,),
    # Each claim is the next attempt: its callback URL has a token of its own.
    effects=(Set("submit_claimed_at", "now"), Increment("submit_attempt")),
)
SUBMIT_RELEASED = Transition(
    "submit released",
    start={_Q: None},
    effects=(
        Remove("submit_claimed_at"),
        Set("provider", "provider"),
        Set("fallback_providers", "fallback_providers"),
    ),
)
SUBMITTED = Transition(
    "submitted",
    start={_Q: None},
    to=(_P,),
    effects=(
        Set("updated_at", "now"),
        Set("provider_task_id", "provider_task_id"),
        Set("provider_model", "provider_model"),
        Set("cost_usd", "cost_usd"),
        Set("cost_source", "cost_source"),
    ),
)
# What the task costs when it is known before the end: the price of a submit whose answer was lost
# (the provider may have created, and charged for, the task).
COST_NOTED = Transition(
    "cost noted",
    start=_OPEN,
    effects=(Set("cost_usd", "cost_usd"), Set("cost_source", "cost_source")),
)
# The first callback of an open task takes the lease of the copy it queues, in the same write.
CALLBACK_RECORDED = Transition(
    "callback recorded",
    start={_Q: None, _P: None},
    to=(_S,),
    guards=(NOT_CALLED_BACK, CALLBACKS_NOT_QUIET),
    effects=(Set("updated_at", "now"), Set("callback_received_at", "now")),
)
COPY_DEFERRED = Transition(
    "copy deferred",
    start=_OPEN,
    guards=(QUIET_UNTIL, NO_COPY_DEFERRED_FOR_IT),
    effects=(Set("deferred_copy_until", "quiet_until"),),
)
# A copy takes its lease; a task being stored already is taken over only once that lease ran out,
# so two copies never overlap.
STORING = Transition(
    "storing",
    start={_Q: None, _P: None, _S: LEASE_RUN_OUT},
    to=(_S,),
    effects=(Set("updated_at", "now"),),
)
LEASE_RENEWED = Transition(
    "lease renewed",
    start={_S: None},
    guards=(LEASE_UNCHANGED,),
    effects=(Set("updated_at", "now"),),
)
# A failed copy gives its lease back, so that a retry need not wait it out; back to the state the
# lease was taken from (`queued` for a task whose submit's answer was lost).
LEASE_RELEASED = Transition(
    "lease released",
    start={_S: None},
    to=(_P, _Q),
    guards=(LEASE_UNCHANGED,),
)
# ...and forgets a callback the provider's status did not confirm (early or forged), so that the
# genuine one still starts the copy; callbacks are quiet until `quiet_until`.
CALLBACK_FORGOTTEN = Transition(
    "callback forgotten",
    start={_S: None},
    to=(_P, _Q),
    guards=(LEASE_UNCHANGED,),
    effects=(Remove("callback_received_at"), Set("callbacks_quiet_until", "quiet_until")),
)
# ...or answers a callback the provider's status confirmed, when there is nothing to copy yet (the
# generation is being upgraded): the upgrade's own callback may start the copy then.
CALLBACK_ANSWERED = Transition(
    "callback answered",
    start={_S: None},
    to=(_P,),
    guards=(LEASE_UNCHANGED,),
    effects=(Remove("callback_received_at"),),
)
# The generation succeeded and its upgrade is asked for (by the copy or the poller that found it
# so, whichever is first); its result stays on the task for audit.
UPGRADE_STARTED = Transition(
    "upgrade started",
    start={_P: None, _S: None},
    guards=(UPGRADE_NOT_STARTED,),
    effects=(Set("upgrade_started_at", "now"), Set("source_video_url", "source_video_url")),
)
# A refusal that proves the provider started nothing: the upgrade may be asked for again.
UPGRADE_RELEASED = Transition(
    "upgrade released",
    start={_P: None, _S: None},
    effects=(Remove("upgrade_started_at"),),
)
# The upgrade's own task, from the start's answer or, when that was lost, its callback.
UPGRADE_TASK_RECORDED = Transition(
    "upgrade task recorded",
    start={_P: None, _S: None},
    guards=(UPGRADE_TASK_UNKNOWN,),
    effects=(Set("upgrade_task_id", "upgrade_task_id"),),
)
# How far the provider says it is (apimart's 0-100), while it works.
PROGRESS_NOTED = Transition(
    "progress noted",
    start={_P: None},
    effects=(Set("progress", "progress"),),
)
# Under a retention (VideoRetentionDays) the record expires with its video: `expires_at`.
COMPLETED = Transition(
    "completed",
    start={_S: None},
    to=(TaskStatus.COMPLETED,),
    effects=(
        Set("updated_at", "now"),
        Set("video", "video"),
        Set("completed_at", "now"),
        # The provider's own figure, where its status reports one (None: the price table's stays).
        Set("cost_usd", "cost_usd"),
        Set("cost_source", "cost_source"),
        Set("expires_at", "expires_at"),
    ),
)
# Failed tasks hold no video: their records expire (`expires_at`, FAILED_TASK_RETENTION).
FAILED = Transition(
    "failed",
    start=_OPEN,
    to=(TaskStatus.FAILED,),
    effects=(Set("updated_at", "now"), Set("error", "error"), Set("expires_at", "expires_at")),
)
# A refusal that proves nothing was created: the task costs nothing.
FAILED_REFUSED = replace(
    FAILED,
    name="failed by a refusal",
    effects=(*FAILED.effects, Set("cost_usd", "cost_usd"), Set("cost_source", "cost_source")),
)
# The state machine's own closing writes, when the poller kept failing (FailTask, then
# FailStalledCopy): a task being stored is left to its copy while the copy holds a lease that
# moves; one whose lease has not moved for a whole lease (`taken_at`: the `updated_at` the
# machine read a lease before) is failed.
FAILED_BY_POLLER = FAILED.narrowed("failed by the poller", {_Q: None, _P: None})
FAILED_STALLED_COPY = FAILED.narrowed("failed stalled copy", {_S: LEASE_UNCHANGED})
CANCELLED_CODE = "cancelled"
# POST /v1/videos/{id}/cancel: a failure of the client's choosing, only while no submit was
# claimed (once one is, the provider has the task, or may have: it is paid for).
CANCELLED = Transition(
    "cancelled",
    start={_Q: None},
    to=(TaskStatus.FAILED,),
    guards=(SUBMIT_UNCLAIMED,),
    effects=FAILED.effects,
)

# DELETE /v1/videos/{id}, of a closed task: first marked (gone to every reader from here; a
# retried DELETE resumes a marked one), then, once its objects are removed and its event put,
# stripped of what the client gave and the video it had. The status stays: the failure
# announcer and the event rules see no transition.
NOT_DELETED = Missing("deleted_at")
_CLOSED: dict[TaskStatus, Condition | None] = {TaskStatus.COMPLETED: None, TaskStatus.FAILED: None}
DELETION_REQUESTED = Transition(
    "deletion requested",
    start=_CLOSED,
    guards=(NOT_DELETED,),
    effects=(Set("deletion_requested_at", "now"),),
)
DELETED = Transition(
    "deleted",
    start=_CLOSED,
    guards=(NOT_DELETED,),
    effects=(
        Set("deleted_at", "now"),
        Set("prompt", "nothing"),
        Set("image_urls", "none"),
        Remove("watermark"),
        Remove("webhook_url"),
        Remove("source_video_url"),
        Remove("video"),
    ),
)

TRANSITIONS = (
    SUBMIT_CLAIMED,
    SUBMIT_RELEASED,
    SUBMITTED,
    CALLBACK_RECORDED,
    COPY_DEFERRED,
    STORING,
    LEASE_RENEWED,
    LEASE_RELEASED,
    CALLBACK_FORGOTTEN,
    CALLBACK_ANSWERED,
    UPGRADE_STARTED,
    UPGRADE_RELEASED,
    UPGRADE_TASK_RECORDED,
    PROGRESS_NOTED,
    COST_NOTED,
    COMPLETED,
    FAILED,
    FAILED_REFUSED,
    FAILED_BY_POLLER,
    FAILED_STALLED_COPY,
    CANCELLED,
    DELETION_REQUESTED,
    DELETED,
)


class TaskWrites(ABC):
    """Each state change of a task: the transition of this table it is, and the values it
    writes. A repository says only how a transition is applied: `TaskStore` as one conditional
    UpdateItem, tests/fakes.py in memory, through `Transition.allows` and `applied`."""

    @abstractmethod
    def apply(self, task_id: str, transition: Transition, values: Mapping[str, Any]) -> Task | None:
        """The task after the write; None when its condition does not hold (a no-op by design)."""

    def claim_submit(self, task_id: str) -> Task | None:
        """Takes the right to submit a queued task, as its next attempt (with a token of its own);
        None when another submit holds or used it."""
        return self.apply(task_id, SUBMIT_CLAIMED, {"now": utc_now()})

    def release_submit(self, task_id: str, provider: str, fallback_providers: list[str]) -> None:
        """After a refusal that proves nothing was created: the task may be submitted again, to
        `provider`."""
        self.apply(
            task_id,
            SUBMIT_RELEASED,
            {"provider": provider, "fallback_providers": fallback_providers},
        )

    def mark_submitted(
        self,
        task_id: str,
        provider_task_id: str,
        provider_model: str | None,
        cost_usd: float | None = None,
    ) -> Task | None:
        """The provider has the task; `cost_usd`: the price table's figure for it."""
        return self.apply(
            task_id,
            SUBMITTED,
            {
                "now": utc_now(),
                "provider_task_id": provider_task_id,
                "provider_model": provider_model,
                **_cost(cost_usd, "price_table"),
            },
        )

    def note_cost(self, task_id: str, cost_usd: float) -> None:
        self.apply(task_id, COST_NOTED, _cost(cost_usd, "price_table"))

    def record_callback(self, task_id: str) -> Task | None:
        """Notes the first callback of an open task and takes the lease of the copy it queues, in
        one write: the task is `storing` from here. None for every later callback, while another
        copy holds the task, and while callbacks are quiet (see `release_storing`)."""
        return self.apply(task_id, CALLBACK_RECORDED, {"now": utc_now()})

    def defer_copy(self, task_id: str, quiet_until: str) -> bool:
        """Notes that a copy was queued for the end of the quiet time that lasts until
        `quiet_until`: true for the first callback of that time, false for every later one (and
        once the task is closed, or its callbacks quiet until another time)."""
        written = self.apply(task_id, COPY_DEFERRED, {"quiet_until": quiet_until})
        return written is not None

    def renew_lease(self, task_id: str, taken_at: str) -> Task | None:
        """A fresh start for the lease taken at `taken_at`, if it is still the task's."""
        return self.apply(task_id, LEASE_RENEWED, {"now": utc_now(), "taken_at": taken_at})

    def mark_storing(self, task_id: str, lease: timedelta) -> Task | None:
        """Takes the copy. A task already `storing` is taken over only when the previous copy's
        lease has run out (its worker crashed or timed out), so two copies never overlap."""
        now = datetime.now(UTC)
        return self.apply(
            task_id,
            STORING,
            {"now": format_timestamp(now), "stale_before": format_timestamp(now - lease)},
        )

    def release_storing(
        self,
        task_id: str,
        taken_at: str,
        forget_callback_for: timedelta | None = None,
        back_to: TaskStatus = TaskStatus.IN_PROGRESS,
    ) -> None:
        """Gives back a copy's lease after the copy failed, so that a retry need not wait it out;
        only the lease taken at `taken_at` (no later one) is given back. With
        `forget_callback_for`, a callback the provider's status did not confirm (early or forged)
        is forgotten too, so that the provider's genuine one still starts the copy, and callbacks
        are quiet for that long: each would cost a copy and a status call. `back_to`: the state
        the lease was taken from (`queued` for a task whose submit's answer was lost, so that the
        callback naming the provider's task can still record it)."""
        values: dict[str, Any] = {"taken_at": taken_at, "to": back_to}
        if forget_callback_for is None:
            self.apply(task_id, LEASE_RELEASED, values)
            return
        values["quiet_until"] = format_timestamp(datetime.now(UTC) + forget_callback_for)
        self.apply(task_id, CALLBACK_FORGOTTEN, values)

    def answer_callback(self, task_id: str, taken_at: str) -> None:
        """Gives back the lease of a callback the provider confirmed when there is nothing to copy
        yet (its video is being upgraded), so that the upgrade's callback can take one again."""
        self.apply(task_id, CALLBACK_ANSWERED, {"taken_at": taken_at})

    def start_upgrade(self, task_id: str, source_video_url: str | None) -> Task | None:
        """Takes the one request of the task's upgrade; None when it was taken already."""
        return self.apply(
            task_id, UPGRADE_STARTED, {"now": utc_now(), "source_video_url": source_video_url}
        )

    def release_upgrade(self, task_id: str) -> None:
        self.apply(task_id, UPGRADE_RELEASED, {})

    def record_upgrade_task(self, task_id: str, upgrade_task_id: str) -> Task | None:
        return self.apply(task_id, UPGRADE_TASK_RECORDED, {"upgrade_task_id": upgrade_task_id})

    def note_progress(self, task_id: str, progress: int) -> None:
        self.apply(task_id, PROGRESS_NOTED, {"progress": progress})

    def mark_completed(
        self,
        task_id: str,
        video: StoredVideo,
        provider_cost_usd: float | None = None,
        retention: timedelta | None = None,
    ) -> Task | None:
        """`provider_cost_usd`: what the provider reports the video cost, where it does. With a
        `retention`, the record expires that long after now, as its video does."""
        expires_at = datetime.now(UTC) + retention if retention else None
        return self.apply(
            task_id,
            COMPLETED,
            {
                "now": utc_now(),
                "video": video,
                "expires_at": expires_at,
                **_cost(provider_cost_usd, "provider"),
            },
        )

    def mark_failed(
        self, task_id: str, error: TaskError, cost_usd: float | None = None
    ) -> Task | None:
        """`cost_usd`: what the task costs, when the failure proves it (0 for a refusal that
        created nothing)."""
        values = {
            "now": utc_now(),
            "error": error,
            "expires_at": datetime.now(UTC) + FAILED_TASK_RETENTION,
        }
        if cost_usd is None:
            return self.apply(task_id, FAILED, values)
        return self.apply(task_id, FAILED_REFUSED, {**values, **_cost(cost_usd, "price_table")})

    def cancel(self, task_id: str) -> Task | None:
        """Fails a task no submit has claimed, with the code `cancelled`; None once one has (or
        the task is closed)."""
        error = TaskError(CANCELLED_CODE, "cancelled by the client before it was submitted")
        return self.apply(
            task_id,
            CANCELLED,
            {
                "now": utc_now(),
                "error": error,
                "expires_at": datetime.now(UTC) + FAILED_TASK_RETENTION,
            },
        )

    def request_deletion(self, task_id: str) -> Task | None:
        """Marks a closed task deleted, for every reader; None when it is open or deleted."""
        return self.apply(task_id, DELETION_REQUESTED, {"now": utc_now()})

    def finish_deletion(self, task_id: str) -> Task | None:
        """Keeps of a deleted task only what its id and usage need; None when done already."""
        return self.apply(task_id, DELETED, {"now": utc_now(), "nothing": "", "none": []})


def _cost(usd: float | None, source: str) -> dict[str, Any]:
    """A write's cost values: none (None leaves the task's as they are) or the figure and its
    source."""
    return {"cost_usd": usd, "cost_source": None if usd is None else source}
