"""TaskStore's conditional writes (moto's DynamoDB, its table from the template) do what the task
state machine's table (veo_relay.task_states) says in Python: exactly what the in-memory
repository of tests/fakes.py, which applies the same table, does."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from offline.template import load_template
from tests.helpers import ALICE
from veo_relay import task_states as states
from veo_relay.task_states import AllOf, AnyOf, Compare, Condition, Missing, StatusIn, Transition
from veo_relay.task_store import TaskStore
from veo_relay.tasks import StoredVideo, Task, TaskError, TaskStatus, new_task_id

# --- one table, two readings: DynamoDB's and Python's -------------------------------------------

T = "2026-11-21T10:0{}:00.000Z"
VALUES: dict[str, Any] = {
    "now": T.format(9),
    "stale_before": T.format(4),  # now minus a lease
    "taken_at": T.format(5),
    "quiet_until": "2026-11-21T10:20:00.000Z",
    "provider": "kie",
    "fallback_providers": ["apimart"],
    "provider_task_id": "task_2",
    "provider_model": "veo3_fast",
    "error": TaskError("timeout", "no result", provider_code="TIMEOUT"),
    "video": StoredVideo("bucket", "videos/vid_root/vid_1.mp4", 123, "ab" * 32, "video/mp4"),
    "expires_at": datetime(2027, 2, 19, tzinfo=UTC),
    "to": TaskStatus.IN_PROGRESS,
    "source_video_url": "https://tempfile.aiquickdraw.com/v/720p.mp4",
    "upgrade_task_id": "task_4k_1",
    "progress": 42,
    "cost_usd": 0.3,
    "cost_source": "price_table",
    # A deletion's stripped fields.
    "nothing": "",
    "none": [],
}
# Each shape sets the fields one guard reads, on either side of it.
SHAPES: dict[str, dict[str, Any]] = {
    "plain": {},
    "lease run out": {"updated_at": T.format(1)},
    "lease taken later": {"updated_at": T.format(7)},
    "submit claimed": {"submit_claimed_at": T.format(0)},
    "called back": {"callback_received_at": T.format(0)},
    "quiet until before now": {"callbacks_quiet_until": T.format(8)},
    "quiet until now": {"callbacks_quiet_until": T.format(9)},
    "quiet until later": {"callbacks_quiet_until": VALUES["quiet_until"]},
    "quiet, copy deferred for an earlier time": {
        "callbacks_quiet_until": VALUES["quiet_until"],
        "deferred_copy_until": "2026-11-21T10:15:00.000Z",
    },
    "upgrade started": {"upgrade_started_at": T.format(0)},
    "upgrade task known": {"upgrade_started_at": T.format(0), "upgrade_task_id": "task_4k_0"},
    "quiet, copy deferred": {
        "callbacks_quiet_until": VALUES["quiet_until"],
        "deferred_copy_until": VALUES["quiet_until"],
    },
    "deleted": {"deleted_at": T.format(1)},
}
# The choices the callers also make: a submit learnt from a callback names no model (the task
# keeps the one it has), and a lease taken from `queued` goes back there.
# A generation's result may name no URL to keep.
OTHER_VALUES = {
    **VALUES,
    "provider_model": None,
    "to": TaskStatus.QUEUED,
    "source_video_url": None,
}


def a_task(task_id: str, status: TaskStatus, **changes: Any) -> Task:
    task = Task(
        id=task_id,
        owner=ALICE,
        status=status,
        provider="apixo",
        prompt="a fox",
        mode="fast",
        generation_type="TEXT_2_VIDEO",
        aspect_ratio="16:9",
        root_id="vid_root",
        created_at=T.format(0),
        updated_at=VALUES["taken_at"],
        fallback_providers=["kie"],
        provider_task_id="task_1",
        provider_model="veo3",
        submit_attempt=1,
    )
    return replace(task, **changes)


@pytest.fixture(scope="module")
def store() -> Iterator[TaskStore]:
    definition = load_template().resources["TasksTable"]["Properties"]
    with pytest.MonkeyPatch.context() as env, mock_aws():
        for name, value in {
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }.items():
            env.setenv(name, value)
        env.delenv("AWS_ENDPOINT_URL", raising=False)
        boto3.client("dynamodb", region_name="us-east-1").create_table(
            TableName="TasksTable",
            KeySchema=definition["KeySchema"],
            AttributeDefinitions=definition["AttributeDefinitions"],
            GlobalSecondaryIndexes=definition["GlobalSecondaryIndexes"],
            BillingMode="PAY_PER_REQUEST",
        )
        yield TaskStore("TasksTable")


def fields_read(condition: Condition) -> set[str]:
    match condition:
        case StatusIn():
            return {"status"}
        case Missing(field) | Compare(field):
            return {field}
        case AnyOf(parts) | AllOf(parts):
            return set().union(*(fields_read(part) for part in parts))
    raise TypeError(condition)


@pytest.mark.parametrize("values", [VALUES, OTHER_VALUES], ids=["values", "other values"])
@pytest.mark.parametrize("transition", states.TRANSITIONS, ids=lambda t: t.name)
def test_the_stores_conditional_write_does_what_the_table_says(
    store: TaskStore, transition: Transition, values: dict[str, Any]
):
    # Given the shapes whose fields its condition reads (and the plain task), in every status
    read = fields_read(transition.condition)
    shapes = {name: changes for name, changes in SHAPES.items() if not set(changes) - read}
    disagreements = []
    for status in TaskStatus:
        for shape, changes in shapes.items():
            task = a_task(new_task_id(), status, **changes)
            assert store.create(task)

            # When the store writes the transition
            written = store.apply(task.id, transition, values)

            # Then it wrote exactly when the table allows it, and left the task as the table says
            # (`written` is the whole item as the write left it)
            expected = transition.applied(task, values) if transition.allows(task, values) else None
            if written != expected:
                disagreements.append(f"{status.value}, {shape}: wrote {written}, not {expected}")
    assert not disagreements


def test_a_list_leaves_out_deleted_and_expired_tasks_and_still_fills_its_page(store: TaskStore):
    # Given an owner's tasks: kept, expiring later, expired (the TTL has not removed it yet) and
    # deleted, each newer than the one before
    owner = f"{ALICE}-{new_task_id()}"
    now = datetime.now(UTC)
    shapes = {
        "kept": {},
        "expiring later": {"expires_at": now + timedelta(days=1)},
        "expired": {"expires_at": now - timedelta(seconds=1)},
        "deleted": {"deletion_requested_at": T.format(0)},
    }
    ids = {}
    for minute, (name, changes) in enumerate(shapes.items()):
        task = a_task(new_task_id(), TaskStatus.COMPLETED, owner=owner, **changes)
        task = replace(task, created_at=T.format(minute), root_id=owner)
        assert store.create(task)
        ids[name] = task.id

    # When the owner lists them, two to a page, and lists their family
    page, _ = store.list_for_owner(owner, 2, None, None)
    family, _ = store.list_for_owner(owner, 10, None, None, root_id=owner)

    # Then only the kept and the later-expiring ones are there, newest first, on a full page
    assert [t.id for t in page] == [ids["expiring later"], ids["kept"]]
    assert [t.id for t in family] == [ids["expiring later"], ids["kept"]]
    # And a read by id still finds a deleted one (a retried DELETE resumes it)
    assert store.get(ids["deleted"]).deletion_requested_at == T.format(0)
