"""Checking a body against docs/openapi.json's schemas, as a client generated from it reads it."""

from __future__ import annotations

import copy
import json
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator

from tests.helpers import ROOT


@cache
def _components() -> dict[str, Any]:
    """The description's schemas, each object closed to undeclared fields: the description
    leaves additional fields open for clients (the contract grows by extension), but whatever
    we send must be described."""
    components = copy.deepcopy(json.loads((ROOT / "docs" / "openapi.json").read_text()))
    for schema in components["components"]["schemas"].values():
        if schema.get("type") == "object":
            schema["additionalProperties"] = False
    return {"components": components["components"]}


def assert_described(body: Any, schema_name: str) -> None:
    """`body`, as JSON carries it, is a `schema_name` of docs/openapi.json with nothing more."""
    schema = {**_components(), "$ref": f"#/components/schemas/{schema_name}"}
    Draft202012Validator(schema).validate(json.loads(json.dumps(body)))
