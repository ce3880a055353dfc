"""Task persistence in DynamoDB through PynamoDB; every state change is one conditional write of a
transition in veo_relay.task_states."""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from pynamodb.attributes import (
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
)
from pynamodb.exceptions import DoesNotExist, PutError, UpdateError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from veo_relay.errors import TaskNotFound
from veo_relay.providers.capabilities import DEFAULT_RESOLUTION
from veo_relay.task_states import (
    COMPARISONS,
    AllOf,
    AnyOf,
    Compare,
    Condition,
    Increment,
    Missing,
    Remove,
    Set,
    StatusIn,
    TaskWrites,
    Transition,
)
from veo_relay.tasks import (
    StoredVideo,
    Task,
    TaskError,
    TaskStatus,
    is_task_id,
)


class OwnerCreatedIndex(GlobalSecondaryIndex["TaskRecord"]):
    class Meta:
        index_name = "owner-created-index"
        projection = AllProjection()

    owner = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class RootCreatedIndex(GlobalSecondaryIndex["TaskRecord"]):
    class Meta:
        index_name = "root-created-index"
        projection = AllProjection()

    root_id = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class TaskRecord(Model):
    class Meta:
        # Bound to the configured table by TaskStore; the template owns the real name.
        table_name = "unbound"

    id = UnicodeAttribute(hash_key=True)
    owner = UnicodeAttribute()
    status = UnicodeAttribute()
    provider = UnicodeAttribute()
    prompt = UnicodeAttribute()
    mode = UnicodeAttribute()
    generation_type = UnicodeAttribute()
    aspect_ratio = UnicodeAttribute()
    root_id = UnicodeAttribute()
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    # Records written before resolutions existed are 720p.
    resolution = UnicodeAttribute(default=DEFAULT_RESOLUTION)
    progress = NumberAttribute(null=True)
    image_urls = ListAttribute(of=UnicodeAttribute, default=list)
    seed = NumberAttribute(null=True)
    watermark = UnicodeAttribute(null=True)
    parent_id = UnicodeAttribute(null=True)
    fallback_providers = ListAttribute(of=UnicodeAttribute, default=list)
    provider_task_id = UnicodeAttribute(null=True)
    provider_model = UnicodeAttribute(null=True)
    submit_claimed_at = UnicodeAttribute(null=True)
    submit_attempt = NumberAttribute(null=True)
    creation_id = UnicodeAttribute(null=True)
    callback_received_at = UnicodeAttribute(null=True)
    callback_base_url = UnicodeAttribute(null=True)
    upgrade_started_at = UnicodeAttribute(null=True)
    upgrade_task_id = UnicodeAttribute(null=True)
    source_video_url = UnicodeAttribute(null=True)
    callbacks_quiet_until = UnicodeAttribute(null=True)
    deferred_copy_until = UnicodeAttribute(null=True)
    completed_at = UnicodeAttribute(null=True)
    video = MapAttribute(null=True)  # type: ignore[var-annotated]
    error = MapAttribute(null=True)  # type: ignore[var-annotated]
    cost_usd = NumberAttribute(null=True)
    cost_source = UnicodeAttribute(null=True)
    reserved_micros = NumberAttribute(null=True)
    webhook_url = UnicodeAttribute(null=True)
    request_hash = UnicodeAttribute(null=True)
    # Failed tasks expire (they hold no video), completed ones only under a video retention.
    expires_at = TTLAttribute(null=True)
    deletion_requested_at = UnicodeAttribute(null=True)
    deleted_at = UnicodeAttribute(null=True)

    owner_index = OwnerCreatedIndex()
    root_index = RootCreatedIndex()


def _is_condition_failure(exc: PutError | UpdateError) -> bool:
    return exc.cause_response_code == "ConditionalCheckFailedException"


class TaskStore(TaskWrites):
    """The task table. Transitions return the updated task, or None when the task was no longer in
    a state the transition may start from (a duplicate or late event: a no-op by design)."""

    def __init__(self, table_name: str) -> None:
        TaskRecord.Meta.table_name = table_name
        TaskRecord._connection = None  # a previous binding's connection names another table

    def create(self, task: Task) -> bool:
        """False when a task with this id exists already: one created under the same
        Idempotency-Key, whose id is derived from it (veo_relay.idempotency)."""
        try:
            _to_record(task).save(condition=TaskRecord.id.does_not_exist())
        except PutError as exc:
            if _is_condition_failure(exc):
                return False
            raise
        return True

    def get(self, task_id: str) -> Task:
        """Every read of a task by its id. An id not of the form the service gives is no task's,
        and is not sent to DynamoDB, which refuses a key over 2,048 bytes with a
        ValidationException (a 500 where the answer is a 404)."""
        if not is_task_id(task_id):
            raise TaskNotFound(task_id)
        try:
            return _to_task(TaskRecord.get(task_id, consistent_read=True))
        except DoesNotExist:
            raise TaskNotFound(task_id) from None

    def list_for_owner(
        self,
        owner: str,
        limit: int,
        cursor: dict[str, Any] | None,
        status: str | None,
        root_id: str | None = None,
    ) -> tuple[list[Task], dict[str, Any] | None]:
        """Newest first. With `root_id`, one family (a root and all its extensions). Deleted and
        expired tasks are left out (Task.is_gone), by DynamoDB, so that a page is still full."""
        condition = TaskRecord.deletion_requested_at.does_not_exist() & (
            TaskRecord.expires_at.does_not_exist() | (TaskRecord.expires_at > datetime.now(UTC))
        )
        if root_id:
            condition &= TaskRecord.owner == owner
        if status:
            condition &= TaskRecord.status == status
        index = TaskRecord.root_index if root_id else TaskRecord.owner_index
        query = index.query(
            root_id or owner,
            scan_index_forward=False,
            limit=limit,
            last_evaluated_key=cursor,
            filter_condition=condition,
        )
        tasks = [_to_task(record) for record in _take(query, limit)]
        return tasks, query.last_evaluated_key

    def count_by_status(self, owner: str, month: str) -> dict[str, int]:
        """The owner's tasks created in `month` (YYYY-MM), counted by status: only their status
        is read."""
        counts: dict[str, int] = {}
        query = TaskRecord.owner_index.query(
            owner,
            TaskRecord.created_at.startswith(month),
            attributes_to_get=["status"],
        )
        for record in query:
            counts[record.status] = counts.get(record.status, 0) + 1
        return counts

    def apply(self, task_id: str, transition: Transition, values: Mapping[str, Any]) -> Task | None:
        """`transition` in one conditional UpdateItem, its condition and actions rendered from the
        declaration with the write's `values`; None when the condition does not hold (a no-op by
        design)."""
        record = TaskRecord(id=task_id)
        try:
            record.update(
                actions=_actions(transition, values),
                condition=_condition(transition.condition, values),
            )
        except UpdateError as exc:
            if _is_condition_failure(exc):
                return None
            raise
        return _to_task(record)


def _condition(condition: Condition, values: Mapping[str, Any]) -> Any:
    """The PynamoDB condition for one of the table's (veo_relay.task_states.holds reads it the
    same way in Python)."""
    match condition:
        case StatusIn(statuses):
            names = sorted(status.value for status in statuses)
            return (
                TaskRecord.status == names[0]
                if len(names) == 1
                else TaskRecord.status.is_in(*names)
            )
        case Missing(name):
            return _attribute(name).does_not_exist()
        case Compare(name, op, value_name):
            return COMPARISONS[op](_attribute(name), values[value_name])
        case AnyOf(options):
            return functools.reduce(operator.or_, (_condition(o, values) for o in options))
        case AllOf(parts):
            return functools.reduce(operator.and_, (_condition(p, values) for p in parts))
    raise TypeError(f"not a condition: {condition!r}")


def _actions(transition: Transition, values: Mapping[str, Any]) -> list[Any]:
    """The update's actions: the status it leads to, then its effects."""
    target = transition.target(values)
    actions = [] if target is None else [TaskRecord.status.set(target.value)]
    for effect in transition.effects:
        match effect:
            case Set(name, value_name) if values[value_name] is not None:
                actions.append(_attribute(name).set(_stored(values[value_name])))
            case Remove(name):
                actions.append(_attribute(name).remove())
            case Increment(name):
                actions.append(_attribute(name).add(1))
    return actions


def _attribute(name: str) -> Any:
    return getattr(TaskRecord, name)


def _stored(value: Any) -> Any:
    """A task's value as its record holds it: a stored video or an error as a map (without the
    fields that are not set)."""
    if isinstance(value, StoredVideo | TaskError):
        return {k: v for k, v in asdict(value).items() if v is not None}
    return value


def _take(query: Iterable[TaskRecord], limit: int) -> Iterable[TaskRecord]:
    for count, record in enumerate(query, start=1):
        yield record
        if count >= limit:
            return


def _to_record(task: Task) -> TaskRecord:
    values = asdict(task)
    values["status"] = task.status.value
    for name in ("video", "error"):
        if values[name] is not None:
            values[name] = {k: v for k, v in values[name].items() if v is not None}
    return TaskRecord(**values)


def _to_task(record: TaskRecord) -> Task:
    values = record.attribute_values
    video = values.get("video")
    error = values.get("error")
    return Task(
        id=record.id,
        owner=record.owner,
        status=TaskStatus(record.status),
        provider=record.provider,
        prompt=record.prompt,
        mode=record.mode,
        generation_type=record.generation_type,
        aspect_ratio=record.aspect_ratio,
        root_id=record.root_id,
        created_at=record.created_at,
        updated_at=record.updated_at,
        resolution=record.resolution or DEFAULT_RESOLUTION,
        progress=int(record.progress) if record.progress is not None else None,
        image_urls=[str(url) for url in record.image_urls or []],
        seed=int(record.seed) if record.seed is not None else None,
        watermark=record.watermark,
        parent_id=record.parent_id,
        fallback_providers=[str(p) for p in record.fallback_providers or []],
        provider_task_id=record.provider_task_id,
        provider_model=record.provider_model,
        submit_claimed_at=record.submit_claimed_at,
        submit_attempt=int(record.submit_attempt or 0),
        creation_id=record.creation_id,
        callback_received_at=record.callback_received_at,
        callback_base_url=record.callback_base_url,
        upgrade_started_at=record.upgrade_started_at,
        upgrade_task_id=record.upgrade_task_id,
        source_video_url=record.source_video_url,
        callbacks_quiet_until=record.callbacks_quiet_until,
        deferred_copy_until=record.deferred_copy_until,
        completed_at=record.completed_at,
        video=StoredVideo(**_plain(video)) if video else None,
        error=TaskError(**_plain(error)) if error else None,
        cost_usd=float(record.cost_usd) if record.cost_usd is not None else None,
        cost_source=record.cost_source,
        reserved_micros=int(record.reserved_micros) if record.reserved_micros is not None else None,
        webhook_url=record.webhook_url,
        request_hash=record.request_hash,
        expires_at=record.expires_at,
        deletion_requested_at=record.deletion_requested_at,
        deleted_at=record.deleted_at,
    )


def task_from_image(image: dict[str, Any]) -> Task | None:
    """The task in a DynamoDB stream image (DynamoDB JSON), or None for the table's other items
    (submit slots)."""
    if "status" not in image or "owner" not in image:
        return None
    record = TaskRecord.from_raw_data(image)
    return _to_task(record)


def _plain(value: Any) -> dict[str, Any]:
    raw = value.as_dict() if isinstance(value, MapAttribute) else dict(value)
    if "size_bytes" in raw:
        raw["size_bytes"] = int(raw["size_bytes"])
    return raw
