"""Downstream of a stored video, against the moto stack: the manifest beside the video, its S3
event through the real EventBridge rule to the consumer, `Video Completed` / `Video Failed` on our
bus, signed client webhooks with their retries and dead-letter queue, and the business metrics.

Events on our bus are watched through an extra rule ("tap") with a test queue as its target; moto
delivers S3 events to EventBridge rules and rules to SQS targets synchronously, within the call
that caused them, so "nothing was announced" is checked right after the call that would have.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from botocore.exceptions import ClientError

from offline.aws import ACCOUNT, REGION
from offline.event_sources import QueuePollers, StreamPollers
from offline.servers import LocalHTTPServer
from tests.helpers import ALICE, api_event, load_event, response_json, wait_until


def stack_env(**variables: Any) -> pytest.MarkDecorator:
    """The fallback poller's first look is far away, so only the test drives each task (the
    closest marker wins, so it is repeated here)."""
    return pytest.mark.stack_env(POLL_FIRST_WAIT_SECONDS=600, **variables)


pytestmark = stack_env()

# A receiver on this machine over plain http, and retries without delay.
webhook_env = stack_env(WEBHOOK_ALLOW_LOOPBACK="true", WEBHOOK_RETRY_SECONDS="0,0")

VIDEO_SIZE = 200_000


# --- helpers ------------------------------------------------------------------------------------


def finished_task(stack: Any, prompt: str, state: str = "succeeded", **fields: Any) -> dict:
    """A task whose provider side has ended without calling back."""
    task = stack.create_task(f"{prompt} [sim:no-callback]", **fields)
    sim_id = task["provider_task_id"]
    stack.simulator.wait_for(lambda: stack.simulator.task(sim_id).state == state, timeout=10)
    return task


def completed_task(stack: Any, prompt: str = "a fox", **fields: Any) -> dict:
    """A task copied into S3 by the copy worker (one SQS record), its item's video returned."""
    task = finished_task(stack, f"{prompt} [sim:size={VIDEO_SIZE}]", **fields)
    assert stack.copy(task["id"]) == {"batchItemFailures": []}
    assert stack.status(task["id"]) == "completed"
    return task


def stored_video(stack: Any, task_id: str) -> dict[str, Any]:
    video = stack.item(task_id)["video"]["M"]
    return {k: next(iter(v.values())) for k, v in video.items()}


def manifest_key_of(video_key: str) -> str:
    return video_key.removesuffix(".mp4") + ".json"


def get_task(stack: Any, task_id: str) -> dict[str, Any]:
    response = stack.invoke("ApiFunction", api_event("api_get_video", path=f"/v1/videos/{task_id}"))
    assert response["statusCode"] == 200, response
    return response_json(response)


def without_download_url(task: dict[str, Any]) -> dict[str, Any]:
    if task.get("video") is None:
        return task
    return {**task, "video": {**task["video"], "download_url": None}}


def drain(stack: Any, queue_url: str) -> list[dict[str, Any]]:
    """Every visible message of a queue, received and deleted."""
    sqs = stack.client("sqs")
    messages: list[dict[str, Any]] = []
    while True:
        received = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
        ).get("Messages", [])
        if not received:
            return messages
        for message in received:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        messages.extend(received)


def stored_video_messages(stack: Any) -> list[dict[str, Any]]:
    return drain(stack, stack.template.names["StoredVideoQueue"])


def sqs_event(messages: list[dict[str, Any]], queue: str) -> dict[str, Any]:
    """Messages as Lambda's SQS event source hands them to a function."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}",
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


def emf_records(output: str) -> list[dict[str, Any]]:
    """The EMF lines Powertools printed (one metric each: `single_metric`)."""
    return [json.loads(line) for line in output.splitlines() if line.startswith('{"_aws"')]


def metric_names(record: dict[str, Any]) -> list[str]:
    return [m["Name"] for d in record["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]]


def emitted(records: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [r for r in records if name in metric_names(r)]


def metric_value(record: dict[str, Any], name: str) -> float:
    value = record[name]
    return float(value[0] if isinstance(value, list) else value)


def dimension_sets(record: dict[str, Any]) -> list[list[str]]:
    return [dims for d in record["_aws"]["CloudWatchMetrics"] for dims in d["Dimensions"]]


def webhook_secret(stack: Any, principal: str = ALICE) -> str:
    """What a receiver is given: its owner's secret, from GET /v1/webhook-secret."""
    response = stack.invoke("ApiFunction", api_event("api_get_webhook_secret", principal=principal))
    assert response["statusCode"] == 200, response
    return str(response_json(response)["secret"])


def verify_signature(secret: str, headers: dict[str, str], body: bytes) -> None:
    """Standard Webhooks verification as the README shows a receiver doing it (independent of
    veo_relay.webhook_signing)."""
    msg_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
    assert abs(time.time() - int(timestamp)) <= 300, "stale or future timestamp"
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = base64.b64encode(
        hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    ).decode()
    sent = [s.split(",", 1)[1] for s in headers["webhook-signature"].split() if s.startswith("v1,")]
    assert any(hmac.compare_digest(expected, s) for s in sent), "bad signature"


# --- fixtures -----------------------------------------------------------------------------------


@dataclass
class BusTap:
    """A rule on our bus for every veo-relay event, into a test queue."""

    stack: Any
    queue_url: str
    events: list[dict[str, Any]] = field(default_factory=list)

    def drain(self) -> list[dict[str, Any]]:
        """Every event announced so far (kept across calls)."""
        self.events.extend(json.loads(m["Body"]) for m in drain(self.stack, self.queue_url))
        return list(self.events)

    def of(self, detail_type: str, task_id: str | None = None) -> list[dict[str, Any]]:
        return [
            e
            for e in self.drain()
            if e["detail-type"] == detail_type and (task_id is None or e["detail"]["id"] == task_id)
        ]

    def wait_for(self, detail_type: str, task_id: str, timeout: float = 15.0) -> dict[str, Any]:
        found = wait_until(
            lambda: self.of(detail_type, task_id),
            timeout=timeout,
            interval=0.1,
            what=f"{detail_type} for {task_id} on the bus",
        )
        return found[0]


@pytest.fixture
def bus(stack: Any) -> Iterator[BusTap]:
    events = stack.client("events")
    sqs = stack.client("sqs")
    bus_name = stack.template.names["VideoEventBus"]
    queue_url = sqs.create_queue(QueueName="test-bus-tap")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    events.put_rule(
        Name="test-bus-tap",
        EventBusName=bus_name,
        EventPattern=json.dumps({"source": ["veo-relay"]}),
    )
    events.put_targets(
        Rule="test-bus-tap", EventBusName=bus_name, Targets=[{"Id": "tap", "Arn": queue_arn}]
    )
    yield BusTap(stack, queue_url)
    events.remove_targets(Rule="test-bus-tap", EventBusName=bus_name, Ids=["tap"])
    events.delete_rule(Name="test-bus-tap", EventBusName=bus_name)
    sqs.delete_queue(QueueUrl=queue_url)


@pytest.fixture
def stream_pollers(stack: Any) -> Iterator[StreamPollers]:
    """The tasks table's stream → FailureAnnouncerFunction, as Lambda's event source runs it."""
    pollers = StreamPollers(
        stack.template,
        stack.functions,
        stack.session,
        poll_interval_seconds=0.05,
        retry_delay_seconds=0.1,
    )
    pollers.start()
    yield pollers
    pollers.stop()


@pytest.fixture
def queue_pollers(stack: Any) -> Iterator[QueuePollers]:
    """Every SQS trigger of the template (copy, submit, stored video, webhook), a failed record
    visible again at once rather than after ~2 s."""
    pollers = QueuePollers(
        stack.template,
        stack.functions,
        stack.client("sqs"),
        pollers_per_queue=1,
        retry_delay_seconds=0,
    )
    pollers.start()
    yield pollers
    pollers.stop()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """A client's webhook endpoint on loopback: records every request, answers scripted statuses
    (first in first out), then `default_status`."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.default_status = 200
        self._statuses: deque[int] = deque()
        self._lock = threading.Lock()
        handler = type("Handler", (_ReceiverHandler,), {"receiver": self})
        self._server = LocalHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks/veo"

    def answer(self, *statuses: int) -> None:
        with self._lock:
            self._statuses.extend(statuses)

    def record(self, path: str, headers: dict[str, str], body: bytes) -> int:
        with self._lock:
            status = self._statuses.popleft() if self._statuses else self.default_status
            self.requests.append(Received(path, headers, body, status))
            return status

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        wait_until(
            lambda: len(self.requests) >= count,
            timeout=timeout,
            interval=0.05,
            what=f"{count} webhook request(s)",
        )
        with self._lock:
            return list(self.requests)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _ReceiverHandler(BaseHTTPRequestHandler):
    receiver: Receiver

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        status = self.receiver.record(self.path, headers, body)
        reply = b"{}"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


# --- the manifest beside the video --------------------------------------------------------------


def test_a_completed_task_has_its_manifest_beside_the_video(stack):
    # Given a task the provider finished
    # When the copy worker stores it
    task = completed_task(stack, "a fox in the snow", seed=42, aspect_ratio="9:16")
    video = stored_video(stack, task["id"])
    s3 = stack.client("s3")

    # Then the video is video/mp4, with the task's ids as metadata
    video_object = s3.head_object(Bucket=stack.bucket, Key=video["key"])
    assert video_object["ContentType"] == "video/mp4"
    expected_metadata = {
        "task-id": task["id"],
        "root-id": task["id"],
        "provider": "apixo",
        "provider-task-id": task["provider_task_id"],
        "resolution": "720p",
    }
    assert video_object["Metadata"] == expected_metadata

    # And its manifest lies beside it, application/json, with the same metadata
    key = manifest_key_of(video["key"])
    assert key == f"videos/{task['id']}/{task['id']}.json"
    manifest_object = s3.get_object(Bucket=stack.bucket, Key=key)
    assert manifest_object["ContentType"] == "application/json"
    assert manifest_object["Metadata"] == expected_metadata
    manifest = json.loads(manifest_object["Body"].read())

    # And the manifest describes the task and exactly the object stored
    data = s3.get_object(Bucket=stack.bucket, Key=video["key"])["Body"].read()
    assert manifest["video"] == {
        "bucket": stack.bucket,
        "key": video["key"],
        "size_bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "content_type": "video/mp4",
    }
    assert len(data) == VIDEO_SIZE
    assert manifest["video"]["sha256"] == stack.simulator.video_sha256(task["provider_task_id"])
    public = get_task(stack, task["id"])
    assert manifest["task_id"] == task["id"]
    assert manifest["parent_id"] is None
    assert manifest["root_id"] == task["id"]
    assert manifest["provider"] == "apixo"
    assert manifest["provider_task_id"] == task["provider_task_id"]
    assert manifest["prompt"] == public["prompt"]
    assert (manifest["mode"], manifest["generation_type"]) == ("fast", "TEXT_2_VIDEO")
    assert (manifest["aspect_ratio"], manifest["seed"]) == ("9:16", 42)
    assert manifest["created_at"] == public["created_at"]
    assert manifest["completed_at"] == public["completed_at"]


def test_an_extensions_manifest_and_metadata_name_its_parent(stack):
    # Given a completed video and a completed extension of it
    parent = completed_task(stack, "a fox")
    event = api_event(
        "api_extend_video",
        path=f"/v1/videos/{parent['id']}/extend",
        body={"prompt": f"it jumps [sim:no-callback] [sim:size={VIDEO_SIZE}]"},
    )
    event["pathParameters"] = {"id": parent["id"]}
    response = stack.invoke("ApiFunction", event)
    assert response["statusCode"] == 202, response
    child = response_json(response)
    sim_id = child["provider_task_id"]
    stack.simulator.wait_for(lambda: stack.simulator.task(sim_id).state == "succeeded")

    # When the child is copied
    assert stack.copy(child["id"]) == {"batchItemFailures": []}

    # Then its manifest is in the family's folder and names its parent and root
    key = f"videos/{parent['id']}/{child['id']}.json"
    manifest_object = stack.client("s3").get_object(Bucket=stack.bucket, Key=key)
    manifest = json.loads(manifest_object["Body"].read())
    assert (manifest["task_id"], manifest["parent_id"], manifest["root_id"]) == (
        child["id"],
        parent["id"],
        parent["id"],
    )
    assert manifest["video"]["key"] == f"videos/{parent['id']}/{child['id']}.mp4"
    # And both objects carry the parent's id as metadata
    expected = {
        "task-id": child["id"],
        "root-id": parent["id"],
        "parent-id": parent["id"],
        "provider": "apixo",
        "provider-task-id": sim_id,
        "resolution": "720p",
    }
    assert manifest_object["Metadata"] == expected
    video_object = stack.client("s3").head_object(Bucket=stack.bucket, Key=manifest["video"]["key"])
    assert video_object["Metadata"] == expected


class FlakyManifestWrites:
    """VideoStore.put_document failing on its first call, as if the worker died there."""

    def __init__(self, original: Callable[..., bool]) -> None:
        self.original = original
        self.calls: list[str] = []
        self.written: list[str] = []

    def put_document(self, store: Any, key: str, *args: Any, **kwargs: Any) -> bool:
        self.calls.append(key)
        if len(self.calls) == 1:
            raise ClientError(
                {"Error": {"Code": "InternalError", "Message": "injected"}}, "PutObject"
            )
        created = self.original(store, key, *args, **kwargs)
        if created:
            self.written.append(key)
        return created


@pytest.fixture
def flaky_manifest_writes(monkeypatch: pytest.MonkeyPatch) -> FlakyManifestWrites:
    from veo_relay.video_store import VideoStore

    flaky = FlakyManifestWrites(VideoStore.put_document)

    def put_document(store: Any, key: str, *args: Any, **kwargs: Any) -> bool:
        return flaky.put_document(store, key, *args, **kwargs)

    monkeypatch.setattr(VideoStore, "put_document", put_document)
    return flaky


def test_a_crash_before_the_manifest_is_repaired_by_the_redelivered_request_once(
    stack, flaky_manifest_writes
):
    # Given a finished task whose first manifest write fails (after the completed write)
    task = finished_task(stack, f"a fox [sim:size={VIDEO_SIZE}]")
    sim_id = task["provider_task_id"]

    # When the copy request is handled
    # Then the record fails (the whole batch of one: redelivered), the task is completed and no
    # manifest exists yet
    with pytest.raises(BatchProcessingError, match="injected"):
        stack.copy(task["id"])
    assert stack.status(task["id"]) == "completed"
    key = manifest_key_of(stored_video(stack, task["id"])["key"])
    with pytest.raises(ClientError):
        stack.client("s3").head_object(Bucket=stack.bucket, Key=key)
    assert [m for m in stored_video_messages(stack) if key in m["Body"]] == []
    reads = stack.simulator.task(sim_id).status_reads

    # When the request is redelivered, and then once more
    assert stack.copy(task["id"]) == {"batchItemFailures": []}
    assert stack.copy(task["id"]) == {"batchItemFailures": []}

    # Then the manifest was written exactly once, by the first redelivery (S3 refused the
    # second's create-only write), without the provider
    assert flaky_manifest_writes.calls == [key, key, key]
    assert flaky_manifest_writes.written == [key]
    assert stack.simulator.task(sim_id).status_reads == reads
    # And exactly one ObjectCreated for it went to the stored-video queue
    created = [json.loads(m["Body"]) for m in stored_video_messages(stack)]
    assert [e["detail"]["object"]["key"] for e in created] == [key]
    # And it is the completed task's manifest
    manifest = json.loads(
        stack.client("s3").get_object(Bucket=stack.bucket, Key=key)["Body"].read()
    )
    assert manifest["video"]["sha256"] == stack.simulator.video_sha256(sim_id)
    assert manifest["completed_at"] == get_task(stack, task["id"])["completed_at"]


def test_a_task_completed_across_a_manifest_crash_is_still_counted(
    stack, flaky_manifest_writes, capsys
):
    # Given a finished task whose first manifest write fails
    task = finished_task(stack, f"a fox [sim:size={VIDEO_SIZE}]")
    capsys.readouterr()

    # When the copy fails after the completed write and the redelivery writes the manifest
    with pytest.raises(BatchProcessingError):
        stack.copy(task["id"])
    assert stack.copy(task["id"]) == {"batchItemFailures": []}

    # Then the task is counted once as completed, with its bytes
    records = emf_records(capsys.readouterr().out)
    assert len(emitted(records, "TasksCompleted")) == 1
    assert [metric_value(r, "BytesCopied") for r in emitted(records, "BytesCopied")] == [VIDEO_SIZE]


# --- the manifest's event, the consumer and our bus ---------------------------------------------


def test_the_manifest_event_reaches_the_consumer_which_announces_video_completed(
    stack, bus, capsys
):
    # Given a completed task
    task = completed_task(stack, "a fox on the bus")
    video = stored_video(stack, task["id"])
    key = manifest_key_of(video["key"])

    # When S3's events go through the default bus's rules (moto, for real)
    messages = stored_video_messages(stack)

    # Then the stored-video queue got the manifest's Object Created only (not the video's)
    assert len(messages) == 1, [m["Body"] for m in messages]
    event = json.loads(messages[0]["Body"])
    assert event["source"] == "aws.s3"
    assert event["detail-type"] == "Object Created"
    assert event["detail"]["bucket"]["name"] == stack.bucket
    assert event["detail"]["object"]["key"] == key
    # And nothing is announced before the consumer has checked the video
    assert bus.of("Video Completed") == []
    capsys.readouterr()

    # When the consumer handles that SQS message
    result = stack.invoke("VideoConsumerFunction", sqs_event(messages, "StoredVideoQueue"))

    # Then it succeeds, and our bus carries Video Completed with the task object
    assert result == {"batchItemFailures": []}
    (announced,) = bus.of("Video Completed", task["id"])
    assert announced["source"] == "veo-relay"
    detail = announced["detail"]
    assert detail["status"] == "completed"
    assert detail["video"] == {**video, "size_bytes": VIDEO_SIZE, "download_url": None}
    assert detail["video"]["bucket"] == stack.bucket
    assert detail["video"]["key"] == video["key"]
    assert detail["video"]["sha256"] == stack.simulator.video_sha256(task["provider_task_id"])
    # And it is the object the API shows, but for the (short-lived) download URL
    assert detail == without_download_url(get_task(stack, task["id"]))
    # And the check is counted as a verified video
    records = emf_records(capsys.readouterr().out)
    assert len(emitted(records, "VideosVerified")) == 1
    assert emitted(records, "VideoMismatches") == []


def test_the_consumer_ignores_objects_that_are_not_manifests_of_its_bucket(stack, bus):
    # Given a completed task and EventBridge events for its video and for another bucket
    task = completed_task(stack)
    video_key = stored_video(stack, task["id"])["key"]
    stored_video_messages(stack)
    sample = load_event("stored_video_eventbridge")
    for_video = {**sample, "detail": {**sample["detail"], "object": {"key": video_key}}}
    elsewhere = {
        **sample,
        "detail": {
            **sample["detail"],
            "bucket": {"name": "someone-elses-bucket"},
            "object": {"key": manifest_key_of(video_key)},
        },
    }

    # When the consumer is invoked with each
    outcomes = [stack.invoke("VideoConsumerFunction", e) for e in (for_video, elsewhere)]

    # Then nothing is checked and nothing announced
    assert outcomes == [{"outcomes": []}, {"outcomes": []}]
    assert bus.drain() == []


@pytest.mark.parametrize("tamper", ["same-size", "other-size"])
def test_a_tampered_video_is_reported_and_never_announced(stack, bus, capsys, tamper):
    # Given a completed task, whose video is then overwritten with other bytes
    task = completed_task(stack)
    video = stored_video(stack, task["id"])
    messages = stored_video_messages(stack)
    size = VIDEO_SIZE if tamper == "same-size" else VIDEO_SIZE - 1
    stack.client("s3").put_object(
        Bucket=stack.bucket, Key=video["key"], Body=b"\x00" * size, ContentType="video/mp4"
    )
    capsys.readouterr()

    # When the consumer handles the manifest's event
    result = stack.invoke("VideoConsumerFunction", sqs_event(messages, "StoredVideoQueue"))

    # Then the message is consumed (a retry cannot mend it), nothing is announced
    assert result == {"batchItemFailures": []}
    assert bus.drain() == []
    # And the mismatch is counted, and not as a verified video
    records = emf_records(capsys.readouterr().out)
    (mismatch,) = emitted(records, "VideoMismatches")
    assert metric_value(mismatch, "VideoMismatches") == 1
    assert emitted(records, "VideosVerified") == []
    # And it is the outcome the handler reports for an EventBridge event too
    direct = load_event("stored_video_eventbridge")
    direct["detail"]["bucket"]["name"] = stack.bucket
    direct["detail"]["object"]["key"] = manifest_key_of(video["key"])
    assert stack.invoke("VideoConsumerFunction", direct) == {"outcomes": ["mismatch"]}
    assert bus.drain() == []


# --- failures, from the table's stream ----------------------------------------------------------


def fail_directly(task_id: str, message: str = "flagged by the test") -> Any:
    from offline.isolation import acting_as
    from veo_relay import wiring
    from veo_relay.tasks import TaskError

    with acting_as("CopyWorkerFunction"):
        tasks = wiring.copy_worker().tasks
    return tasks.mark_failed(task_id, TaskError("content_violation", message))


def test_a_failed_task_is_announced_from_the_stream_with_its_error(stack, bus, stream_pollers):
    # Given a task the provider rejected for its content
    task = finished_task(stack, "a fox [sim:fail=CONTENT_VIOLATION]", state="failed")

    # When the copy worker confirms the failure (the stream carries the change to the announcer)
    assert stack.copy(task["id"]) == {"batchItemFailures": []}

    # Then our bus carries Video Failed with the task object and its error
    announced = bus.wait_for("Video Failed", task["id"])
    assert announced["source"] == "veo-relay"
    detail = announced["detail"]
    assert detail["status"] == "failed"
    assert detail["error"]["code"] == "content_violation"
    assert detail["error"]["message"]
    assert detail["video"] is None
    assert detail == get_task(stack, task["id"])


def test_a_failure_that_cannot_be_announced_lands_in_the_announcers_dead_letter_queue(
    stack, stream_pollers, monkeypatch
):
    # Given an announcer that fails on every batch (the bus refuses, say)
    from veo_relay.failure_announcement import FailureAnnouncer

    def refuse(*args: Any, **kwargs: Any) -> bool:
        raise RuntimeError("the bus is down")

    monkeypatch.setattr(FailureAnnouncer, "announce", refuse)
    task = stack.create_task("a fox [sim:no-callback] [sim:delay=60]")

    # When the task fails
    assert fail_directly(task["id"]) is not None

    # Then, after the mapping's retries, a note of the batch is in the dead-letter queue, sent
    # with the announcer's own role (SAM grants the destination)
    dlq = stack.template.names["FailureAnnouncerDeadLetterQueue"]
    sqs = stack.client("sqs")
    notes = wait_until(
        lambda: sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=1).get("Messages"),
        timeout=20,
        what="the stream batch's note in the dead-letter queue",
    )
    note = json.loads(notes[0]["Body"])
    assert note["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert note["DDBStreamBatchInfo"]["batchSize"] >= 1
    assert any(
        r["principal"] == "FailureAnnouncerFunction" and r["action"] == "sqs:SendMessage"
        for r in stack.iam_usage()
    )


def test_a_failure_is_announced_exactly_once(stack, bus, stream_pollers):
    # Given a running task
    task = stack.create_task("a fox [sim:no-callback] [sim:delay=60]")
    other = stack.create_task("another fox [sim:no-callback] [sim:delay=60]")

    # When it is marked failed twice, and a later write touches the failed task
    assert fail_directly(task["id"]) is not None
    assert fail_directly(task["id"], "again") is None
    stack.client("dynamodb").update_item(
        TableName=stack.table,
        Key={"id": {"S": task["id"]}},
        UpdateExpression="SET updated_at = :now",
        ExpressionAttributeValues={":now": {"S": "2099-01-01T00:00:00.000Z"}},
    )
    # And, after those, another task fails (its announcement marks the stream's end)
    assert fail_directly(other["id"]) is not None
    bus.wait_for("Video Failed", other["id"])

    # Then the first task was announced exactly once, with the first error
    (announced,) = bus.of("Video Failed", task["id"])
    assert announced["detail"]["error"] == {
        "code": "content_violation",
        "message": "flagged by the test",
    }
    assert bus.of("Video Completed") == []


def test_the_announcer_announces_only_a_change_into_failed(stack, bus):
    # Given the sample stream record (in_progress → failed) and the same record failed → failed
    entering = load_event("task_failed_stream")
    staying = load_event("task_failed_stream")
    staying["Records"][0]["dynamodb"]["OldImage"]["status"] = {"S": "failed"}

    # When the announcer handles the one that stays failed
    assert stack.invoke("FailureAnnouncerFunction", staying) == {"batchItemFailures": []}

    # Then nothing is announced
    assert bus.drain() == []

    # When it handles the one entering failed, Then Video Failed carries the sample's task
    assert stack.invoke("FailureAnnouncerFunction", entering) == {"batchItemFailures": []}
    (announced,) = bus.of("Video Failed")
    assert announced["detail"]["id"] == "vid_0123456789abcdef01234567"
    assert announced["detail"]["error"] == {
        "code": "content_violation",
        "message": "the prompt was flagged by the provider's content filter",
    }
    assert "owner" not in announced["detail"]


def test_a_cancel_is_announced_as_a_failure_and_a_deletion_as_itself_alone(
    stack, bus, stream_pollers
):
    # Given a task waiting for its slot (a minute's only apixo submit went to another)
    stack.set_env(APIXO_RATE_LIMIT="1/60")
    stack.create_task("first fox")
    queued = stack.create_task("second fox")
    assert queued["status"] == "queued"

    # When its owner cancels it, Then the stream's announcer puts Video Failed, code cancelled
    path = f"/v1/videos/{queued['id']}"
    cancel = api_event("api_cancel_video", path=f"{path}/cancel")
    cancel["pathParameters"] = {"id": queued["id"]}
    assert stack.invoke("ApiFunction", cancel)["statusCode"] == 200
    failed = bus.wait_for("Video Failed", queued["id"])
    assert failed["detail"]["error"]["code"] == "cancelled"

    # When the failed task is then deleted (the record changes, its status stays failed)
    deleted = stack.invoke("ApiFunction", api_event("api_delete_video", path=path))
    assert deleted["statusCode"] == 204, deleted
    bus.wait_for("Video Deleted", queued["id"])

    # Then it was announced failed once, and deleted once
    time.sleep(0.5)  # the stream's pollers run every 0.05 s: a second announcement would be in
    assert len(bus.of("Video Failed", queued["id"])) == 1
    assert len(bus.of("Video Deleted", queued["id"])) == 1


# --- client webhooks ----------------------------------------------------------------------------


@webhook_env
def test_a_completed_task_is_delivered_to_its_webhook_signed(stack, receiver, queue_pollers):
    # Given a receiver on loopback, and a task created with it as webhook_url
    task = stack.create_task(f"a fox [sim:size={VIDEO_SIZE}]", webhook_url=receiver.url)

    # When the pipeline runs (callback → copy → manifest → consumer → bus → webhook queue)
    (request,) = receiver.wait_for(1)

    # Then the receiver got video.completed, signed with the task owner's secret
    assert request.path == "/hooks/veo"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"] == f"msg_{task['id']}_completed"
    verify_signature(webhook_secret(stack), request.headers, request.body)
    payload = request.json
    assert payload["type"] == "video.completed"
    # And its data is the task object, with a download URL for the stored video
    data = payload["data"]
    assert data["id"] == task["id"]
    assert data["status"] == "completed"
    assert data["video"]["size_bytes"] == VIDEO_SIZE
    assert data["video"]["sha256"] == stack.simulator.video_sha256(task["provider_task_id"])
    assert data["video"]["key"] in data["video"]["download_url"]
    assert data["video"]["download_url"].startswith(("https://", "http://"))
    assert without_download_url(data) == without_download_url(get_task(stack, task["id"]))


@webhook_env
def test_a_failing_receiver_is_retried_with_the_same_webhook_id(stack, receiver, queue_pollers):
    # Given a receiver that answers 500 twice, then 200
    receiver.answer(500, 500)
    secret = webhook_secret(stack)

    # When a task with that webhook completes
    task = stack.create_task("a fox", webhook_url=receiver.url)
    requests = receiver.wait_for(3)

    # Then there were three attempts of one message, each signed, the last one delivered
    assert [r.status for r in requests] == [500, 500, 200]
    assert {r.headers["webhook-id"] for r in requests} == {f"msg_{task['id']}_completed"}
    for request in requests:
        verify_signature(secret, request.headers, request.body)
        assert request.json["type"] == "video.completed"
        assert request.json["data"]["id"] == task["id"]
    # And, delivered, it left nothing in the webhook queue or its dead-letter queue
    assert drain(stack, stack.template.names["WebhookDeadLetterQueue"]) == []


@webhook_env
def test_a_receiver_that_always_fails_ends_in_the_dead_letter_queue(stack, receiver, queue_pollers):
    # Given a receiver that always answers 503
    receiver.default_status = 503

    # When a task with that webhook completes
    task = stack.create_task("a fox", webhook_url=receiver.url)

    # Then after the schedule (two retries) the last attempt fails on each of the queue's
    # maxReceiveCount receives and its message is moved to the webhook dead-letter queue
    redrive = stack.template.resources["WebhookQueue"]["Properties"]["RedrivePolicy"]
    max_receives = int(redrive["maxReceiveCount"])
    dlq = stack.template.names["WebhookDeadLetterQueue"]
    dead = wait_until(lambda: drain(stack, dlq), timeout=30, interval=0.2, what="a dead letter")
    assert [json.loads(m["Body"]) for m in dead] == [
        {
            "retry": {
                "event_type": "video.completed",
                "task_id": task["id"],
                "attempt": 3,
                "not_before": json.loads(dead[0]["Body"])["retry"]["not_before"],
            }
        }
    ]
    requests = receiver.requests
    assert len(requests) == 2 + max_receives
    assert {r.headers["webhook-id"] for r in requests} == {f"msg_{task['id']}_completed"}
    assert all(r.status == 503 for r in requests)


@webhook_env
def test_a_failed_task_is_delivered_as_video_failed(stack, receiver, queue_pollers, stream_pollers):
    # Given a task with a webhook, which the provider rejects
    task = stack.create_task("a fox [sim:fail=CONTENT_VIOLATION]", webhook_url=receiver.url)

    # When the failure goes through the stream, the bus and the webhook queue
    (request,) = receiver.wait_for(1)

    # Then the receiver got video.failed with the error, signed
    verify_signature(webhook_secret(stack), request.headers, request.body)
    assert request.headers["webhook-id"] == f"msg_{task['id']}_failed"
    payload = request.json
    assert payload["type"] == "video.failed"
    assert payload["data"]["id"] == task["id"]
    assert payload["data"]["error"]["code"] == "content_violation"
    assert payload["data"]["video"] is None


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.1/hooks/veo",
        "https://169.254.169.254/latest/meta-data",
        "https://192.168.1.20/hook",
        "https://[fd00::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://2130706433/hook",
        "https://hooks.example.com@127.0.0.1/hook",
        "http://127.0.0.1:8080/hook",
        "http://localhost:8080/hook",
        "http://hooks.example.com/hook",
    ],
)
def test_a_private_or_loopback_webhook_url_is_refused_at_create(stack, url):
    # Given the deployed configuration (no loopback)
    # When a task is created with that webhook URL
    response = stack.create_video({"prompt": "a fox", "webhook_url": url})

    # Then it is a 422 naming webhook_url, and no task exists
    assert response["statusCode"] == 422, response
    error = response_json(response)["error"]
    assert error["code"] == "invalid_request"
    assert error["message"].startswith("webhook_url:")
    assert stack.task_items() == []


def test_a_webhook_name_resolving_to_a_private_address_is_refused_at_delivery(
    stack, monkeypatch, capsys
):
    # Given a webhook host name that DNS points at a private address (names are not resolved at
    # create: the address is checked at each delivery, and the connection pinned to it)
    import socket

    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "hooks.internal.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port))]
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    task = completed_task(stack, webhook_url="https://hooks.internal.example/veo")
    bus_event = json.loads(load_event("webhook_video_completed")["Records"][0]["body"])
    bus_event["detail"] = get_task(stack, task["id"])
    message = load_event("webhook_video_completed")
    message["Records"][0]["body"] = json.dumps(bus_event)
    capsys.readouterr()

    # When the webhook sender handles the task's Video Completed
    result = stack.invoke("WebhookSenderFunction", message)

    # Then it is refused for good: no retry queued, no failure to redeliver
    assert result == {"batchItemFailures": []}
    assert drain(stack, stack.template.names["WebhookQueue"]) == []
    (outcome,) = emitted(emf_records(capsys.readouterr().out), "WebhookDeliveries")
    assert outcome["outcome"] == "refused"


# --- metrics ------------------------------------------------------------------------------------


def test_a_completed_task_emits_its_business_metrics_with_the_provider(stack, capsys):
    # Given a task whose provider calls back
    capsys.readouterr()
    task = stack.create_task(f"a fox [sim:size={VIDEO_SIZE}]")
    wait_until(
        lambda: "callback_received_at" in stack.item(task["id"]),
        timeout=10,
        what="the provider's callback",
    )

    # When the copy worker stores its video
    assert stack.copy(task["id"]) == {"batchItemFailures": []}
    assert stack.status(task["id"]) == "completed"

    # Then one EMF line per business metric was printed, each with the provider dimension
    records = emf_records(capsys.readouterr().out)
    for name in (
        "TasksCreated",
        "TasksCompleted",
        "BytesCopied",
        "CopyDuration",
        "CallbackToStoredLatency",
    ):
        (record,) = emitted(records, name)
        assert record["provider"] == "apixo", record
        assert any("provider" in dims for dims in dimension_sets(record)), record
        assert record["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "VeoRelay"
    # And the values are what happened
    assert metric_value(emitted(records, "TasksCreated")[0], "TasksCreated") == 1
    assert metric_value(emitted(records, "TasksCompleted")[0], "TasksCompleted") == 1
    assert metric_value(emitted(records, "BytesCopied")[0], "BytesCopied") == VIDEO_SIZE
    assert metric_value(emitted(records, "CopyDuration")[0], "CopyDuration") >= 0
    assert (
        metric_value(emitted(records, "CallbackToStoredLatency")[0], "CallbackToStoredLatency") >= 0
    )
    units = {
        m["Name"]: m["Unit"]
        for r in records
        for d in r["_aws"]["CloudWatchMetrics"]
        for m in d["Metrics"]
    }
    assert units["BytesCopied"] == "Bytes"
    assert units["CopyDuration"] == units["CallbackToStoredLatency"] == "Milliseconds"
    assert units["TasksCreated"] == units["TasksCompleted"] == "Count"
    # And nothing failed
    assert emitted(records, "TasksFailed") == []


def test_a_copy_without_a_callback_emits_no_callback_latency(stack, capsys):
    # Given a task finished without calling back (found by the poller, here the test)
    task = finished_task(stack, "a fox")
    capsys.readouterr()

    # When it is copied
    assert stack.copy(task["id"]) == {"batchItemFailures": []}

    # Then it is counted as completed, with no callback-to-stored latency
    records = emf_records(capsys.readouterr().out)
    assert len(emitted(records, "TasksCompleted")) == 1
    assert emitted(records, "CallbackToStoredLatency") == []
