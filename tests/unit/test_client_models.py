"""The client's typed objects are docs/openapi.json's, field for field, so they cannot drift;
and the client package stands alone (it never imports the server's veo_relay)."""

from __future__ import annotations

import ast
import dataclasses
import json
from typing import get_args

import pytest

from tests.client_fakes import task_body
from tests.helpers import ROOT
from tests.openapi_schemas import assert_described
from veo_relay_client import Cost, Task, TaskError, TaskPage, Video
from veo_relay_client.models import TaskStatus

SCHEMAS = json.loads((ROOT / "docs" / "openapi.json").read_text())["components"]["schemas"]


@pytest.mark.parametrize(
    ("model", "schema"),
    [
        (Task, "TaskObject"),
        (Cost, "TaskObjectCost"),
        (Video, "TaskObjectVideo"),
        (TaskError, "TaskObjectError"),
        (TaskPage, "TaskList"),
    ],
)
def test_each_model_has_exactly_its_schemas_properties_in_order(model: type, schema: str) -> None:
    # Given the OpenAPI description the server generates from its code
    properties = list(SCHEMAS[schema]["properties"])
    # When the client's dataclass is read / Then its fields are those properties, in that order
    assert [field.name for field in dataclasses.fields(model)] == properties


def test_the_task_status_type_lists_the_schemas_statuses() -> None:
    # Given the schema's statuses / When the client's Literal is read
    statuses = get_args(TaskStatus)
    # Then they are the same
    assert list(statuses) == SCHEMAS["TaskStatus"]["enum"]


@pytest.mark.parametrize("status", ["in_progress", "completed", "failed"])
def test_a_task_read_from_the_api_gives_back_the_same_object(status: str) -> None:
    # Given a task object as the API answers it
    body = task_body(status)
    # When the client reads it and writes it back
    task = Task.from_dict(body)
    # Then nothing is lost, it is described by the schema, and nested objects are typed
    assert task.as_dict() == body
    assert_described(task.as_dict(), "TaskObject")
    assert task.done is (status != "in_progress")
    assert isinstance(task.cost, Cost)
    assert (task.video is not None) is (status == "completed")
    assert (task.error is not None) is (status == "failed")


def test_a_field_the_client_does_not_know_yet_is_ignored() -> None:
    # Given an answer from a newer server, with a field more (the contract grows by extension)
    body = {**task_body("completed"), "duration_seconds": 8}
    body["video"] = {**body["video"], "width": 1920}
    # When the client reads it / Then it reads what it knows
    assert Task.from_dict(body).as_dict() == task_body("completed")


def test_the_client_package_never_imports_the_server() -> None:
    # Given every module of the client package
    modules = sorted((ROOT / "client" / "src" / "veo_relay_client").rglob("*.py"))
    assert modules
    # When their imports are read
    imported = set()
    for module in modules:
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
    # Then none is the server's package (it is installed on its own, beside no server)
    assert "veo_relay" not in imported
    assert "veo_relay_client" in imported
