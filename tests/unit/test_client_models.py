"""The client's typed objects are docs/openapi.json's, field for field, so they cannot drift;
and the client package stands alone (it never imports the server's veo_relay)."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
from typing import Any, get_args

import pytest

from tests.client_fakes import task_body
from tests.helpers import ROOT
from tests.openapi_schemas import assert_described
from veo_relay_client import Client, Cost, Task, TaskError, TaskPage, Video
from veo_relay_client.models import TaskStatus

DESCRIPTION = json.loads((ROOT / "docs" / "openapi.json").read_text())
SCHEMAS = DESCRIPTION["components"]["schemas"]
PATHS = DESCRIPTION["paths"]


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


def _keywords(method: Any) -> list[str]:
    return [
        name
        for name, parameter in inspect.signature(method).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    ]


def _query(path: str) -> list[str]:
    operation = PATHS[path]["get"]
    return [p["name"] for p in operation["parameters"] if p["in"] == "query"]


@pytest.mark.parametrize(
    ("method", "schema", "positional"),
    [
        (Client.create, "CreateVideoBody", ["prompt"]),
        (Client.extend, "ExtendVideoBody", ["prompt"]),
    ],
)
def test_create_and_extend_take_every_field_of_their_body_and_an_idempotency_key(
    method: Any, schema: str, positional: list[str]
) -> None:
    # Given a request body's schema / When the method's parameters are read
    fields = [*positional, *_keywords(method)]
    # Then they are the body's fields (in its order), and the Idempotency-Key
    assert fields == [*SCHEMAS[schema]["properties"], "idempotency_key"]


def test_the_listing_and_the_usage_take_their_routes_query_parameters() -> None:
    assert _keywords(Client.list_page) == _query("/v1/videos")
    assert [p for p in inspect.signature(Client.usage).parameters if p != "self"] == _query(
        "/v1/usage"
    )


def test_every_route_of_the_description_has_its_method_on_the_client() -> None:
    # Given the description's routes / Then each has its client method (the contract's routes;
    # the providers' callback route is not a client's)
    routes = {(method.upper(), path) for path, item in PATHS.items() for method in item}
    assert routes == set(CLIENT_ROUTES)
    assert all(callable(getattr(Client, name)) for name in CLIENT_ROUTES.values())


CLIENT_ROUTES = {
    ("POST", "/v1/videos"): "create",
    ("POST", "/v1/videos/{task_id}/extend"): "extend",
    ("GET", "/v1/videos/{task_id}"): "get",
    ("GET", "/v1/videos"): "list",
    ("DELETE", "/v1/videos/{task_id}"): "delete",
    ("POST", "/v1/videos/{task_id}/cancel"): "cancel",
    ("GET", "/v1/capabilities"): "capabilities",
    ("GET", "/v1/usage"): "usage",
    ("GET", "/v1/webhook-secret"): "webhook_secret",
    ("POST", "/v1/webhook-secret/rotate"): "rotate_webhook_secret",
}
