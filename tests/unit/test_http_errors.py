"""Domain errors and request validation, mapped to HTTP in one place."""

from __future__ import annotations

import pytest

from veo_relay.errors import (
    ConfigurationError,
    InvalidCallback,
    InvalidRequest,
    ProviderError,
    TaskConflict,
    TaskNotFound,
)
from veo_relay.http_errors import error_body, status_for, validation_message


def test_the_error_body_has_one_shape():
    assert error_body("not_found", "gone") == {"error": {"code": "not_found", "message": "gone"}}


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidRequest("prompt", "is required"), 422),
        (TaskNotFound("vid_1"), 404),
        (TaskConflict("id: not completed"), 409),
        (InvalidCallback("unknown callback token"), 401),
        (ProviderError("provider_unavailable", "down"), 503),
        (ProviderError("rate_limited", "slow down"), 503),
        (ProviderError("insufficient_credits", "pay"), 502),
        (ProviderError("provider_error", "bad"), 502),
        (ConfigurationError("X must be set"), 500),
    ],
)
def test_each_domain_error_has_its_status(error, status):
    assert status_for(error) == status


def test_an_invalid_request_message_names_its_field():
    error = InvalidRequest("aspect_ratio", "must be 16:9")
    assert str(error) == "aspect_ratio: must be 16:9"
    assert error.field == "aspect_ratio"
    assert error.code == "invalid_request"


@pytest.mark.parametrize(
    ("errors", "expected"),
    [
        (
            [{"type": "missing", "loc": ("body", "prompt"), "msg": "Field required"}],
            (422, "prompt: is required"),
        ),
        (
            [{"type": "extra_forbidden", "loc": ("body", "colour"), "msg": "Extra inputs..."}],
            (422, "colour: is not a known field"),
        ),
        (
            [
                {
                    "type": "literal_error",
                    "loc": ("body", "aspect_ratio"),
                    "msg": "Input should be '16:9' or '9:16'",
                }
            ],
            (422, "aspect_ratio: Input should be '16:9' or '9:16'"),
        ),
        (
            [{"type": "string_pattern_mismatch", "loc": ("body", "image_urls", 0), "msg": "bad"}],
            (422, "image_urls[0]: bad"),
        ),
        (
            [{"type": "greater_than_equal", "loc": ("query", "limit"), "msg": "too small"}],
            (422, "limit: too small"),
        ),
        (
            [{"type": "json_invalid", "loc": ("body", 10), "msg": "JSON decode error"}],
            (400, "body: is not valid JSON"),
        ),
        (
            [{"type": "model_type", "loc": ("body",), "msg": "not an object"}],
            (422, "body: not an object"),
        ),
        ([], (422, "body: is invalid")),
    ],
    ids=["missing", "extra", "literal", "nested", "query", "json", "whole-body", "empty"],
)
def test_validation_message_names_the_field(errors, expected):
    assert validation_message(errors) == expected


def test_only_the_first_error_is_reported():
    # Given two violations
    errors = [
        {"type": "missing", "loc": ("body", "prompt"), "msg": "Field required"},
        {"type": "extra_forbidden", "loc": ("body", "colour"), "msg": "Extra"},
    ]

    # Then the message names the first field only
    assert validation_message(errors) == (422, "prompt: is required")
