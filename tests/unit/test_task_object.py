"""The task object, declared once (veo_relay.tasks.TaskObject, veo_relay.queries.TaskList):
docs/openapi.json's schemas are generated from that declaration, the routes answer with them, and
what every producer makes (the API's answers, the manifest's object, the events on our bus, the
webhooks) is exactly such an object."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pytest
from aws_lambda_powertools import Logger

from tests.helpers import ALICE, ROOT, api_event, load_event
from tests.openapi_schemas import assert_described
from tools.openapi import OPENAPI_PATH
from veo_relay import webhooks
from veo_relay.failure_announcement import FailureAnnouncer
from veo_relay.manifests import build_manifest, encode_manifest, manifest_key, task_object
from veo_relay.queries import TaskQueries
from veo_relay.settings import WebhookDelivery
from veo_relay.tasks import StoredVideo, Task, TaskError, TaskStatus
from veo_relay.video_check import StoredVideoCheck
from veo_relay.video_events import VideoEvents
from veo_relay.webhook_messages import Delivery
from veo_relay.webhooks import WebhookOutcome, WebhookSender

SHA256 = "ab" * 32
BUCKET = "veo-relay-videos"


def a_task(status: TaskStatus, **changes: Any) -> Task:
    """A task in `status`, with what a task in it holds: a stored video once completed, an error
    once failed."""
    task = Task(
        id=f"vid_{status.value}",
        owner=ALICE,
        status=status,
        provider="kie",
        prompt="a fox — «ünïcödé» 🦊",
        mode="quality",
        generation_type="REFERENCE_2_VIDEO",
        aspect_ratio="9:16",
        root_id="vid_root",
        created_at="2026-11-21T10:00:00.000Z",
        updated_at="2026-11-21T10:02:05.120Z",
        image_urls=["https://img.example.com/a.png"],
        seed=42,
        parent_id="vid_root",
        provider_task_id=None if status is TaskStatus.QUEUED else "task_kie_1",
        webhook_url="https://hooks.example.com/veo",
    )
    if status is TaskStatus.COMPLETED:
        task.completed_at = task.updated_at
        task.video = StoredVideo(
            BUCKET, f"videos/vid_root/{task.id}.mp4", 9437184, SHA256, "video/mp4"
        )
    if status is TaskStatus.FAILED:
        task.error = TaskError("content_violation", "flagged", "CONTENT_VIOLATION", "raw words")
    return replace(task, **changes)


TASKS = [a_task(status) for status in TaskStatus]
COMPLETED = a_task(TaskStatus.COMPLETED)
FAILED = a_task(TaskStatus.FAILED)


class Producers:
    """Every producer of the task object, with in-memory ports: the tasks, the bucket, our bus
    (through the real VideoEvents) and the webhooks' queue and secrets."""

    def __init__(self, tasks: list[Task], documents: dict[str, bytes] | None = None) -> None:
        by_id = {task.id: task for task in tasks}
        self.published: list[dict[str, Any]] = []  # the entries put on our bus
        self.posted: list[bytes] = []  # the webhook bodies sent
        self.settings = SimpleNamespace(
            presign_expires_seconds=3600,
            webhooks=SimpleNamespace(retry_delays=(5,), allow_loopback=False, timeout_seconds=15),
        )
        self.tasks = SimpleNamespace(
            get=by_id.__getitem__,
            list_for_owner=lambda owner, limit, start, status, root_id: (tasks, {"id": "x"}),
        )
        self.videos = SimpleNamespace(
            bucket=BUCKET,
            presigned_url=lambda key, expires: f"https://{BUCKET}.s3.example/{key}?X-Amz-Expires=1",
            read_document=lambda key, max_bytes: (documents or {})[key],
            measure=lambda key: (9437184, SHA256),
        )
        events = SimpleNamespace(put_events=self._put_events)
        self.video_events = VideoEvents(events, "veo-relay-videos", "veo-relay")
        self.telemetry = SimpleNamespace(
            video_verified=lambda matches: None,
            task_failed=lambda provider: None,
            webhook_outcome=lambda outcome: None,
        )
        self.webhook_secrets = SimpleNamespace(signing=lambda owner: ["whsec_" + "A" * 43 + "="])

    @property
    def queries(self) -> TaskQueries:
        return TaskQueries(self.tasks, self.videos, 3600)  # type: ignore[arg-type]

    @property
    def check(self) -> StoredVideoCheck:
        return StoredVideoCheck(self.videos, self.video_events, self.telemetry)  # type: ignore[arg-type]

    @property
    def announcer(self) -> FailureAnnouncer:
        return FailureAnnouncer(self.video_events, self.telemetry)  # type: ignore[arg-type]

    @property
    def sender(self) -> WebhookSender:
        return WebhookSender(
            tasks=self.tasks,  # type: ignore[arg-type]
            queries=self.queries,
            webhook_secrets=self.webhook_secrets,  # type: ignore[arg-type]
            webhook_queue=SimpleNamespace(send=lambda delivery: None),  # type: ignore[arg-type]
            metrics=self.telemetry,  # type: ignore[arg-type]
            delivery=WebhookDelivery("https://sqs.example/webhooks", (5,), 15),
            allow_loopback=False,
        )

    def _put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.published.extend(Entries)
        return {"FailedEntryCount": 0, "Entries": [{"EventId": "1"}]}

    def detail(self) -> Any:
        (entry,) = self.published
        return json.loads(entry["Detail"])


@pytest.fixture(autouse=True, scope="module")
def parent_logger() -> Logger:
    """The producers' child loggers need their parent, as a handler module creates it in Lambda."""
    return Logger(service=webhooks.logger.service, level="WARNING")


# --------------------------------------------------------------------------- the description


def test_the_task_routes_answer_with_the_task_object_and_the_list():
    # Given the generated description
    paths = json.loads(OPENAPI_PATH.read_text())["paths"]

    def answer(path: str, method: str, status: str) -> str:
        content = paths[path][method]["responses"][status]["content"]["application/json"]
        return str(content["schema"]["$ref"])

    # Then a create, an extend and a read answer with the task object, a listing with the list
    task_object_ref = "#/components/schemas/TaskObject"
    assert answer("/v1/videos", "post", "202") == task_object_ref
    assert answer("/v1/videos/{task_id}/extend", "post", "202") == task_object_ref
    assert answer("/v1/videos/{task_id}", "get", "200") == task_object_ref
    assert answer("/v1/videos", "get", "200") == "#/components/schemas/TaskList"


def test_every_field_is_always_present_and_null_only_where_declared():
    # Given the task object's schema
    schema = json.loads(OPENAPI_PATH.read_text())["components"]["schemas"]["TaskObject"]

    # Then every field is required (null stands for "none"), and only these may be null
    assert set(schema["required"]) == set(schema["properties"])
    nullable = {
        name
        for name, field in schema["properties"].items()
        if {"type": "null"} in field.get("anyOf", [])
    }
    assert nullable == {
        "provider_task_id",
        "seed",
        "parent_id",
        "progress",
        "cost",
        "completed_at",
        "video",
        "error",
    }


# The contract's task object, its placeholders filled in.
CONTRACT_EXAMPLE = {
    "id": "vid_0a1b2c3d4e5f60718293a4b5",
    "provider": "apixo",
    "provider_task_id": "task_1",
    "mode": "fast",
    "generation_type": "TEXT_2_VIDEO",
    "aspect_ratio": "16:9",
    "prompt": "a fox",
    "parent_id": None,
    "root_id": "vid_0a1b2c3d4e5f60718293a4b5",
    "resolution": "720p",
    "progress": None,
    "cost": {"usd": 0.3, "source": "price_table"},
    "created_at": "2026-11-21T10:00:00Z",
    "updated_at": "2026-11-21T10:02:05Z",
    "completed_at": None,
    "video": {
        "bucket": BUCKET,
        "key": "videos/vid_0a1b2c3d4e5f60718293a4b5/vid_0a1b2c3d4e5f60718293a4b5.mp4",
        "size_bytes": 123,
        "sha256": SHA256,
        "content_type": "video/mp4",
        "download_url": "https://veo-relay-videos.s3.example/videos/x.mp4?X-Amz-Signature=1",
    },
    "error": {"code": "content_violation", "message": "flagged"},
}
CONTRACT_STATUSES = ["queued", "in_progress", "storing", "completed", "failed"]
# In every task's object, not in the contract's: an extension of it.
BEYOND_THE_CONTRACT = {"image_urls", "seed"}


def test_the_declared_fields_are_the_contracts_and_its_extensions():
    # Given the task object's schema and the contract's object
    schemas = json.loads(OPENAPI_PATH.read_text())["components"]["schemas"]
    declared = set(schemas["TaskObject"]["properties"])

    # Then the fields declared are the contract's, with its statuses, video and error
    assert declared - BEYOND_THE_CONTRACT == {*CONTRACT_EXAMPLE, "status"}
    assert schemas["TaskStatus"]["enum"] == CONTRACT_STATUSES
    assert set(schemas["TaskObjectVideo"]["properties"]) == set(CONTRACT_EXAMPLE["video"])
    assert set(schemas["TaskObjectError"]["properties"]) == set(CONTRACT_EXAMPLE["error"])


@pytest.mark.parametrize("status", CONTRACT_STATUSES)
def test_the_contracts_example_is_a_task_object(status):
    # Given the contract's example in any of its statuses, with this service's extensions
    example = {**CONTRACT_EXAMPLE, "status": status, "image_urls": [], "seed": None}

    # Then it is a task object
    assert_described(example, "TaskObject")


# ----------------------------------------------------------------------------- the producers


@pytest.mark.parametrize("task", TASKS, ids=lambda task: task.status.value)
@pytest.mark.parametrize("download_url", [None, "https://s3.example/x?X-Amz-Signature=1"])
def test_the_tasks_own_object_in_every_status(task, download_url):
    # Given a task in any status, When it is made public, Then it is a task object
    assert_described(task.to_public(download_url), "TaskObject")


@pytest.mark.parametrize("task", TASKS, ids=lambda task: task.status.value)
def test_the_api_answer_for_a_task(task):
    # Given the caller's task in any status
    producers = Producers(TASKS)

    # When the API reads it (a completed one with its presigned download_url)
    answer = producers.queries.get_video(ALICE, task.id)

    # Then it is a task object
    assert_described(answer, "TaskObject")
    assert (answer["video"] is not None) == (task.status is TaskStatus.COMPLETED)


def test_the_api_answer_for_a_listing():
    # Given the caller's tasks, one in each status, When the API lists them
    producers = Producers(TASKS)
    answer = producers.queries.list_videos(ALICE, 20, None, None)

    # Then it is a task list: task objects and the next page's cursor
    assert_described(answer, "TaskList")
    assert len(answer["items"]) == len(TASKS)
    assert isinstance(answer["next_cursor"], str)


def test_the_object_a_manifest_describes():
    # Given a completed task's manifest, as read back from the bucket
    manifest = json.loads(encode_manifest(build_manifest(COMPLETED)))

    # When its task object is made from it alone, Then it is a task object
    assert_described(task_object(manifest), "TaskObject")


def test_the_video_completed_event():
    # Given a stored video and its manifest beside it
    key = manifest_key(COMPLETED)
    producers = Producers([], {key: encode_manifest(build_manifest(COMPLETED))})

    # When the consumer has checked the video against it and announced it
    producers.check.verify_and_announce(key)

    # Then the event's detail is a task object (without a download URL)
    assert producers.published[0]["DetailType"] == "Video Completed"
    assert_described(producers.detail(), "TaskObject")
    assert producers.detail()["video"]["download_url"] is None


def test_the_video_failed_event():
    # Given the sample stream record of a task entering failed
    change = load_event("task_failed_stream")["Records"][0]["dynamodb"]
    producers = Producers([])

    # When the announcer reads it
    assert producers.announcer.announce(change["NewImage"], change["OldImage"])

    # Then the event's detail is a task object, failed
    assert producers.published[0]["DetailType"] == "Video Failed"
    assert_described(producers.detail(), "TaskObject")
    assert producers.detail()["status"] == "failed"


@pytest.mark.parametrize(
    ("task", "event_type"),
    [(COMPLETED, "video.completed"), (FAILED, "video.failed")],
    ids=["completed", "failed"],
)
def test_a_webhooks_data(task, event_type, monkeypatch):
    # Given a task with a webhook, and a receiver that takes the delivery
    producers = Producers([task])

    def receive(url: str, headers: dict[str, str], body: bytes, *args: Any) -> int:
        producers.posted.append(body)
        return 204

    monkeypatch.setattr(webhooks, "post", receive)

    # When it is delivered
    outcome = producers.sender.deliver(Delivery(event_type, task.id))

    # Then the payload's data is a task object
    assert outcome is WebhookOutcome.DELIVERED
    (body,) = producers.posted
    payload = json.loads(body)
    assert payload["type"] == event_type
    assert_described(payload["data"], "TaskObject")


# ----------------------------------------------------------------------- the API's own check


@pytest.fixture
def api_app(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The API function's module, loaded as Lambda loads it, its wiring never built."""
    spec = importlib.util.spec_from_file_location("api_app", ROOT / "functions/api/app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def answering(api_app: Any, monkeypatch: pytest.MonkeyPatch, answer: Any) -> None:
    """The API function's reads answer `answer`."""
    queries = SimpleNamespace(get_video=lambda owner, task_id: answer)
    monkeypatch.setattr(api_app, "api", lambda: SimpleNamespace(queries=queries))


def test_an_answer_that_is_not_a_task_object_is_a_500_not_the_callers_fault(api_app, monkeypatch):
    # Given a read whose answer is not a task object (a mode the description does not know)
    broken = {**COMPLETED.to_public("https://s3.example/x"), "mode": "turbo"}
    answering(api_app, monkeypatch, broken)
    event = api_event("api_get_video", path="/v1/videos/vid_completed")

    # When the API answers it
    response = api_app.app.resolve(event, SimpleNamespace(aws_request_id="r"))

    # Then it is our error, a 500 with the usual body, and the answer is not sent
    assert response["statusCode"] == 500
    assert json.loads(response["body"])["error"]["code"] == "internal_error"
    assert "turbo" not in response["body"]


def test_a_task_object_is_answered_as_it_is(api_app, monkeypatch):
    # Given a read of a completed task
    answer = COMPLETED.to_public("https://s3.example/x")
    answering(api_app, monkeypatch, answer)
    event = api_event("api_get_video", path="/v1/videos/vid_completed")

    # When the API answers it, Then the body is the task object, checked, in its fields' order
    response = api_app.app.resolve(event, SimpleNamespace(aws_request_id="r"))
    assert response["statusCode"] == 200
    assert list(json.loads(response["body"]).items()) == list(
        json.loads(json.dumps(answer)).items()
    )
