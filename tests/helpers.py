"""Shared test helpers: the sample events in events/ and small builders on top of them."""

from __future__ import annotations

import contextlib
import copy
import ipaddress
import json
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"

ALICE = "arn:aws:iam::123456789012:user/alice"
BOB = "arn:aws:iam::123456789012:user/bob"

T = TypeVar("T")


def load_event(name: str, **overrides: Any) -> dict[str, Any]:
    """events/<name>(.json), with `overrides` merged in: a mapping is merged key by key into the
    mapping it replaces, anything else replaces the value. A `body` given as a dict or list is
    serialized to JSON, as API Gateway and SQS deliver it."""
    file_name = name if name.endswith(".json") else f"{name}.json"
    event = json.loads((EVENTS / file_name).read_text())
    if isinstance(overrides.get("body"), dict | list):
        overrides["body"] = json.dumps(overrides["body"])
    return _merge(event, overrides)


def _merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def api_event(
    name: str,
    *,
    path: str | None = None,
    principal: str | None = ALICE,
    body: Any = None,
    raw_body: str | None = None,
    query: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """An HTTP API (payload 2.0) sample event for `path`, called by `principal` (None: no IAM
    authorizer context at all)."""
    overrides: dict[str, Any] = {}
    if path is not None:
        overrides["rawPath"] = path
        overrides["requestContext"] = {"http": {"path": path}}
        if path.startswith("/v1/videos/"):
            overrides["pathParameters"] = {"id": path.removeprefix("/v1/videos/")}
    if body is not None:
        overrides["body"] = body
    if raw_body is not None:
        overrides["body"] = raw_body
    if query is not None:
        overrides["rawQueryString"] = urlencode(dict(query))
        overrides["queryStringParameters"] = dict(query) or None
    if headers:
        overrides["headers"] = dict(headers)
    event = load_event(name, **overrides)
    if query is not None:
        event["queryStringParameters"] = dict(query) or None  # replace, do not merge
    if principal is None:
        event["requestContext"].pop("authorizer", None)
    else:
        event["requestContext"]["authorizer"]["iam"]["userArn"] = principal
    return event


def callback_event(token: str, body: Any, provider: str = "apixo") -> dict[str, Any]:
    """The provider's POST to /v1/callbacks/{provider}/{token}, as API Gateway hands it over."""
    path = f"/v1/callbacks/{provider}/{token}"
    return load_event(
        "callback_apixo",
        rawPath=path,
        pathParameters={"provider": provider, "token": token},
        requestContext={"http": {"path": path}},
        body=body,
    )


def copy_request_event(*task_ids: str, leases: Mapping[str, str] | None = None) -> dict[str, Any]:
    """An SQS event with one copy request per task id: the poller's, or with a task's lease in
    `leases`, the one its callback queued."""
    template = load_event("copy_request")["Records"][0]
    records = []
    for index, task_id in enumerate(task_ids):
        lease = (leases or {}).get(task_id)
        body = {"task_id": task_id, "reason": "callback" if lease else "poller"}
        if lease:
            body["lease"] = lease
        record = _merge(
            template,
            {
                "messageId": f"{template['messageId'][:-4]}{index:04d}",
                "body": json.dumps(body),
            },
        )
        records.append(record)
    return {"Records": records}


def apixo_status_body(
    task_id: str,
    state: str,
    *,
    video_url: str | None = None,
    fail_code: str | None = None,
    fail_msg: str | None = None,
) -> dict[str, Any]:
    """apixo's status response (and callback body) as reference/providers.md §1.5 documents it."""
    data: dict[str, Any] = {"taskId": task_id, "state": state, "createTime": 1795255200000}
    if state == "success":
        data["resultJson"] = json.dumps({"resultUrls": [video_url or "https://cdn.apixo.ai/a.mp4"]})
        data["costTime"] = 12500
        data["completeTime"] = 1795255212500
    elif state == "failed":
        data["failCode"] = fail_code or "GENERATION_FAILED"
        data["failMsg"] = fail_msg or "Generation failed"
        data["completeTime"] = 1795255205000
    return {"code": 200, "message": "success", "data": data}


def response_json(response: Mapping[str, Any]) -> Any:
    return json.loads(response["body"]) if response.get("body") else None


def header(response: Mapping[str, Any], name: str) -> str | None:
    """A response header, case-insensitively, from `headers` or `multiValueHeaders`."""
    for key, value in (response.get("headers") or {}).items():
        if key.lower() == name.lower():
            return value
    for key, values in (response.get("multiValueHeaders") or {}).items():
        if key.lower() == name.lower():
            return ",".join(values)
    return None


def wait_until(
    probe: Callable[[], T],
    timeout: float = 10.0,
    interval: float = 0.05,
    what: str | Callable[[], str] = "condition",
) -> T:
    """Calls `probe` until it returns something truthy, and returns that. `what` names the
    condition in the timeout's message (a callable: as things stand then)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            described = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout}s waiting for {described}")
        time.sleep(interval)


def forbid_sockets(monkeypatch: Any) -> None:
    """Unit tests stay off the network: opening a socket fails the test."""
    import socket

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("unit tests must not open sockets")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def post_json(url: str, body: Any, timeout: float = 10.0) -> tuple[int, Any]:
    """POSTs `body` as JSON to `url` (a loopback server in tests); returns (status, parsed body),
    an HTTP error status included rather than raised."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    return status, json.loads(raw) if raw else None


@dataclass
class FakeDns:
    """`socket.getaddrinfo` answering from a table (install it with monkeypatch); an address
    literal resolves to itself, as the real one does. Records the names asked for."""

    table: dict[str, list[str]] = field(default_factory=dict)
    queries: list[str] = field(default_factory=list)

    def getaddrinfo(self, host: str, port: int, *args: object, **kwargs: object) -> list:
        self.queries.append(host)
        with contextlib.suppress(ValueError):
            ipaddress.ip_address(host)
            self.table.setdefault(host, [host])
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        infos = []
        for address in self.table[host]:
            if ":" in address:
                infos.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0)))
            else:
                infos.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)))
        return infos


def _function_wiring() -> dict[str, Any]:
    from veo_relay import settings, wiring

    return {
        "ApiFunction": (wiring.api, settings.ApiSettings),
        "CallbackFunction": (wiring.callback, settings.CallbackSettings),
        "SubmitWorkerFunction": (wiring.submit_worker, settings.SubmitWorkerSettings),
        "CopyWorkerFunction": (wiring.copy_worker, settings.CopyWorkerSettings),
        "PollerFunction": (wiring.poller, settings.PollerSettings),
        "VideoConsumerFunction": (wiring.video_consumer, settings.VideoConsumerSettings),
        "FailureAnnouncerFunction": (wiring.failure_announcer, settings.FailureAnnouncerSettings),
        "SpendSettlerFunction": (wiring.spend_settler, settings.SpendSettlerSettings),
        "WebhookSenderFunction": (wiring.webhook_sender, settings.WebhookSenderSettings),
        "BalanceReaderFunction": (wiring.balance_reader, settings.BalanceReaderSettings),
    }


# Each function of template.yaml (by logical id) with its wiring and settings model; the provider
# simulator, deployed only with Simulate=true, reads its own two variables.
FUNCTION_WIRING = {name: built for name, (built, _) in _function_wiring().items()}
FUNCTION_SETTINGS = {name: model for name, (_, model) in _function_wiring().items()}
