"""The provider simulator as one Lambda function behind a function URL (the template's
Simulate=true), serving each provider under its own prefix: {URL}/apixo, {URL}/kie, {URL}/apimart.

Nothing outlives an invocation in Lambda, so the tasks live in a DynamoDB table (a task's phase is
still computed from its creation time and delay on each read), and a callback is sent by an
asynchronous invocation of the same function, which waits until the task has finished.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Any
from urllib.parse import parse_qsl, unquote

from .callbacks import CallbackPlan
from .http_server import BALANCE_PATH, FILES_PREFIX, INTROSPECTION_PATH
from .mp4 import iter_mp4
from .simulator import PROTOCOLS, ProviderSimulator
from .tags import SimTags
from .tasks import (
    CallbackAttempt,
    Phase,
    SimTask,
    SubmitAttempt,
    TaskSnapshot,
    TaskStore,
    UpgradeRequest,
    VideoFile,
    snapshot,
)
from .web import SimRequest

log = logging.getLogger(__name__)

CALLBACK_EVENT = "simulator_callback"  # the key of the self-invocation that sends a callback
RECORD_TTL_SECONDS = 2 * 24 * 3600  # a rehearsal's tasks are of no use after it
# A function URL's buffered answer is at most 6 MB, and a video goes out base64 (4/3 larger).
MAX_VIDEO_BYTES = 4 * 1024 * 1024
KEYS_CACHE_SECONDS = 60


class DynamoTaskStore(TaskStore):
    """One provider's tasks and submissions in the simulator's table (key `pk`), read back as the
    in-memory store's objects."""

    def __init__(self, table: Any, provider: str) -> None:
        self._table = table  # a boto3 DynamoDB Table
        self._provider = provider

    def add(self, task: SimTask) -> None:
        record = asdict(task)
        for transient in ("created_monotonic", "status_reads", "callbacks", "upgrade_requests"):
            del record[transient]
        self._table.put_item(
            Item={
                **self._keys("task", task.task_id, task.created_at),
                "data": json.dumps(record),
                "status_reads": 0,
                "callbacks": [],
                "upgrade_requests": [],
            }
        )

    def get(self, task_id: str) -> SimTask | None:
        item = self._table.get_item(Key={"pk": self._pk("task", task_id)}, ConsistentRead=True)
        return _task(item["Item"]) if "Item" in item else None

    def file(self, name: str) -> tuple[VideoFile, SimTask] | None:
        # Files are named after their task ({id}.mp4, {id}-origin.mp4, 1080p/{id}.mp4, ...: see
        # TaskEngine._video).
        stem = name.removesuffix(".mp4").rpartition("/")[2]
        for task_id in (stem, stem.removesuffix("-origin")):
            task = self.get(task_id)
            if task is None:
                continue
            for video in (task.video, task.origin_video):
                if video is not None and video.name == name:
                    return video, task
        return None

    def count_unfinished(self) -> int:
        unfinished = (Phase.PENDING, Phase.PROCESSING)
        return sum(_task(item).phase() in unfinished for item in self._records("task"))

    def note_status_read(self, task: SimTask) -> int:
        updated = self._table.update_item(
            Key={"pk": self._pk("task", task.task_id)},
            UpdateExpression="ADD status_reads :one",
            ExpressionAttributeValues={":one": 1},
            ReturnValues="UPDATED_NEW",
        )
        task.status_reads = int(updated["Attributes"]["status_reads"])
        return task.status_reads

    def note_callback(self, task: SimTask, attempt: CallbackAttempt) -> None:
        self._table.update_item(
            Key={"pk": self._pk("task", task.task_id)},
            UpdateExpression="SET callbacks = list_append(callbacks, :attempt)",
            ExpressionAttributeValues={":attempt": [json.dumps(asdict(attempt))]},
        )
        task.callbacks.append(attempt)

    def note_upgrade_request(self, task: SimTask, request: UpgradeRequest) -> None:
        self._table.update_item(
            Key={"pk": self._pk("task", task.task_id)},
            UpdateExpression="SET upgrade_requests = list_append(upgrade_requests, :request)",
            ExpressionAttributeValues={":request": [json.dumps(asdict(request))]},
        )
        task.upgrade_requests.append(request)

    def note_submission(self, submission: SubmitAttempt) -> None:
        self._table.put_item(
            Item={
                **self._keys("submission", uuid.uuid4().hex, submission.received_at),
                "data": json.dumps(asdict(submission)),
            }
        )

    def balance(self, default: float) -> float:
        item = self._table.get_item(Key={"pk": self._pk("balance", "current")}, ConsistentRead=True)
        return float(item["Item"]["amount"]) if "Item" in item else default

    def set_balance(self, amount: float) -> None:
        # A string: DynamoDB's numbers are Decimals, which a float does not convert to exactly.
        self._table.put_item(
            Item={**self._keys("balance", "current", time.time()), "amount": repr(amount)}
        )

    def submissions(self) -> list[SubmitAttempt]:
        found = [SubmitAttempt(**json.loads(i["data"])) for i in self._records("submission")]
        return sorted(found, key=lambda submission: submission.received_at)

    def snapshots(self) -> list[TaskSnapshot]:
        submit_counts: dict[str, int] = {}
        for submission in self.submissions():
            submit_counts[submission.fingerprint] = submit_counts.get(submission.fingerprint, 0) + 1
        tasks = sorted(
            (_task(item) for item in self._records("task")), key=lambda task: task.created_at
        )
        return [snapshot(task, submit_counts.get(task.fingerprint, 1)) for task in tasks]

    def _pk(self, record: str, identifier: str) -> str:
        return f"{self._provider}#{record}#{identifier}"

    def _keys(self, record: str, identifier: str, created_at: float) -> dict[str, Any]:
        return {
            "pk": self._pk(record, identifier),
            "provider": self._provider,
            "record": record,
            "expires_at": int(created_at) + RECORD_TTL_SECONDS,
        }

    def _records(self, record: str) -> list[dict[str, Any]]:
        """Every record of one kind for this provider (a scan: a rehearsal's table is small)."""
        items: list[dict[str, Any]] = []
        scan: dict[str, Any] = {
            "FilterExpression": "provider = :provider AND #record = :record",
            "ExpressionAttributeNames": {"#record": "record"},
            "ExpressionAttributeValues": {":provider": self._provider, ":record": record},
            "ConsistentRead": True,
        }
        while True:
            page = self._table.scan(**scan)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                return items
            scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _task(item: Mapping[str, Any]) -> SimTask:
    data = json.loads(item["data"])
    origin = data.pop("origin_video")
    return SimTask(
        **{
            **data,
            "tags": SimTags(**data["tags"]),
            "video": VideoFile(**data["video"]),
            "origin_video": VideoFile(**origin) if origin else None,
            # The phase is read on this process's monotonic clock: place the creation on it.
            "created_monotonic": time.monotonic() - (time.time() - data["created_at"]),
            "status_reads": int(item.get("status_reads", 0)),
            "callbacks": [CallbackAttempt(**json.loads(c)) for c in item.get("callbacks", [])],
            "upgrade_requests": [
                UpgradeRequest(**json.loads(r)) for r in item.get("upgrade_requests", [])
            ],
        }
    )


class ProviderKeys:
    """Each provider's key as the stack's ProviderKeysSecret holds it: the simulator accepts the
    key the relay sends, whatever it is (none at all when the secret's value is empty)."""

    def __init__(self, secrets: Any, secret_id: str) -> None:
        self._secrets = secrets
        self._secret_id = secret_id
        self._keys: dict[str, str] = {}
        self._read_at = float("-inf")

    def __call__(self, provider: str) -> str:
        if time.monotonic() - self._read_at > KEYS_CACHE_SECONDS:
            value = self._secrets.get_secret_value(SecretId=self._secret_id)["SecretString"]
            self._keys = {k: v for k, v in json.loads(value).items() if isinstance(v, str)}
            self._read_at = time.monotonic()
        return self._keys.get(provider, "")


class FunctionUrlSimulators:
    """Function URL events (payload 2.0) to the providers' simulators, and the self-invocations
    that send their callbacks."""

    def __init__(
        self, table: Any, api_keys: Callable[[str], str], invoke_async: Callable[[str], None]
    ) -> None:
        self._table = table
        self._api_keys = api_keys
        self._invoke_async = invoke_async  # queues an event (JSON) for this same function
        self._simulators: dict[tuple[str, str], ProviderSimulator] = {}

    def handle(self, event: Mapping[str, Any]) -> dict[str, Any]:
        if CALLBACK_EVENT in event:
            self._send_callback(event[CALLBACK_EVENT])
            return {}
        return self._serve(event)

    def _simulator(self, provider: str, origin: str) -> ProviderSimulator:
        """`origin` is where result URLs point (empty when only sending a callback)."""
        if (provider, origin) not in self._simulators:
            self._simulators[(provider, origin)] = ProviderSimulator.for_provider(
                provider,
                api_key=lambda: self._api_keys(provider),
                public_base_url=f"{origin}/{provider}",
                store=DynamoTaskStore(self._table, provider),
                schedule_callback=lambda task, plan: self._schedule(provider, task, plan),
            )
        return self._simulators[(provider, origin)]

    def _serve(self, event: Mapping[str, Any]) -> dict[str, Any]:
        # The URL is this function's own, known from the request (the template cannot pass it
        # in: the function would depend on its own URL).
        headers = {k.lower(): v for k, v in event.get("headers", {}).items()}
        host = headers.get("host") or event["requestContext"]["domainName"]
        origin = f"{headers.get('x-forwarded-proto', 'https')}://{host}"
        method = event["requestContext"]["http"]["method"]
        provider, _, rest = event.get("rawPath", "/").lstrip("/").partition("/")
        if provider not in PROTOCOLS:
            return _json(404, {"error": f"no simulated provider {provider!r}: {list(PROTOCOLS)}"})
        simulator, path = self._simulator(provider, origin), f"/{rest}"
        if method in ("GET", "HEAD") and path.startswith(FILES_PREFIX):
            return _video(simulator.find_video(unquote(path.removeprefix(FILES_PREFIX))), method)
        if method == "GET" and path == INTROSPECTION_PATH:
            return _json(200, simulator.introspect())
        body = event.get("body") or ""
        raw_body = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
        if method == "POST" and path == BALANCE_PATH:
            return _json(*simulator.control_balance(raw_body))
        response = simulator.handle(
            SimRequest(
                method=method,
                path=path,
                query=dict(parse_qsl(event.get("rawQueryString", ""))),
                headers=headers,
                body=raw_body,
            )
        )
        return _json(response.status, response.body)

    def _schedule(self, provider: str, task: SimTask, plan: CallbackPlan) -> None:
        message = {
            "provider": provider,
            "task_id": task.task_id,
            "due_at": task.finishes_at,
            "url": plan.url,
            # The plan's body builder is a protocol method; the later invocation finds it by name.
            "builder": plan.build_body.__name__,
            "max_attempts": plan.max_attempts,
        }
        self._invoke_async(json.dumps({CALLBACK_EVENT: message}))

    def _send_callback(self, message: Mapping[str, Any]) -> None:
        time.sleep(max(0.0, float(message["due_at"]) - time.time()))
        self._simulator(message["provider"], "").deliver_callback(
            message["task_id"], message["url"], message["builder"], int(message["max_attempts"])
        )


def _json(status: int, body: Any) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body),
    }


def _video(video: VideoFile | None, method: str) -> dict[str, Any]:
    if video is None:
        return _json(404, {"error": "file not found"})
    if video.size > MAX_VIDEO_BYTES:
        return _json(413, {"error": f"a deployed simulator serves at most {MAX_VIDEO_BYTES} bytes"})
    headers = {"Content-Type": "video/mp4", "Content-Length": str(video.size)}
    if method == "HEAD":
        return {"statusCode": 200, "headers": headers, "body": ""}
    content = b"".join(iter_mp4(video.size, video.seed, resolution=video.resolution))
    return {
        "statusCode": 200,
        "headers": headers,
        "body": base64.b64encode(content).decode(),
        "isBase64Encoded": True,
    }
