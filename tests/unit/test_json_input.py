"""The one parser for JSON from outside, and the API's refusal of a body before it is parsed."""

from __future__ import annotations

import base64
import json

import pytest

from veo_relay.json_input import MAX_DEPTH, MalformedJson, parse_json
from veo_relay.raw_requests import refuse_raw_request


def nested(depth: int, opener: str = "[", closer: str = "]") -> str:
    return opener * depth + closer * depth


DEEP_BODIES = {
    "arrays-1000": nested(1000),
    "objects-1000": '{"a":' * 1000 + "1" + "}" * 1000,
    "mixed-1000": '[{"a":' * 500 + "1" + "}]" * 500,
    "in-a-field-1000": '{"prompt": "a cat", "image_urls": ' + nested(1000) + "}",
    "unclosed-60000": "[" * 60_000,
    "just-over": nested(MAX_DEPTH + 1),
}


@pytest.mark.parametrize("text", DEEP_BODIES.values(), ids=DEEP_BODIES.keys())
def test_json_nested_too_deeply_is_malformed_not_a_recursion_error(text):
    with pytest.raises(MalformedJson) as raised:
        parse_json(text)
    assert raised.value.reason == f"is nested too deeply (more than {MAX_DEPTH} levels)"
    assert isinstance(raised.value, json.JSONDecodeError)  # what Powertools' validation handles


@pytest.mark.parametrize(
    "text",
    [
        nested(MAX_DEPTH),
        json.dumps({"prompt": "[" * 5000 + "{" * 5000}),  # brackets in a string are not levels
        json.dumps({"prompt": '\\"[[[[' * 100}),  # nor after escaped quotes and backslashes
        json.dumps(["\\", "[" * 40]),
    ],
    ids=["at-the-limit", "brackets-in-a-string", "escaped-quotes", "escaped-backslash"],
)
def test_json_at_the_depth_limit_parses(text):
    assert parse_json(text) == json.loads(text)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("9" * 5000, float("inf")),  # more than Python's 4,300-digit limit for int()
        ("-" + "9" * 400, float("-inf")),
        ("1e999", float("inf")),
        ("9" * 100, int("9" * 100)),
        ("4294967295", 4294967295),
    ],
    ids=["5000-digits", "negative-400-digits", "1e999", "100-digits", "uint32-max"],
)
def test_huge_numbers_parse_without_an_error(text, value):
    # Then a number no integer field accepts is a float, so validation names the field
    assert parse_json(text) == value


@pytest.mark.parametrize(
    "raw", ["NaN", "[Infinity]", "-Infinity", "{'a': 1}", '{"a": 1} x', b"\xff\xfe", ""]
)
def test_what_is_not_strict_json_is_malformed(raw):
    with pytest.raises(MalformedJson):
        parse_json(raw)


def event(body: str | bytes, base64_encoded: bool = False) -> dict[str, object]:
    raw = body.encode() if isinstance(body, str) else body
    return {
        "body": base64.b64encode(raw).decode() if base64_encoded else raw.decode("latin-1"),
        "isBase64Encoded": base64_encoded,
        "headers": {"content-type": "application/json"},
    }


@pytest.mark.parametrize("base64_encoded", [False, True])
def test_the_api_refuses_a_body_nested_too_deeply_before_parsing_it(base64_encoded):
    # Given a 2 KB body nested 1,000 deep
    body = nested(1000)

    # When the API looks at the raw request
    refusal = refuse_raw_request(event(body, base64_encoded))

    # Then it is a 400 saying so, before the resolver ever parses it
    assert refusal == (
        400,
        "invalid_request",
        f"body: is nested too deeply (more than {MAX_DEPTH} levels)",
    )


def test_the_api_refuses_invalid_json_before_parsing_it():
    assert refuse_raw_request(event('{"prompt": ')) == (
        400,
        "invalid_request",
        "body: is not valid JSON",
    )


def test_the_api_lets_huge_numbers_through_to_validation():
    # (validation then names the field: tests/integration/test_api.py)
    body = '{"prompt": "a cat", "seed": ' + "9" * 5000 + "}"
    assert refuse_raw_request(event(body)) is None
