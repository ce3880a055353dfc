"""The task state machine's one table (veo_relay.task_states): that no transition reopens a closed
task, that the fallback poller's own DynamoDB writes (FailTask, FailStalledCopy in the definition
template.yaml deploys) are the table's `failed` transition, and that TaskStore's conditional
writes (moto's DynamoDB, its table from the template) do what the table's Python reading says:
what an in-memory repository that applies the table does."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from offline.template import load_template
from tests.helpers import ALICE, ROOT
from veo_relay import task_states as states
from veo_relay.task_states import (
    AllOf,
    AnyOf,
    Compare,
    Condition,
    Missing,
    Set,
    StatusIn,
    Transition,
)
from veo_relay.task_store import TaskStore
from veo_relay.tasks import (
    OPEN_STATUSES,
    TERMINAL_STATUSES,
    StoredVideo,
    Task,
    TaskError,
    TaskStatus,
    new_task_id,
)

# --- no transition out of a closed task ---------------------------------------------------------


@pytest.mark.parametrize("transition", states.TRANSITIONS, ids=lambda t: t.name)
def test_no_transition_starts_from_a_terminal_state(transition):
    assert transition.from_states <= OPEN_STATUSES
    assert not transition.from_states & TERMINAL_STATUSES


def test_a_task_may_fail_from_every_open_state_and_completes_only_once_stored():
    assert states.FAILED.from_states == OPEN_STATUSES
    assert states.COMPLETED.from_states == {TaskStatus.STORING}


# --- the state machine's own writes ---------------------------------------------------------------

# Where the definition's values come from, named as the table names the write's values.
EXECUTION_VALUES = {
    "$$.State.EnteredTime": "now",
    "$.failed_expires_at": "expires_at",
    # The task's updated_at as ReadStalledTask read it, a whole lease before (WaitForCopy): the
    # lease FailStalledCopy finds unchanged.
    "$.task.updated_at": "taken_at",
}
ASL_WRITES = {"FailTask": states.FAILED_BY_POLLER, "FailStalledCopy": states.FAILED_STALLED_COPY}


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    machines = load_template().of_type("AWS::Serverless::StateMachine")
    (machine,) = machines.values()
    return json.loads((ROOT / machine["Properties"]["DefinitionUri"]).read_text())


def asl_value(parameters: dict[str, Any], placeholder: str) -> Any:
    """A literal (`S`, `M`) as it is, or the name of the execution value a `.$` path reads."""
    (kind, value), *_ = parameters["ExpressionAttributeValues"][placeholder].items()
    if kind.endswith(".$"):
        return ("value", EXECUTION_VALUES[value])
    return value


def asl_field(parameters: dict[str, Any], name: str) -> str:
    return parameters.get("ExpressionAttributeNames", {}).get(name, name)


def asl_conjuncts(parameters: dict[str, Any]) -> frozenset[Condition]:
    """The ConditionExpression's terms (`a IN (:x, :y)`, `a = :x`, joined by AND), in the table's
    terms."""
    terms: set[Condition] = set()
    for term in parameters["ConditionExpression"].split(" AND "):
        if match := re.fullmatch(r"(\S+) IN \((.+)\)", term):
            field, listed = asl_field(parameters, match[1]), match[2].split(", ")
            assert field == "status"
            terms.add(StatusIn(frozenset(TaskStatus(asl_value(parameters, v)) for v in listed)))
            continue
        match = re.fullmatch(r"(\S+) (=|<|<=) (:\w+)", term)
        assert match, f"a term this test does not read: {term}"
        field, value = asl_field(parameters, match[1]), asl_value(parameters, match[3])
        if field == "status":
            assert match[2] == "="
            terms.add(StatusIn(frozenset({TaskStatus(value)})))
        else:
            assert value[0] == "value", f"{field} is compared with a constant"
            terms.add(Compare(field, match[2], value[1]))
    return frozenset(terms)


def asl_sets(parameters: dict[str, Any]) -> dict[str, Any]:
    expression = parameters["UpdateExpression"]
    assert expression.startswith("SET ") and " REMOVE " not in expression
    pairs = (item.split(" = ") for item in expression.removeprefix("SET ").split(", "))
    return {asl_field(parameters, name): asl_value(parameters, value) for name, value in pairs}


def conjuncts(condition: Condition) -> frozenset[Condition]:
    if isinstance(condition, AllOf):
        return frozenset().union(*(conjuncts(part) for part in condition.parts))
    return frozenset({condition})


@pytest.mark.parametrize("state_name", sorted(ASL_WRITES))
def test_the_state_machines_failing_writes_are_the_tables_failed_transition(definition, state_name):
    # Given the definition's UpdateItem state and the transition the table declares for it
    state = definition["States"][state_name]
    transition = ASL_WRITES[state_name]
    parameters = state["Parameters"]
    assert state["Resource"].endswith(":dynamodb:updateItem")
    assert parameters["TableName"] == "${TasksTable}"

    # Then its condition is the transition's: the same start states (no terminal one) and guards
    assert asl_conjuncts(parameters) == conjuncts(transition.condition)
    # And it writes what `failed` writes: the status, and each field from the value it names
    assert (transition.to, transition.effects) == (states.FAILED.to, states.FAILED.effects)
    written = asl_sets(parameters)
    assert written.pop("status") == TaskStatus.FAILED.value
    assert all(isinstance(effect, Set) for effect in transition.effects)
    assert set(written) == {effect.field for effect in transition.effects}
    for effect in transition.effects:
        if effect.field == "error":  # the machine's own error, a constant TaskError
            error = TaskError(**{k: v["S"] for k, v in written["error"].items()})
            assert error.code and error.message
        else:
            assert written[effect.field] == ("value", effect.value)


def test_between_them_the_state_machine_can_close_a_task_in_every_open_state(definition):
    # Given the two writes, and the path from the first (refused) to the second
    fail_task = definition["States"]["FailTask"]
    read = definition["States"]["ReadStalledTask"]
    wait = definition["States"]["WaitForCopy"]

    # Then FailTask, refused for a task being stored, reads its lease and waits a whole lease
    # before FailStalledCopy fails it only if that lease has not moved
    refused = [
        c
        for c in fail_task["Catch"]
        if "DynamoDB.ConditionalCheckFailedException" in c["ErrorEquals"]
    ]
    assert refused[0]["Next"] == "ReadStalledTask"
    assert (read["ResultPath"], read["ResultSelector"]["updated_at.$"]) == (
        "$.task",
        "$.Item.updated_at.S",
    )
    assert (wait["SecondsPath"], wait["Next"]) == ("$.copy_lease_seconds", "FailStalledCopy")
    # And together they start from every state `failed` may start from
    covered = states.FAILED_BY_POLLER.from_states | states.FAILED_STALLED_COPY.from_states
    assert covered == states.FAILED.from_states


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
    "quiet, copy deferred": {
        "callbacks_quiet_until": VALUES["quiet_until"],
        "deferred_copy_until": VALUES["quiet_until"],
    },
}
# The choices the callers also make: a submit learnt from a callback names no model (the task
# keeps the one it has), and a lease taken from `queued` goes back there.
OTHER_VALUES = {**VALUES, "provider_model": None, "to": TaskStatus.QUEUED}


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
