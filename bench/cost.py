"""What veo-relay itself costs in AWS per 1,000 completed videos, beside what the provider charges
for them.

Completed videos go through the `make run` stack (offline.stack.LocalStack, in this process), one
at a time, and everything AWS would bill for each is measured as it happens:

- Lambda: every invocation of every function (its time rounded up to the millisecond, times the
  function's MemorySize from template.yaml), and an HTTP API request for each one the API routes;
- every AWS call a function or the state machine makes (not the bench's own): DynamoDB request
  units from the stored items' sizes before and after (each global secondary index's share
  included), S3 requests by price class (and the EventBridge event each object change sends),
  SQS receives that returned a message and their deletes (Lambda's pollers make them), PutEvents
  entries, Secrets Manager reads;
- every message sent to a queue, counted where the queue takes it in (EventBridge's deliveries too);
- the Step Functions transitions in the fallback poller execution's history;
- what the functions write to stdout (CloudWatch Logs ingests it) and the stored objects' bytes
  (a month of S3 Standard).

The first video is a warm-up, not counted: it pays every function's cold start (see the notes).
"""

from __future__ import annotations

import io
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3

from bench import aws_cost
from bench.asl import transitions
from bench.procs import free_port
from bench.report import NO_TARGET, Row, SectionResult, verdict
from offline.stack import LocalStack, Ports
from veo_relay.providers.registry import PROVIDER_NAMES

# An 8 s 720p Veo clip with its audio is a few MB (H.264 at ~4-5 Mbit/s); 5 MiB stays under the
# copy's 8 MiB multipart threshold, as such a clip does: one PutObject. (The simulator's default,
# 256 KiB, is no video's size.)
VIDEO_BYTES = 5 * 1024 * 1024
PROVIDER, MODE = "kie", "fast"
TARGET = 0.01  # of the provider's price
HEADERS = {"X-Local-Principal": "bench-cost"}
# What Lambda itself writes for each invocation (START, END, REPORT and, with active tracing, the
# XRAY line); this stack prints none of it, so these are samples of their form, not measured.
PLATFORM_LINES = (
    "START RequestId: 8f507cfc-3f4b-4697-b07a-ac58fc914c95 Version: $LATEST",
    "END RequestId: 8f507cfc-3f4b-4697-b07a-ac58fc914c95",
    "REPORT RequestId: 8f507cfc-3f4b-4697-b07a-ac58fc914c95\tDuration: 102.25 ms\t"
    "Billed Duration: 103 ms\tMemory Size: 512 MB\tMax Memory Used: 98 MB\t",
    "XRAY TraceId: 1-5e1b4151-43a974f3a1ad9bba7a5d0c5a\tSegmentId: 6d8d1f2b3c4e5f6a\tSampled: true",
)
LOG_EVENT_OVERHEAD = 26  # bytes CloudWatch Logs counts for each event beside its message

_S3_PUT_CLASS = {
    "PutObject",
    "CreateMultipartUpload",
    "UploadPart",
    "CompleteMultipartUpload",
    "CopyObject",
    "PutObjectTagging",
    "ListObjects",
    "ListObjectsV2",
    "ListParts",
    "ListMultipartUploads",
}
_S3_GET_CLASS = {"GetObject", "HeadObject", "GetObjectTagging", "HeadBucket"}
_S3_FREE = {"DeleteObject", "AbortMultipartUpload"}
# Changes S3 announces to EventBridge (the bucket has EventBridgeEnabled).
_S3_EVENTS = {
    "PutObject",
    "CompleteMultipartUpload",
    "CopyObject",
    "PutObjectTagging",
    "DeleteObject",
}
_DYNAMODB_WRITES = {"PutItem", "UpdateItem", "DeleteItem"}
# Calls that cost nothing of their own: the Lambda invocation the state machine asks for is
# counted as an invocation; Step Functions bills transitions, not its API.
_FREE = {("lambda", "Invoke")} | {
    ("stepfunctions", op)
    for op in (
        "StartExecution",
        "SendTaskSuccess",
        "SendTaskFailure",
        "SendTaskHeartbeat",
        "DescribeExecution",
        "StopExecution",
    )
}


@dataclass(frozen=True)
class Case:
    name: str
    tags: str
    has_target: bool


CASES = (
    Case("the provider calls back", "", True),
    Case("no callback: the fallback poller finishes", " [sim:no-callback]", False),
)


@dataclass
class Measured:
    usage: Counter[str] = field(default_factory=Counter)
    calls: Counter[str] = field(default_factory=Counter)  # "service Operation" -> calls
    invocations: Counter[str] = field(default_factory=Counter)  # function -> invocations
    billed_ms: Counter[str] = field(default_factory=Counter)  # function -> billed ms
    log_bytes: int = 0

    def add(self, other: Measured) -> None:
        self.usage.update(other.usage)
        self.calls.update(other.calls)
        self.invocations.update(other.invocations)
        self.billed_ms.update(other.billed_ms)
        self.log_bytes += other.log_bytes


class Metering:
    """What the stack's functions and state machine use, since the last `take()`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._now = Measured()
        self.memory_mb: dict[str, int] = {}
        self.http_functions: set[str] = set()
        self.gsi_keys: dict[str, list[tuple[str, ...]]] = {}  # table -> each index's key

    def take(self) -> Measured:
        with self._lock:
            taken, self._now = self._now, Measured()
        return taken

    def invocations(self, function: str) -> int:
        with self._lock:
            return self._now.invocations[function]

    def configure(self, stack: LocalStack) -> None:
        """Each function's memory, which ones the HTTP API routes to, each table's indexes."""
        template = stack.template
        globals_ = template.body["Globals"]["Function"]
        for name, spec in template.of_type("AWS::Serverless::Function").items():
            self.memory_mb[name] = int(
                spec["Properties"].get("MemorySize", globals_.get("MemorySize", 128))
            )
        self.http_functions = {route.function for route in template.routes()}
        for name, spec in template.of_type("AWS::DynamoDB::Table").items():
            self.gsi_keys[template.names.get(name, name)] = [
                tuple(k["AttributeName"] for k in index["KeySchema"])
                for index in spec["Properties"].get("GlobalSecondaryIndexes", [])
            ]

    # ------------------------------------------------------------------ hooks, installed once

    def install_before_start(self) -> None:
        """Lambda invocations, queue sends and the functions' output: hooked before the stack
        starts, so that the stack's own references (moto's Lambda dispatch, the loggers' stream)
        are the hooked ones."""
        from moto.sqs.models import SQSBackend

        from offline.functions import LocalFunctions

        LocalFunctions.invoke = self._metered_invoke(LocalFunctions.invoke)  # type: ignore[method-assign]
        SQSBackend.send_message = self._metered_send(SQSBackend.send_message)  # type: ignore[method-assign]
        sys.stdout = _CountingStream(sys.stdout, self._logged)

    def install_after_start(self) -> None:
        """AWS calls: outermost, around the offline IAM check the stack installs."""
        import botocore.client

        client_class: Any = botocore.client.BaseClient
        client_class._make_api_call = self._metered_call(client_class._make_api_call)

    def _metered_invoke(self, invoke: Callable[..., Any]) -> Callable[..., Any]:
        meter = self

        def metered(functions: Any, name_or_arn: str, event: dict[str, Any]) -> Any:
            name = functions.logical_id(name_or_arn)
            started = time.perf_counter_ns()
            try:
                return invoke(functions, name_or_arn, event)
            finally:
                billed = aws_cost.billed_ms(time.perf_counter_ns() - started)
                with meter._lock:
                    now = meter._now
                    now.invocations[name] += 1
                    now.billed_ms[name] += billed
                    now.usage["lambda.requests"] += 1
                    now.usage["lambda.gb_seconds"] += aws_cost.gb_seconds(
                        billed, meter.memory_mb[name]
                    )
                    if name in meter.http_functions:
                        now.usage["apigw.requests"] += 1

        return metered

    def _metered_send(self, send: Callable[..., Any]) -> Callable[..., Any]:
        meter = self

        def metered(backend: Any, queue_name: str, message_body: str, *args: Any, **kw: Any) -> Any:
            message = send(backend, queue_name, message_body, *args, **kw)
            with meter._lock:
                meter._now.usage["sqs.requests"] += aws_cost.chunks_64k(len(message_body.encode()))
                meter._now.calls["sqs SendMessage (the queue's side)"] += 1
            return message

        return metered

    def _logged(self, text: str) -> None:
        from offline.isolation import current_function

        if current_function() is None or not text:
            return
        size = len(text.encode())
        events = text.count("\n") or 1
        with self._lock:
            self._now.log_bytes += size
            self._now.usage["logs.ingested_gb"] += (
                size + events * LOG_EVENT_OVERHEAD
            ) / aws_cost.GIB

    def _metered_call(self, make_api_call: Callable[..., Any]) -> Callable[..., Any]:
        from botocore.exceptions import ClientError

        from offline.isolation import caller_of

        meter = self

        def metered(client: Any, operation: str, params: dict[str, Any]) -> Any:
            if caller_of(client) is None:  # the bench's (or the local pollers' own) calls
                return make_api_call(client, operation, params)
            service = client.meta.service_model.service_name
            before = meter._stored(params) if service == "dynamodb" else None
            try:
                response = make_api_call(client, operation, params)
            except ClientError:
                meter._count(service, operation, params, None, before, ok=False)
                raise
            meter._count(service, operation, params, response, before, ok=True)
            return response

        return metered

    # ------------------------------------------------------------------ what a call costs

    def _count(
        self,
        service: str,
        operation: str,
        params: dict[str, Any],
        response: dict[str, Any] | None,
        before: dict[str, Any] | None,
        ok: bool,
    ) -> None:
        usage: Counter[str] = Counter()
        name = f"{service} {operation}"
        if service == "dynamodb":
            usage.update(self._dynamodb(operation, params, response, before))
        elif service == "s3":
            usage.update(_s3(operation, ok))
        elif service == "sqs":
            if operation == "SendMessage":
                return  # counted where the queue takes it in (EventBridge's deliveries too)
            if operation == "ReceiveMessage":
                messages = (response or {}).get("Messages", [])
                if not messages:
                    return  # an empty long poll: a fixed cost of Lambda's poller, not a video's
                size = sum(len(m.get("Body", "").encode()) for m in messages)
                usage["sqs.requests"] += aws_cost.chunks_64k(size)
            else:
                usage["sqs.requests"] += 1
        elif service == "events" and operation == "PutEvents":
            usage["events.custom"] += sum(
                aws_cost.chunks_64k(_entry_size(e)) for e in params["Entries"]
            )
        elif service == "secretsmanager" and operation == "GetSecretValue":
            usage["secretsmanager.calls"] += 1
        elif (service, operation) not in _FREE:
            raise RuntimeError(f"bench.cost: no price rule for {name}; add one")
        with self._lock:
            self._now.usage.update(usage)
            self._now.calls[name] += 1

    def _stored(self, params: dict[str, Any]) -> dict[str, Any] | None:
        """The item a DynamoDB call names, as stored now (None: none, or not a single item)."""
        from moto.dynamodb.models import dynamodb_backends

        from offline.template import ACCOUNT, REGION

        table_name = params.get("TableName")
        if not table_name or not ("Key" in params or "Item" in params):
            return None
        backend = dynamodb_backends[ACCOUNT][REGION]
        table = backend.get_table(table_name)
        key = params.get("Key") or {
            attribute: params["Item"][attribute]
            for attribute in (table.hash_key_attr, table.range_key_attr)
            if attribute
        }
        item = backend.get_item(table_name, key)
        return item.to_json()["Attributes"] if item is not None else None  # type: ignore[no-any-return]

    def _dynamodb(
        self,
        operation: str,
        params: dict[str, Any],
        response: dict[str, Any] | None,
        before: dict[str, Any] | None,
    ) -> Counter[str]:
        usage: Counter[str] = Counter()
        if operation == "GetItem":
            size = aws_cost.item_size(before) if before else 0
            usage["dynamodb.read_units"] += aws_cost.read_units(
                size, bool(params.get("ConsistentRead"))
            )
        elif operation in ("Query", "Scan"):
            items = (response or {}).get("Items", [])
            size = sum(aws_cost.item_size(item) for item in items)
            usage["dynamodb.read_units"] += aws_cost.read_units(
                size, bool(params.get("ConsistentRead"))
            )
        elif operation in _DYNAMODB_WRITES:
            after = self._stored(params)
            old = aws_cost.item_size(before) if before else 0
            new = aws_cost.item_size(after) if after else 0
            usage["dynamodb.write_units"] += aws_cost.write_units(old, new)
            for keys in self.gsi_keys.get(params["TableName"], []):
                usage["dynamodb.write_units"] += aws_cost.index_write_units(before, after, keys)
        elif operation not in ("DescribeTable",):
            raise RuntimeError(f"bench.cost: no price rule for dynamodb {operation}; add one")
        return usage


def _s3(operation: str, ok: bool) -> Counter[str]:
    usage: Counter[str] = Counter()
    if operation in _S3_PUT_CLASS:
        usage["s3.put_class"] += 1
    elif operation in _S3_GET_CLASS:
        usage["s3.get_class"] += 1
    elif operation not in _S3_FREE:
        raise RuntimeError(f"bench.cost: no price rule for s3 {operation}; add one")
    if ok and operation in _S3_EVENTS:
        usage["events.s3"] += 1
    return usage


def _entry_size(entry: dict[str, Any]) -> int:
    """A PutEvents entry's size as EventBridge calculates it (Time 14 bytes, the rest UTF-8)."""
    size = 14 if entry.get("Time") is not None else 0
    for key in ("Source", "DetailType", "Detail"):
        size += len(str(entry.get(key) or "").encode())
    return size + sum(len(r.encode()) for r in entry.get("Resources", []))


class _CountingStream(io.TextIOBase):
    """sys.stdout, whose writes are also told to `seen`."""

    def __init__(self, stream: Any, seen: Callable[[str], None]) -> None:
        self._stream = stream
        self._seen = seen

    def write(self, text: str) -> int:
        self._seen(text)
        return int(self._stream.write(text))

    def flush(self) -> None:
        self._stream.flush()

    def fileno(self) -> int:
        return int(self._stream.fileno())


# ---------------------------------------------------------------------------------- the section


def run(quick: bool) -> SectionResult:
    videos = 2 if quick else 5
    ports = Ports(
        api=free_port(), aws=free_port(), simulators={p: free_port() for p in PROVIDER_NAMES}
    )
    env = {k: v for k, v in os.environ.items() if not k.endswith("_BASE_URL")}
    # Deployed defaults where the local ones would change what is counted: INFO logs, and
    # secrets cached for as long as a deployed function caches them.
    env.update(LOG_LEVEL="INFO", SECRETS_CACHE_SECONDS="300")
    meter = Metering()
    meter.install_before_start()
    stack = LocalStack(ports, env).start()
    try:
        meter.configure(stack)
        meter.install_after_start()
        machine = next(iter(stack.template.of_type("AWS::Serverless::StateMachine")))
        harness = _Harness(stack, stack.template.names[machine])
        warm_up = harness.one_video(meter, "")
        measured = {case.name: Measured() for case in CASES}
        for attempt in range(videos):
            for case in CASES:
                measured[case.name].add(harness.one_video(meter, case.tags, attempt))
    finally:
        stack.stop()
    return _report(measured, videos, warm_up)


class _Harness:
    """The bench's own calls: creates through the API, everything else behind the functions'
    backs (not metered), and the wait for each video's last effect (its webhook)."""

    def __init__(self, stack: LocalStack, machine_arn: str) -> None:
        self._stack = stack
        self._machine_arn = machine_arn
        self._dynamodb = boto3.client("dynamodb")
        self._sfn = boto3.client("stepfunctions")
        self._s3 = boto3.client("s3")
        self._table = stack.template.names["TasksTable"]
        self._bucket = stack.template.names["VideoBucket"]

    def one_video(self, meter: Metering, tags: str, attempt: int = 0) -> Measured:
        import requests

        meter.take()
        prompt = f"bench cost fox {attempt}{tags} [sim:size={VIDEO_BYTES}]"
        response = requests.post(
            f"{self._stack.api_url}/v1/videos",
            json={"prompt": prompt, "provider": PROVIDER, "mode": MODE, "resolution": "720p"},
            headers=HEADERS,
            timeout=60,
        )
        if response.status_code != 202:
            raise RuntimeError(f"create refused: {response.status_code} {response.text}")
        task_id = response.json()["id"]
        execution = self._machine_arn.replace(":stateMachine:", ":execution:") + f":{task_id}"
        _wait(lambda: self._status(task_id) == "completed", "the video to be stored")
        _wait(
            lambda: self._sfn.describe_execution(executionArn=execution)["status"] != "RUNNING",
            "the fallback poller to end",
        )
        _wait(lambda: meter.invocations("WebhookSenderFunction") > 0, "the webhook sender")
        self._stack.functions.wait_idle(30)
        time.sleep(1.5)  # a late duplicate (a second callback, a redelivery) is this video's too
        measured = meter.take()
        history = self._sfn.get_execution_history(executionArn=execution, maxResults=1000)
        measured.usage["states.transitions"] += transitions(history["events"])
        stored = self._stored_bytes(task_id)
        measured.usage["s3.storage_gb_month"] += stored / aws_cost.GIB
        item = self._dynamodb.get_item(TableName=self._table, Key={"id": {"S": task_id}})["Item"]
        # The item and its copy in each index, each with DynamoDB's 100 bytes of overhead.
        copies = 1 + len(meter.gsi_keys.get(self._table, []))
        table_gb = copies * (aws_cost.item_size(item) + 100) / aws_cost.GIB
        measured.usage["dynamodb.storage_gb_month"] += table_gb
        measured.usage["dynamodb.pitr_gb_month"] += table_gb
        for invocations in measured.invocations.values():
            lines = len(PLATFORM_LINES) * invocations
            platform = sum(len(line) + 1 for line in PLATFORM_LINES) * invocations
            measured.usage["logs.ingested_gb"] += (
                platform + lines * LOG_EVENT_OVERHEAD
            ) / aws_cost.GIB
        for function in meter.http_functions:
            requests_ = measured.invocations[function]
            access_log = len(_access_log_format(self._stack)) + LOG_EVENT_OVERHEAD
            measured.usage["logs.ingested_gb"] += requests_ * access_log / aws_cost.GIB
        return measured

    def _status(self, task_id: str) -> str:
        item = self._dynamodb.get_item(
            TableName=self._table, Key={"id": {"S": task_id}}, ConsistentRead=True
        ).get("Item", {})
        status = item.get("status", {}).get("S", "")
        if status == "failed":
            raise RuntimeError(f"task {task_id} failed: {item.get('error')}")
        return str(status)

    def _stored_bytes(self, task_id: str) -> int:
        """The task's objects (its video and manifest) in the bucket."""
        pages = self._s3.get_paginator("list_objects_v2").paginate(Bucket=self._bucket)
        return sum(
            item["Size"]
            for page in pages
            for item in page.get("Contents", [])
            if task_id in item["Key"]
        )


def _access_log_format(stack: LocalStack) -> str:
    """One line of the HTTP API's access log, as its Format (placeholders about as long as the
    values they become)."""
    (api,) = stack.template.of_type("AWS::Serverless::HttpApi").values()
    return str(api["Properties"]["AccessLogSettings"]["Format"])


def _wait(probe: Callable[[], Any], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout} s for {what}")
        time.sleep(0.2)


def _report(measured: dict[str, Measured], videos: int, warm_up: Measured) -> SectionResult:
    result = SectionResult("AWS cost")
    provider_usd = 1000 * aws_cost.PROVIDER_PRICE_USD
    for case in CASES:
        m = measured[case.name]
        per_thousand = aws_cost.scaled(m.usage, 1000 / videos)
        aws_usd = sum(aws_cost.cost(per_thousand).values())
        share = aws_usd / provider_usd
        result.rows.append(
            Row(
                f"AWS cost per 1,000 completed videos ({PROVIDER} {MODE} 720p 8 s, "
                f"{VIDEO_BYTES // 2**20} MiB each): {case.name}, {videos} video(s)",
                f"${aws_usd:.3f}",
                f"provider ${provider_usd:,.2f}: {aws_cost.PROVIDER_PRICE_NAME}",
                f"{share * 100:.3f}%",
                "< 1% of the provider's price" if case.has_target else "—",
                verdict(share < TARGET) if case.has_target else NO_TARGET,
            )
        )
        result.notes.append(f"{case.name}, per 1,000 videos: " + _breakdown(m, videos))
        result.notes.append(f"{case.name}, per video: " + _per_video(m, videos))
    callbacks = measured[CASES[0].name]
    thousand = Counter(aws_cost.cost(aws_cost.scaled(callbacks.usage, 1000 / videos)))
    lambda_usd = thousand["lambda.gb_seconds"]
    cold = warm_up.usage["lambda.gb_seconds"] - callbacks.usage["lambda.gb_seconds"] / videos
    cold_usd = 1000 * cold * aws_cost.PRICES["lambda.gb_seconds"].usd_per_unit
    result.notes += [
        "durations are this machine's, offline: the provider is a simulator on loopback and AWS "
        "answers in-process, so a deployed function waits longer (a real provider's CDN above "
        f"all). Were every invocation 10× as long, Lambda would add ${9 * lambda_usd:.3f} per "
        f"1,000 videos ({9 * lambda_usd / provider_usd * 100:.3f}% of the provider's price).",
        f"the warm-up video, not counted, met every function cold (its modules imported within "
        f"the invocation; Lambda bills the init phase too, from memory): {cold:.2f} GB-s more "
        f"than a warm one, ${cold_usd:.3f} per 1,000 videos if every video met cold functions.",
        "not counted: X-Ray (Tracing: Active; $5.00 per million traces recorded, from memory: at "
        f"most one per invocation, ${_xray_bound(callbacks, videos):.3f} per 1,000 videos, and "
        "the default sampling records 1 a second plus 5%); data transfer out when a client "
        "downloads its video (about $0.09/GB, from memory: "
        f"${1000 * VIDEO_BYTES / aws_cost.GIB * 0.09:.2f} per 1,000 downloads); a client's GETs "
        "of its task (a client with a webhook needs none); and what does not grow with videos: "
        "the secrets ($0.40 a month each), CloudWatch metrics and alarms, the empty long polls "
        "of Lambda's SQS pollers, KMS for the tables' AWS managed key.",
        "prices (us-east-1, list, no free tier): "
        + "; ".join(
            f"{meter.service} {meter.quoted()} ({meter.source})"
            for meter in aws_cost.PRICES.values()
        )
        + f". The provider's price is {PROVIDER_PRICE_NOTE}.",
        f"counted as bench/cost.py's docstring says, in the `make run` stack with INFO logs and "
        f"the deployed secrets cache; video {VIDEO_BYTES // 2**20} MiB ([sim:size=…]): an 8 s "
        "720p clip is a few MB (a 1080p one, over the 8 MiB multipart threshold, would cost 3 "
        "PUT-class requests more and 2-3× the storage). CloudWatch Logs includes the "
        "platform's START/END/REPORT/XRAY lines and the HTTP API's access log line, estimated "
        "from their form (this stack prints neither), and 26 bytes an event. S3's events to "
        "EventBridge are charged as opt-in data events (were they free, "
        f"${thousand['events.s3']:.4f} less per 1,000 videos).",
    ]
    return result


PROVIDER_PRICE_NOTE = "the cheapest video of the template's default PriceTable"


def _breakdown(m: Measured, videos: int) -> str:
    per_video = aws_cost.scaled(m.usage, 1 / videos)
    usd = aws_cost.cost(aws_cost.scaled(m.usage, 1000 / videos))
    parts = []
    for service, total in aws_cost.by_service(aws_cost.scaled(m.usage, 1000 / videos)).items():
        meters = [name for name, meter in aws_cost.PRICES.items() if meter.service == service]
        detail = ", ".join(
            f"{_quantity(per_video[name], aws_cost.PRICES[name].unit)} (${usd[name]:.4f})"
            for name in meters
            if name in per_video
        )
        parts.append(f"{service} ${total:.4f} [per video: {detail}]")
    return "; ".join(parts)


def _per_video(m: Measured, videos: int) -> str:
    functions = ", ".join(
        f"{name.removesuffix('Function')} {n / videos:g} × {m.billed_ms[name] / n:.0f} ms"
        for name, n in sorted(m.invocations.items())
    )
    calls = ", ".join(f"{name} {n / videos:g}" for name, n in sorted(m.calls.items()))
    return (
        f"Lambda invocations (× mean billed duration): {functions}; AWS calls: {calls}; "
        f"the functions' own log output {m.log_bytes / videos / 1024:.1f} KiB"
    )


def _quantity(value: float, unit: str) -> str:
    """`3 request`, or for a meter of stored or ingested GB `5.00 MiB-month, Standard`."""
    if not unit.startswith("GB") or unit.startswith("GB-s"):
        return f"{value:.3g} {unit}"
    n_bytes = value * aws_cost.GIB
    size = f"{n_bytes / 2**20:.2f} MiB" if n_bytes >= 2**20 else f"{n_bytes / 1024:.1f} KiB"
    return size + unit.removeprefix("GB")


def _xray_bound(m: Measured, videos: int) -> float:
    return 1000 * m.usage["lambda.requests"] / videos * 5.00 / 1e6
