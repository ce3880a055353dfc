"""The provider simulator as a Lambda function (Simulate=true): function URL events in, the
providers' protocols out, tasks kept in DynamoDB (moto here) between invocations, callbacks sent
by a later invocation of the function. No network: callbacks are caught at `requests.post`."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import sys
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest
from moto import mock_aws

from offline.simulator import mp4_bytes_sha256
from offline.simulator.deployed import CALLBACK_EVENT, FunctionUrlSimulators, ProviderKeys
from offline.template import ROOT
from tests.helpers import load_event

DOMAIN = "abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.on.aws"
KEYS = {"apixo": "key-a", "kie": "key-k", "apimart": "key-m"}
CALLBACK_URL = "https://api.example.com/v1/callbacks/apixo/token"


class Callbacks:
    """What the simulator POSTed as callbacks, each answered 200."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def post(self, url: str, json: dict[str, Any], timeout: float) -> Any:
        self.sent.append((url, json))
        return type("Answer", (), {"status_code": 200})()


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        dynamodb = boto3.resource("dynamodb", region_name="us-east-1")
        yield dynamodb.create_table(
            TableName="ProviderSimulatorTable",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )


@pytest.fixture
def callbacks(monkeypatch: pytest.MonkeyPatch) -> Callbacks:
    caught = Callbacks()
    monkeypatch.setattr("offline.simulator.callbacks.requests.post", caught.post)
    return caught


@pytest.fixture
def invocations() -> list[dict[str, Any]]:
    return []


def _fresh(table: Any, invocations: list[dict[str, Any]]) -> FunctionUrlSimulators:
    """A new Lambda instance: nothing shared with the others but the table."""
    return FunctionUrlSimulators(
        table=table,
        api_keys=KEYS.__getitem__,
        invoke_async=lambda payload: invocations.append(json.loads(payload)),
    )


def _event(
    method: str,
    path: str,
    *,
    body: Any = None,
    query: dict[str, str] | None = None,
    key: str | None = "key-a",
) -> dict[str, Any]:
    """A function URL request (payload 2.0), shaped like events/provider_simulator_status.json."""
    event = load_event("provider_simulator_status")
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["rawQueryString"] = urlencode(query or {})
    event["headers"] = {"host": DOMAIN} | ({"authorization": f"Bearer {key}"} if key else {})
    if body is not None:
        event["body"] = base64.b64encode(json.dumps(body).encode()).decode()
        event["isBase64Encoded"] = True
    return event


def _apixo_create(prompt: str, callback: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {"input": {"prompt": prompt, "mode": "fast"}}
    if callback:
        body |= {"request_type": "callback", "callback_url": CALLBACK_URL}
    return _event("POST", "/apixo/api/v1/generateTask/veo-3-1", body=body)


def _status(simulators: FunctionUrlSimulators, task_id: str) -> dict[str, Any]:
    event = _event("GET", "/apixo/api/v1/statusTask/veo-3-1", query={"taskId": task_id})
    response = simulators.handle(event)
    assert response["statusCode"] == 200, response
    return json.loads(response["body"])["data"]  # type: ignore[no-any-return]


def test_a_task_created_on_one_instance_finishes_on_another(table: Any, invocations: list) -> None:
    # Given an apixo task created through one instance, finishing after half a second
    created = _fresh(table, invocations).handle(_apixo_create("a fox [sim:delay=0.5]"))
    assert created["statusCode"] == 200, created
    task_id = json.loads(created["body"])["data"]["taskId"]

    # When another instance reads its status, before and after its delay
    other = _fresh(table, invocations)
    early = _status(other, task_id)
    time.sleep(0.6)
    late = _status(other, task_id)

    # Then the phase follows the clock from its creation, and the result is on the function URL
    assert early["state"] in ("pending", "processing")
    assert late["state"] == "success"
    (url,) = json.loads(late["resultJson"])["resultUrls"]
    assert url == f"https://{DOMAIN}/apixo/files/{task_id}.mp4"


def test_the_video_is_served_base64_with_the_simulators_bytes(
    table: Any, invocations: list
) -> None:
    # Given a finished 4096-byte video
    simulators = _fresh(table, invocations)
    created = simulators.handle(_apixo_create("a fox [sim:delay=0] [sim:size=4096]"))
    task_id = json.loads(created["body"])["data"]["taskId"]

    # When it is downloaded through the function URL
    response = simulators.handle(_event("GET", f"/apixo/files/{task_id}.mp4", key=None))

    # Then the body is the simulator's MP4, base64-encoded as a function URL answer must be
    assert response["statusCode"] == 200
    assert response["isBase64Encoded"] is True
    assert response["headers"]["Content-Type"] == "video/mp4"
    content = base64.b64decode(response["body"])
    assert len(content) == 4096
    assert hashlib.sha256(content).hexdigest() == mp4_bytes_sha256(4096, task_id)


def test_the_callback_is_sent_by_a_later_invocation_after_the_task_finishes(
    table: Any, invocations: list, callbacks: Callbacks
) -> None:
    # Given a task created in callback mode
    created = _fresh(table, invocations).handle(_apixo_create("a fox [sim:delay=0.2]"))
    task_id = json.loads(created["body"])["data"]["taskId"]

    # Then nothing is sent during the request; one asynchronous invocation is queued instead
    assert callbacks.sent == []
    (invocation,) = invocations
    assert invocation[CALLBACK_EVENT]["task_id"] == task_id

    # When that invocation runs (on a fresh instance)
    assert _fresh(table, []).handle(invocation) == {}

    # Then it waited for the end and sent apixo's callback body, recorded for introspection
    ((url, body),) = callbacks.sent
    assert url == CALLBACK_URL
    assert body["data"]["taskId"] == task_id and body["data"]["state"] == "success"
    state = _fresh(table, []).handle(_event("GET", "/apixo/_sim/tasks", key=None))
    (task,) = json.loads(state["body"])["tasks"]
    assert [c["status_code"] for c in task["callbacks"]] == [200]


def test_tags_still_apply(table: Any, invocations: list, callbacks: Callbacks) -> None:
    # Given a task that must never call back and one that calls back three times
    simulators = _fresh(table, invocations)
    simulators.handle(_apixo_create("quiet [sim:no-callback] [sim:delay=0]"))
    simulators.handle(_apixo_create("loud [sim:duplicate-callback] [sim:delay=0]"))

    # When the scheduled invocations run
    for invocation in invocations:
        _fresh(table, []).handle(invocation)

    # Then only the second task was called back, three times
    assert len(invocations) == 1
    assert len(callbacks.sent) == 3


def test_introspection_lists_submissions_and_status_reads(table: Any, invocations: list) -> None:
    # Given a create refused for its key, and an accepted one read twice
    simulators = _fresh(table, invocations)
    refused = _apixo_create("a fox")
    refused["headers"]["authorization"] = "Bearer wrong"
    assert simulators.handle(refused)["statusCode"] == 401
    created = simulators.handle(_apixo_create("a fox [sim:delay=0]", callback=False))
    task_id = json.loads(created["body"])["data"]["taskId"]
    _status(simulators, task_id)
    _status(simulators, task_id)

    # When a test asks the simulator what it saw
    state = json.loads(simulators.handle(_event("GET", "/apixo/_sim/tasks"))["body"])

    # Then both submits and the reads are there, as the offline simulator reports them
    assert [s["http_status"] for s in state["submissions"]] == [401, 200]
    (task,) = state["tasks"]
    assert task["task_id"] == task_id and task["status_reads"] == 2 and task["callbacks"] == []


def test_kie_and_apimart_are_served_under_their_own_prefix(table: Any, invocations: list) -> None:
    simulators = _fresh(table, invocations)
    kie = simulators.handle(
        _event("POST", "/kie/api/v1/veo/generate", body={"prompt": "a fox"}, key="key-k")
    )
    apimart = simulators.handle(
        _event("POST", "/apimart/v1/videos/generations", body={"prompt": "a fox"}, key="key-m")
    )
    unknown = simulators.handle(_event("GET", "/openai/v1/videos"))

    assert json.loads(kie["body"])["code"] == 200, kie
    assert apimart["statusCode"] == 200, apimart
    assert unknown["statusCode"] == 404
    state = json.loads(simulators.handle(_event("GET", "/kie/_sim/tasks"))["body"])
    assert state["provider"] == "kie" and len(state["tasks"]) == 1


def test_the_keys_are_read_from_the_provider_keys_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the stack's secret with a key for apixo and none for kie
    with mock_aws():
        secrets = boto3.client("secretsmanager", region_name="us-east-1")
        arn = secrets.create_secret(
            Name="ProviderKeysSecret", SecretString='{"apixo": "real-ish", "kie": ""}'
        )["ARN"]

        keys = ProviderKeys(secrets, arn)

        # Then the simulator expects exactly those (an empty one: no Authorization header)
        assert (keys("apixo"), keys("kie"), keys("apimart")) == ("real-ish", "", "")


def test_the_handler_wires_the_function_from_its_environment(
    table: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the function's environment as the template sets it, and Lambda's own variables
    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    arn = secrets.create_secret(Name="keys", SecretString=json.dumps(KEYS))["ARN"]
    monkeypatch.setenv("SIMULATOR_TABLE", table.name)
    monkeypatch.setenv("PROVIDER_KEYS_SECRET_ARN", arn)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "stack-provider-simulator")
    spec = importlib.util.spec_from_file_location(
        "provider_simulator_app", ROOT / "functions" / "provider_simulator" / "app.py"
    )
    assert spec and spec.loader
    app = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "provider_simulator_app", app)
    spec.loader.exec_module(app)

    # When the sample event (a status read of an unknown task) reaches the handler
    event = load_event("provider_simulator_status")
    event["headers"]["authorization"] = "Bearer key-a"
    response = app.lambda_handler(event, None)

    # Then it answers in apixo's protocol
    assert response["statusCode"] == 404
    assert json.loads(response["body"])["message"] == "Task not found"


def test_kies_second_render_is_served_beside_the_first(table: Any, invocations: list) -> None:
    # Given a finished kie task in 9:16, which kie also renders in 16:9 (its originUrls)
    simulators = _fresh(table, invocations)
    body = {"prompt": "a fox [sim:delay=0] [sim:size=1024]", "aspect_ratio": "9:16"}
    created = simulators.handle(_event("POST", "/kie/api/v1/veo/generate", body=body, key="key-k"))
    task_id = json.loads(created["body"])["data"]["taskId"]

    # When both files are asked for, and one that does not exist
    main = simulators.handle(_event("GET", f"/kie/files/{task_id}.mp4", key=None))
    origin = simulators.handle(_event("GET", f"/kie/files/{task_id}-origin.mp4", key=None))
    missing = simulators.handle(_event("GET", "/kie/files/nothing-origin.mp4", key=None))

    # Then both renders are served, and the unknown one is a 404
    assert (main["statusCode"], origin["statusCode"], missing["statusCode"]) == (200, 200, 404)
    assert main["body"] != origin["body"]


def _kie(simulators: FunctionUrlSimulators, method: str, path: str, **request: Any) -> Any:
    answer = simulators.handle(_event(method, f"/kie/api/v1/veo/{path}", key="key-k", **request))
    return json.loads(answer["body"])


def test_kies_upgrades_live_in_the_table_across_instances(
    table: Any, invocations: list, callbacks: Callbacks
) -> None:
    # Given a finished kie task
    body = {"prompt": "a fox [sim:delay=0] [sim:size=1024]"}
    task_id = _kie(_fresh(table, invocations), "POST", "generate", body=body)["data"]["taskId"]

    # When its 1080p and its 4K are asked for, each request on a fresh instance
    hd = _kie(_fresh(table, invocations), "GET", "get-1080p-video", query={"taskId": task_id})
    uhd_body = {"taskId": task_id, "callBackUrl": CALLBACK_URL}
    first_4k = _kie(_fresh(table, invocations), "POST", "get-4k-video", body=uhd_body)
    again_4k = _kie(_fresh(table, invocations), "POST", "get-4k-video", body=uhd_body)
    (invocation,) = invocations
    _fresh(table, []).handle(invocation)

    # Then the upgrades are served from the table, one 4K task called back by name
    uhd_id = first_4k["data"]["taskId"]
    assert hd["data"]["resultUrl"] == f"https://{DOMAIN}/kie/files/1080p/{task_id}-1080p.mp4"
    assert (first_4k["code"], again_4k["code"], again_4k["data"]["taskId"]) == (200, 422, uhd_id)
    ((url, callback),) = callbacks.sent
    assert url == CALLBACK_URL and callback["data"]["taskId"] == uhd_id
    file = _fresh(table, []).handle(_event("GET", f"/kie/files/4k/{uhd_id}.mp4", key=None))
    assert file["statusCode"] == 200
    state = json.loads(_fresh(table, []).handle(_event("GET", "/kie/_sim/tasks"))["body"])
    (original,) = [task for task in state["tasks"] if task["task_id"] == task_id]
    assert [r["resolution"] for r in original["upgrade_requests"]] == ["1080p", "4k", "4k"]


def test_a_balance_set_on_one_instance_is_answered_by_another(
    table: Any, invocations: list
) -> None:
    # Given kie's balance set low through the control on one instance
    control = _fresh(table, invocations).handle(
        _event("POST", "/kie/_sim/balance", body={"balance": 7})
    )
    assert control["statusCode"] == 200, control

    # When another instance answers kie's credit route
    credit = _event("GET", "/kie/api/v1/chat/credit", key="key-k")
    answer = json.loads(_fresh(table, invocations).handle(credit)["body"])

    # Then it answers the balance set, kept in the table
    assert answer == {"code": 200, "msg": "success", "data": 7.0}
