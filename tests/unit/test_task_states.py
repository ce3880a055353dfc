"""The task state machine's one table (veo_relay.task_states): that no transition reopens a closed
task, and that the fallback poller's own DynamoDB writes (FailTask, FailStalledCopy in the
definition template.yaml deploys) are the table's `failed` transition. That TaskStore's writes
do what the table says: tests/integration/test_task_store_transitions.py."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from offline.template import load_template
from tests.helpers import ROOT
from veo_relay import task_states as states
from veo_relay.task_states import (
    AllOf,
    Compare,
    Condition,
    Set,
    StatusIn,
)
from veo_relay.tasks import (
    OPEN_STATUSES,
    TERMINAL_STATUSES,
    TaskError,
    TaskStatus,
)

# --- no transition out of a closed task ---------------------------------------------------------


# A deletion's two writes are the only ones a closed task takes: they leave its status.
DELETION = {states.DELETION_REQUESTED, states.DELETED}


@pytest.mark.parametrize("transition", states.TRANSITIONS, ids=lambda t: t.name)
def test_no_transition_reopens_a_closed_task(transition):
    if transition in DELETION:
        assert transition.from_states == TERMINAL_STATUSES
        assert transition.to == ()
    else:
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
