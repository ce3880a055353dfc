"""The offline HTTP API serves the local console at /console/ before its routes (whose `$default`
would take any path), and leaves every other path to them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from offline.api_gateway import LocalHttpApi
from offline.template import load_template


class RecordingFunctions:
    """Stands in for LocalFunctions: records which function each request reached."""

    def __init__(self) -> None:
        self.invoked: list[str] = []

    def invoke(self, function: str, event: dict[str, Any]) -> dict[str, Any]:
        self.invoked.append(function)
        return {"statusCode": 404, "body": '{"error": {"code": "not_found", "message": "-"}}'}


@pytest.fixture
def api() -> Iterator[tuple[LocalHttpApi, RecordingFunctions]]:
    functions = RecordingFunctions()
    local = LocalHttpApi(load_template().routes(), functions, "127.0.0.1", 0)  # type: ignore[arg-type]
    local.start()  # stop() waits for its loop
    yield local, functions
    local.stop()


def test_the_console_is_served_by_the_local_api_without_a_function(
    api: tuple[LocalHttpApi, RecordingFunctions],
) -> None:
    # Given the local API / When the console is asked for
    local, functions = api
    status, headers, body = local.handle("GET", "/console/?principal=x", {}, b"")

    # Then the page comes back and no function ran
    assert (status, headers["Content-Type"]) == (200, "text/html; charset=utf-8")
    assert b"<title>veo-relay" in body
    assert functions.invoked == []


def test_other_paths_still_reach_the_routes(api: tuple[LocalHttpApi, RecordingFunctions]) -> None:
    # Given the local API / When a path beside the console is asked for
    local, functions = api
    status, _, _ = local.handle("GET", "/consoles", {}, b"")

    # Then the template's catch-all route answers it, through its function
    assert status == 404
    assert functions.invoked == ["ApiFunction"]
