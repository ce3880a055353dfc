"""docs/openapi.json is the description generated from the API's routes, never edited by hand."""

from __future__ import annotations

import json

from tools.openapi import OPENAPI_PATH, generate


def test_the_committed_description_matches_the_code():
    # Given the routes of the API function
    generated = generate()

    # Then docs/openapi.json is exactly what they produce (run `make openapi` after a change)
    assert OPENAPI_PATH.read_text() == generated


def test_it_describes_every_client_route_and_no_callback_route():
    paths = json.loads(OPENAPI_PATH.read_text())["paths"]
    assert set(paths) == {
        "/v1/videos",
        "/v1/videos/{task_id}",
        "/v1/videos/{task_id}/extend",
        "/v1/videos/{task_id}/cancel",
        "/v1/capabilities",
        "/v1/usage",
        "/v1/webhook-secret",
        "/v1/webhook-secret/rotate",
    }
    assert set(paths["/v1/videos"]) == {"get", "post"}
    assert set(paths["/v1/videos/{task_id}"]) == {"get", "delete"}
    assert set(paths["/v1/capabilities"]) == {"get"}
    assert set(paths["/v1/webhook-secret"]) == {"get"}
    assert set(paths["/v1/webhook-secret/rotate"]) == {"post"}
