"""Property-based fuzzing of the HTTP API from docs/openapi.json (schemathesis) against the
offline stack: no 5xx, every error body exactly {"error": {"code": str, "message": str}}, and
no 2xx for input the description calls invalid. Explicit requests cover malformed JSON, wrong
content types and inputs the generator is unlikely to reach.

The explicit tests at the end pin what the fuzzing once found broken (content types, encodings,
strict integers, forged cursors, unmatched routes, the description's declared responses), and
hypothesis strategies send what the description cannot express: bodies nested far too deeply and
numbers past every range, on the client routes and on the callback route behind a real token."""

from __future__ import annotations

import base64
import itertools
import json
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import negative_data_rejection

from tests.e2e.conftest import ROOT
from tests.e2e.targets import RunningStack

PRINCIPAL = "fuzz-user"
MAX_EXAMPLES = 60  # per operation and generation mode; valid creates start simulated tasks

# Cases sent (by operation, phase/mode) and known-bug responses seen; printed at the end.
SENT: Counter[tuple[str, str]] = Counter()
STATUSES: Counter[tuple[str, int]] = Counter()
UNIQUE = itertools.count()


class ErrorShapeMismatch(AssertionError):
    pass


def error_shape(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> None:
    """Every 4xx/5xx body is JSON, exactly {"error": {"code": str, "message": str}}."""
    if response.status_code < 400:
        return
    content_type = response.headers.get("content-type", [""])[0]
    if "json" not in content_type:
        raise ErrorShapeMismatch(f"{response.status_code} with Content-Type {content_type!r}")
    _assert_error_shape(json.loads(response.content))


def _assert_error_shape(body: Any) -> None:
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error, dict) and set(error) == {"code", "message"}, body
    assert isinstance(error["code"], str) and error["code"], body
    assert isinstance(error["message"], str) and error["message"], body


CHECKS = [not_a_server_error, negative_data_rejection, error_shape]

# Built eagerly: the lazy `schemathesis.pytest.from_fixture` of 4.32.5 sets `node._nodeid`,
# which pytest 9 no longer has. The base URL (the session's stack) is given to each call.
schema = schemathesis.openapi.from_path(ROOT / "docs" / "openapi.json")
schema.config.update(request_timeout=60)
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
    max_examples=MAX_EXAMPLES,
    deterministic=True,  # derandomized: the same cases on every run
    database="none",  # no .hypothesis/ directory in the repository
)


@pytest.fixture(scope="module", autouse=True)
def _report_counts() -> Iterator[None]:
    yield
    if SENT:
        print("\ncases per operation (phase/mode: count); response statuses:")
        for label in sorted({label for label, _ in SENT}):
            modes = ", ".join(f"{m}: {n}" for (op, m), n in sorted(SENT.items()) if op == label)
            total = sum(n for (op, _), n in SENT.items() if op == label)
            statuses = ", ".join(
                f"{code}: {n}" for (op, code), n in sorted(STATUSES.items()) if op == label
            )
            print(f"  {label}: {total} ({modes}); statuses {statuses}")


def _session(stack: RunningStack) -> requests.Session:
    """The target's credentials for the principal (a header offline, SigV4 deployed)."""
    session = requests.Session()
    session.auth = stack.auth(PRINCIPAL)
    return session


def _call_and_check(case: schemathesis.Case, stack: RunningStack, label: str) -> None:
    mode = case.meta.generation.mode.value if case.meta else "explicit"
    phase = case.meta.phase.name.value if case.meta else "explicit"
    SENT[(label, f"{phase}/{mode}")] += 1
    key = (case.headers or {}).get("idempotency-key")
    if isinstance(key, str) and 1 <= len(key) <= 255:
        # Generated keys repeat ("0", "00", ...): a reuse with another body is a 409 and would
        # keep most generated creates from the domain. A unique prefix keeps the key valid.
        case.headers["idempotency-key"] = f"{next(UNIQUE)}-{key}"[:255]
    response = case.call(base_url=stack.api_url, session=_session(stack), timeout=60)
    STATUSES[(label, response.status_code)] += 1
    case.validate_response(response, checks=CHECKS)


@schema.parametrize()
@settings(deadline=None, derandomize=True, print_blob=True)
def test_api_from_openapi(case: schemathesis.Case, stack: RunningStack) -> None:
    _call_and_check(case, stack, case.operation.label)


# Extensions of a real, completed video: the generated extend bodies reach the domain rules, not
# only validation and "not found".

EXTEND = schema["/v1/videos/{task_id}/extend"]["POST"]


@pytest.fixture(scope="session")
def completed_video(stack: RunningStack) -> str:
    created = stack.create(principal=PRINCIPAL, prompt="fuzz parent")
    assert created.status_code == 202, created.text
    task_id = created.json()["id"]
    deadline = time.monotonic() + 60
    while True:
        task = stack.get(task_id, principal=PRINCIPAL).json()
        if task["status"] in ("completed", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    assert task["status"] == "completed", task
    return str(task_id)


@given(
    case=st.one_of(
        EXTEND.as_strategy(GenerationMode.POSITIVE), EXTEND.as_strategy(GenerationMode.NEGATIVE)
    )
)
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_extend_a_completed_video(
    case: schemathesis.Case, stack: RunningStack, completed_video: str
) -> None:
    case.path_parameters["task_id"] = completed_video
    _call_and_check(case, stack, f"{EXTEND.label} (completed parent)")


# Hostile JSON on every route that parses a body: nesting far past any limit (Python's json
# recursed once per level: RecursionError, a 500) and numbers past every range (an integer of
# more than 4,300 digits made int() raise). Sent as raw bodies with the same HTTP client; the
# schema-driven cases above never reach these shapes.

HOSTILE_EXAMPLES = 25  # per route and strategy; each case is one request
DEPTH_LIMIT = 32  # veo_relay.json_input.MAX_DEPTH
TOO_DEEP = f"body: is nested too deeply (more than {DEPTH_LIMIT} levels)"
_LEVELS = {"[": "]", '{"a": ': "}", '[{"k": ': "}]", '{"prompt": [': "]}"}
CREATE_FIELDS = ["prompt", "seed", "mode", "watermark", "image_urls", "aspect_ratio", "webhook_url"]


@st.composite
def deeply_nested_bodies(draw: st.DrawFn) -> str:
    """A JSON text nested DEPTH_LIMIT+1 to 4,000 levels deep (at most ~56 KB: under the 64 KB
    limit), closed or not, alone or as the value of a body field."""
    opener = draw(st.sampled_from(sorted(_LEVELS)))
    depth = draw(st.integers(min_value=DEPTH_LIMIT + 1, max_value=4000))
    core = draw(st.sampled_from(["1", '"x"', "[]", "{}", "null", '"[[[{{{"']))
    closed = draw(st.booleans())
    deep = opener * depth + core + (_LEVELS[opener] * depth if closed else "")
    field = draw(st.sampled_from([None, *CREATE_FIELDS, "unknown"]))
    return deep if field is None else f'{{"prompt": "a cat", "{field}": {deep}}}'


@st.composite
def huge_numbers(draw: st.DrawFn) -> str:
    """A JSON number past every range: thousands of digits, an exponent past a double's, or an
    underflowing fraction."""
    sign = draw(st.sampled_from(["", "-"]))
    digits = str(draw(st.integers(min_value=1, max_value=10**18)))
    kind = draw(st.sampled_from(["integer", "exponent", "fraction"]))
    if kind == "integer":
        return sign + digits * draw(st.integers(min_value=2, max_value=1200))  # to ~21,600 digits
    exponent = draw(st.integers(min_value=309, max_value=10**6))
    if kind == "exponent":
        return f"{sign}{digits}{draw(st.sampled_from(['e', 'E', 'e+']))}{exponent}"
    return f"{sign}0.{digits}e-{exponent}"


@st.composite
def bodies_with_a_huge_number(draw: st.DrawFn) -> tuple[str, str]:
    """(body, the name its error message must start with)."""
    number = draw(huge_numbers())
    field = draw(st.sampled_from([None, *CREATE_FIELDS, "unknown"]))
    if field is None:
        return number, "body"
    if field == "image_urls" and draw(st.booleans()):
        return f'{{"prompt": "a cat", "image_urls": [{number}]}}', "image_urls"
    return f'{{"prompt": "a cat", "{field}": {number}}}', field


CLIENT_ROUTES = ["POST /v1/videos", "POST /v1/videos/{task_id}/extend (completed parent)"]
HOSTILE = settings(
    max_examples=HOSTILE_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _client_path(route: str, completed_video: str) -> str:
    return "/v1/videos" if route == CLIENT_ROUTES[0] else f"/v1/videos/{completed_video}/extend"


def _send_hostile(stack: RunningStack, path: str, body: str, label: str) -> requests.Response:
    SENT[(label, "hypothesis")] += 1
    headers = {"Content-Type": "application/json"}
    response = _session(stack).post(stack.api_url + path, data=body, headers=headers, timeout=60)
    STATUSES[(label, response.status_code)] += 1
    return response


@pytest.mark.parametrize("route", CLIENT_ROUTES)
@given(body=deeply_nested_bodies())
@HOSTILE
def test_a_deeply_nested_body_is_the_one_400(
    route: str, body: str, stack: RunningStack, completed_video: str
) -> None:
    path = _client_path(route, completed_video)
    response = _send_hostile(stack, path, body, f"{route}: deep nesting")
    assert response.status_code == 400, (response.status_code, response.text[:300])
    _assert_client_error(response)
    assert response.json()["error"]["message"] == TOO_DEEP


@pytest.mark.parametrize("route", CLIENT_ROUTES)
@given(case=bodies_with_a_huge_number())
@HOSTILE
def test_a_huge_number_is_a_4xx_naming_its_field(
    route: str, case: tuple[str, str], stack: RunningStack, completed_video: str
) -> None:
    body, field = case
    path = _client_path(route, completed_video)
    response = _send_hostile(stack, path, body, f"{route}: huge numbers")
    _assert_client_error(response)
    assert response.json()["error"]["message"].startswith(field), response.text


@pytest.fixture(scope="session")
def callback_paths(stack: RunningStack) -> dict[str, str]:
    """Each callback provider's route with a real, still running task's token: a body is parsed
    only behind a valid token."""
    paths = {}
    for provider in ("apixo", "kie"):
        created = stack.create(
            principal=PRINCIPAL,
            provider=provider,
            prompt="hostile [sim:no-callback] [sim:delay=300]",
        )
        assert created.status_code == 202, created.text
        simulated = stack.simulator_task(created.json()["provider_task_id"], provider)
        paths[provider] = "/v1/callbacks/" + simulated["callback_url"].split("/v1/callbacks/", 1)[1]
    return paths


def _send_callback(stack: RunningStack, path: str, body: str, label: str) -> requests.Response:
    """As a provider would post it: no caller identity."""
    SENT[(label, "hypothesis")] += 1
    headers = {"Content-Type": "application/json"}
    response = requests.post(stack.api_url + path, data=body, headers=headers, timeout=60)
    STATUSES[(label, response.status_code)] += 1
    return response


@pytest.mark.parametrize("provider", ["apixo", "kie"])
@given(body=deeply_nested_bodies())
@HOSTILE
def test_a_deeply_nested_callback_is_refused_not_a_5xx(
    provider: str, body: str, stack: RunningStack, callback_paths: dict[str, str]
) -> None:
    label = f"POST /v1/callbacks/{provider}: deep nesting"
    response = _send_callback(stack, callback_paths[provider], body, label)
    assert response.status_code == 401, (response.status_code, response.text[:300])
    _assert_client_error(response)


@pytest.mark.parametrize("provider", ["apixo", "kie"])
@given(case=bodies_with_a_huge_number())
@HOSTILE
def test_a_callback_with_a_huge_number_is_never_a_5xx(
    provider: str, case: tuple[str, str], stack: RunningStack, callback_paths: dict[str, str]
) -> None:
    label = f"POST /v1/callbacks/{provider}: huge numbers"
    response = _send_callback(stack, callback_paths[provider], case[0], label)
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code >= 400:
        _assert_client_error(response)


# Explicit requests: malformed bodies, wrong content types, odd paths and queries.


def _post(stack: RunningStack, path: str, data: bytes | str, content_type: str | None) -> Any:
    headers = {} if content_type is None else {"Content-Type": content_type}
    return stack.request("POST", path, PRINCIPAL, data=data, headers=headers)


def _assert_client_error(response: requests.Response) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert "json" in response.headers.get("Content-Type", ""), response.headers
    _assert_error_shape(response.json())


@pytest.mark.parametrize("path", ["/v1/videos", "/v1/videos/does-not-exist/extend"])
@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ('{"prompt": "a cat"', 400),  # truncated
        ("{'prompt': 'a cat'}", 400),  # not JSON
        ('{"prompt": "a cat"} trailing', 400),
        ("", 422),
        ("null", 422),
        ("[]", 422),
        ('"a cat"', 422),
        ("42", 422),
        ('{"prompt": ""}', 422),
        ('{"prompt": "a cat", "unknown": 1}', 422),
        ('{"prompt": "a cat", "seed": -1}', 422),
        ('{"prompt": "a cat", "seed": 4294967296}', 422),
        ('{"prompt": "a cat", "seed": 1.5}', 422),
        ('{"prompt": "a cat", "mode": "FAST"}', 422),
        ('{"prompt": "a cat", "watermark": 5}', 422),
        ('{"prompt": 5}', 422),
    ],
)
def test_malformed_json_is_a_client_error(
    stack: RunningStack, path: str, data: str, expected: int
) -> None:
    response = _post(stack, path, data, "application/json")
    assert response.status_code == expected, (response.status_code, response.text)
    _assert_client_error(response)


def test_form_encoded_body_is_a_client_error(stack: RunningStack) -> None:
    response = _post(stack, "/v1/videos", "prompt=a+cat", "application/x-www-form-urlencoded")
    _assert_client_error(response)


def test_json_without_content_type_is_json(stack: RunningStack) -> None:
    response = _post(stack, "/v1/videos", '{"prompt": "a cat"}', None)
    assert response.status_code == 202, response.text


@pytest.mark.parametrize(
    "target",
    [
        "/v1/videos/" + "a" * 3000,  # longer than a DynamoDB key may be
        "/v1/videos/%00",
        "/v1/videos/%F0%9F%8E%A5",
        "/v1/videos?limit=0",
        "/v1/videos?limit=101",
        "/v1/videos?limit=abc",
        "/v1/videos?limit=",  # empty: not the default
        "/v1/videos?limit=1.5",
        "/v1/videos?status=bogus",
        "/v1/videos?root_id=" + "r" * 65,
        "/v1/videos?cursor=%25%25%25",
        "/v1/videos?cursor=" + base64.urlsafe_b64encode(b"[1]").decode(),
        "/v1/videos?cursor=" + base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
)
def test_odd_paths_and_queries_are_client_errors(stack: RunningStack, target: str) -> None:
    response = stack.request("GET", target, PRINCIPAL)
    _assert_client_error(response)


def test_extend_with_an_overlong_id_is_not_found(stack: RunningStack) -> None:
    response = _post(stack, "/v1/videos/" + "a" * 3000 + "/extend", '{"prompt": "x"}', None)
    assert response.status_code == 404, response.text
    _assert_client_error(response)


def test_oversized_body_is_413(stack: RunningStack) -> None:
    response = _post(stack, "/v1/videos", json.dumps({"prompt": "a" * 70_000}), None)
    assert response.status_code == 413, (response.status_code, response.text)
    _assert_client_error(response)


# Cases fuzzing once found broken (BUG-A1..H at the time), pinned by explicit requests.


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS", "TRACE"])
def test_unsupported_methods_get_a_contract_error(stack: RunningStack, method: str) -> None:
    response = stack.request(method, "/v1/videos", PRINCIPAL)
    assert response.status_code < 500, (response.status_code, response.text)
    if method != "HEAD":
        _assert_client_error(response)


@pytest.mark.parametrize(("method", "path"), [("PUT", "/v1/videos"), ("DELETE", "/v1/videos/x")])
def test_unmatched_routes_get_a_contract_error(stack: RunningStack, method: str, path: str) -> None:
    response = stack.request(method, path, PRINCIPAL)
    _assert_client_error(response)


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/xml", "application/octet-stream"]
)
def test_unsupported_content_type_gets_a_contract_error(
    stack: RunningStack, content_type: str
) -> None:
    _assert_client_error(_post(stack, "/v1/videos", '{"prompt": "a cat"}', content_type))


def test_multipart_without_boundary_is_a_client_error(stack: RunningStack) -> None:
    _assert_client_error(_post(stack, "/v1/videos", '{"prompt": "a cat"}', "multipart/form-data"))


@pytest.mark.parametrize("seed", ["false", "true", '"5"'])
def test_non_integer_seed_is_rejected(stack: RunningStack, seed: str) -> None:
    response = _post(stack, "/v1/videos", f'{{"prompt": "a cat", "seed": {seed}}}', None)
    assert response.status_code == 422, (response.status_code, response.text)


def test_non_utf8_body_is_a_client_error(stack: RunningStack) -> None:
    _assert_client_error(_post(stack, "/v1/videos", b'{"prompt": "\xff"}', "application/json"))


@pytest.mark.parametrize(
    "key",
    [
        b'{"a": 1}',
        b'{"id": {"S": "x"}}',
        b"[" * 1000 + b"]" * 1000,
    ],
    ids=["unknown-key", "missing-keys", "deep"],
)
def test_forged_cursor_is_a_client_error(stack: RunningStack, key: bytes) -> None:
    created = stack.create(principal=PRINCIPAL, prompt="cursor owner")
    assert created.status_code == 202, created.text
    response = stack.list(principal=PRINCIPAL, cursor=base64.urlsafe_b64encode(key).decode())
    _assert_client_error(response)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda value: {**value, "N": "1"},
        lambda value: {"N": "1"},
        lambda value: {"S": [value["S"]]},
        lambda value: {"S": value["S"] * 400},
    ],
    ids=["two-types", "number", "list", "oversized"],
)
def test_a_real_cursor_with_a_tampered_value_is_a_client_error(stack: RunningStack, tamper) -> None:
    # Given a real next_cursor (DynamoDB answers a malformed ExclusiveStartKey with a 500)
    for prompt in ("cursor page 1", "cursor page 2"):
        assert stack.create(principal=PRINCIPAL, prompt=prompt).status_code == 202
    cursor = stack.list(principal=PRINCIPAL, limit=1).json()["next_cursor"]
    key = json.loads(base64.urlsafe_b64decode(cursor))

    # When one of its key values is tampered with and the cursor sent back
    key["id"] = tamper(key["id"])
    tampered = base64.urlsafe_b64encode(json.dumps(key).encode()).decode()
    response = stack.list(principal=PRINCIPAL, limit=1, cursor=tampered)

    # Then it is refused naming the cursor
    _assert_client_error(response)
    assert response.json()["error"]["message"].startswith("cursor:"), response.text


@pytest.mark.parametrize("kind", ["multipart", "application/jsonx"])
def test_non_json_bodies_are_rejected(stack: RunningStack, kind: str) -> None:
    if kind == "multipart":
        response = stack.request("POST", "/v1/videos", PRINCIPAL, files={"prompt": (None, "a cat")})
    else:
        response = _post(stack, "/v1/videos", '{"prompt": "a cat"}', kind)
    _assert_client_error(response)


def test_the_description_declares_the_contract_responses() -> None:
    document = json.loads((ROOT / "docs" / "openapi.json").read_text())
    schemas = document["components"]["schemas"]
    for path in ("/v1/videos", "/v1/videos/{task_id}/extend"):
        assert "202" in document["paths"][path]["post"]["responses"], path
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            errors = {code: r for code, r in operation["responses"].items() if code >= "400"}
            assert errors, (method, path)
            for code, declared in errors.items():
                ref = declared["content"]["application/json"]["schema"]["$ref"]
                assert "error" in schemas[ref.rsplit("/", 1)[1]]["properties"], (method, path, code)
