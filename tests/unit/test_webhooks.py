"""Unit tests for veo_relay.webhooks: one delivery attempt, signed, and what follows from its
answer (delivered, gone, refused, queued again by the retry schedule, given up). The POST
(``webhooks.post``) is a recording fake."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest
from aws_lambda_powertools import Logger

from tests.fakes import FakeMetrics
from veo_relay import webhooks
from veo_relay.errors import TaskNotFound
from veo_relay.queries import TaskQueries
from veo_relay.safe_urls import RefusedUrl, UnresolvableHost
from veo_relay.settings import WebhookDelivery
from veo_relay.tasks import StoredVideo, Task, TaskError, TaskStatus
from veo_relay.webhook_messages import Delivery
from veo_relay.webhook_retries import WebhookGaveUp
from veo_relay.webhook_signing import sign
from veo_relay.webhooks import WebhookOutcome, WebhookSender

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


# ------------------------------------------------------------------------------------ fixtures


@pytest.fixture(autouse=True, scope="module")
def parent_logger() -> Logger:
    """The module's child logger needs its parent, as a handler module creates it in Lambda."""
    return Logger(service=webhooks.logger.service, level="WARNING")


# -------------------------------------------------------------------------------------- deliver


def make_task(status: TaskStatus = TaskStatus.COMPLETED, webhook_url: str | None = None) -> Task:
    task = Task(
        id="vid_abc",
        owner="arn:aws:iam::123456789012:user/alice",
        status=status,
        provider="apixo",
        prompt="a fox",
        mode="fast",
        generation_type="TEXT_2_VIDEO",
        aspect_ratio="16:9",
        root_id="vid_abc",
        created_at="2026-11-21T10:00:00.000Z",
        updated_at="2026-11-21T10:02:05.000Z",
        provider_task_id="task_1",
        webhook_url=webhook_url,
    )
    if status is TaskStatus.COMPLETED:
        task.completed_at = task.updated_at
        task.video = StoredVideo("bucket", "videos/vid_abc/vid_abc.mp4", 10, "0" * 64, "video/mp4")
    if status is TaskStatus.FAILED:
        task.error = TaskError("content_violation", "flagged")
    return task


@dataclass
class Deliveries:
    """The webhook sender with in-memory collaborators: the task (or none), the queue its
    retries go to, its metrics and each owner's signing secrets."""

    task: Task | None
    retry_delays: tuple[int, ...] = (5, 300)
    queued: list[Delivery] = field(default_factory=list)
    # Each owner's signing secrets, as WebhookSecrets.signing gives them.
    secrets: dict[str, list[str]] = field(
        default_factory=lambda: {"arn:aws:iam::123456789012:user/alice": [SECRET]}
    )
    metrics: FakeMetrics = field(default_factory=FakeMetrics)

    @property
    def outcomes(self) -> list[str]:
        return [args[0] for name, args in self.metrics.recorded if name == "webhook_outcome"]

    @property
    def sender(self) -> WebhookSender:
        tasks = SimpleNamespace(get=self._get)
        videos = SimpleNamespace(presigned_url=lambda key, expires: f"https://s3.example/{key}")
        return WebhookSender(
            tasks=tasks,  # type: ignore[arg-type]
            queries=TaskQueries(tasks, videos, 3600),  # type: ignore[arg-type]
            webhook_secrets=SimpleNamespace(signing=lambda owner: self.secrets[owner]),  # type: ignore[arg-type]
            webhook_queue=SimpleNamespace(send=self.queued.append),  # type: ignore[arg-type]
            metrics=self.metrics,
            delivery=WebhookDelivery("https://sqs.example/webhooks", self.retry_delays, 15),
            allow_loopback=False,
        )

    def _get(self, task_id: str) -> Task:
        if self.task is None or task_id != self.task.id:
            raise TaskNotFound(task_id)
        return self.task


@dataclass
class FakePost:
    statuses: list[int | Exception]
    calls: list[tuple[str, dict[str, str], bytes, bool, float]] = field(default_factory=list)

    def __call__(
        self, url: str, headers: dict[str, str], body: bytes, loopback: bool, timeout: float
    ) -> int:
        self.calls.append((url, headers, body, loopback, timeout))
        answer = self.statuses.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def fake_post(monkeypatch: pytest.MonkeyPatch) -> FakePost:
    fake = FakePost([])
    monkeypatch.setattr(webhooks, "post", fake)
    return fake


def test_a_delivery_is_signed_and_carries_the_task_object(fake_post):
    # Given a completed task with a webhook, and a receiver that answers 204
    deliveries = Deliveries(make_task(webhook_url="https://hooks.example.com/veo"))
    fake_post.statuses = [204]

    # When the first attempt is delivered
    outcome = deliveries.sender.deliver(Delivery("video.completed", "vid_abc"))

    # Then it is delivered, once, signed over id, timestamp and the exact body
    assert outcome is WebhookOutcome.DELIVERED
    ((url, headers, body, _, timeout),) = fake_post.calls
    assert url == "https://hooks.example.com/veo"
    assert timeout == 15  # the configured WEBHOOK_TIMEOUT_SECONDS
    assert headers["webhook-id"] == "msg_vid_abc_completed"
    expected = sign(SECRET, headers["webhook-id"], int(headers["webhook-timestamp"]), body)
    assert headers["webhook-signature"] == expected
    payload = json.loads(body)
    assert payload["type"] == "video.completed"
    assert payload["data"]["id"] == "vid_abc"
    assert (
        payload["data"]["video"]["download_url"] == "https://s3.example/videos/vid_abc/vid_abc.mp4"
    )
    assert deliveries.queued == []
    assert deliveries.outcomes == ["delivered"]


def test_a_delivery_is_signed_with_each_of_its_owners_signing_secrets(fake_post):
    # Given a task whose owner rotated its secret (the new one and the one it replaced sign),
    # and another principal with a secret of its own
    deliveries = Deliveries(make_task(webhook_url="https://hooks.example.com/veo"))
    new = "whsec_" + "A" * 43 + "="
    deliveries.secrets = {
        "arn:aws:iam::123456789012:user/alice": [new, SECRET],
        "arn:aws:iam::123456789012:user/bob": ["whsec_" + "B" * 43 + "="],
    }
    fake_post.statuses = [200]

    # When it is delivered
    deliveries.sender.deliver(Delivery("video.completed", "vid_abc"))

    # Then its signature header holds one v1 signature per secret of the task's owner, in order
    ((_, headers, body, _, _),) = fake_post.calls
    msg_id, timestamp = headers["webhook-id"], int(headers["webhook-timestamp"])
    assert headers["webhook-signature"].split(" ") == [
        sign(new, msg_id, timestamp, body),
        sign(SECRET, msg_id, timestamp, body),
    ]


@pytest.mark.parametrize(
    "failure", [500, 429, 301, 404, UnresolvableHost("no dns"), ConnectionResetError("reset")]
)
def test_a_failed_attempt_is_queued_again_after_the_schedules_delay(fake_post, failure):
    # Given a receiver that fails the first attempt
    deliveries = Deliveries(make_task(webhook_url="https://hooks.example.com/veo"))
    fake_post.statuses = [failure]
    before = time.time()

    # When it is delivered
    outcome = deliveries.sender.deliver(Delivery("video.completed", "vid_abc"))

    # Then attempt 2 is queued, due after the schedule's first delay
    assert outcome is WebhookOutcome.RETRY_SCHEDULED
    (retry,) = deliveries.queued
    assert (retry.event_type, retry.task_id, retry.attempt) == ("video.completed", "vid_abc", 2)
    assert before + 5 <= retry.not_before <= time.time() + 5


def test_when_the_schedule_runs_out_the_delivery_gives_up(fake_post):
    # Given the last attempt of a two-step schedule, and a receiver still failing
    deliveries = Deliveries(make_task(webhook_url="https://hooks.example.com/veo"))
    fake_post.statuses = [500]

    # When it is delivered, Then it gives up (the queue's redrive takes it to the DLQ)
    with pytest.raises(WebhookGaveUp, match="3 times"):
        deliveries.sender.deliver(Delivery("video.completed", "vid_abc", attempt=3))
    assert deliveries.queued == []


def test_a_410_stops_the_deliveries(fake_post):
    deliveries = Deliveries(make_task(webhook_url="https://hooks.example.com/veo"))
    fake_post.statuses = [410]

    assert deliveries.sender.deliver(Delivery("video.completed", "vid_abc")) is WebhookOutcome.GONE
    assert deliveries.queued == []


def test_a_refused_url_is_not_retried(fake_post):
    # Given a webhook whose name now resolves to a private address
    deliveries = Deliveries(make_task(webhook_url="https://internal.example.com/veo"))
    fake_post.statuses = [RefusedUrl("resolves to a forbidden address")]

    # When it is delivered, Then it is refused for good
    assert (
        deliveries.sender.deliver(Delivery("video.completed", "vid_abc")) is WebhookOutcome.REFUSED
    )
    assert deliveries.queued == []
    assert deliveries.outcomes == ["refused"]


def test_a_retry_that_is_not_due_is_deferred_without_calling(fake_post):
    # Given a retry due in an hour
    deliveries = Deliveries(make_task(webhook_url="https://hooks.example.com/veo"))
    delivery = Delivery("video.completed", "vid_abc", attempt=4, not_before=time.time() + 3600)

    # When it arrives, Then it is queued again unchanged, and the receiver is not called
    assert deliveries.sender.deliver(delivery) is WebhookOutcome.DEFERRED
    assert deliveries.queued == [delivery]
    assert fake_post.calls == []


@pytest.mark.parametrize("task", [None, make_task()], ids=["task-gone", "no-webhook"])
def test_no_webhook_no_call(fake_post, task):
    deliveries = Deliveries(task)

    assert (
        deliveries.sender.deliver(Delivery("video.completed", "vid_abc"))
        is WebhookOutcome.NO_WEBHOOK
    )
    assert fake_post.calls == []


def test_a_failed_tasks_delivery_carries_its_error(fake_post):
    deliveries = Deliveries(make_task(TaskStatus.FAILED, webhook_url="https://hooks.example.com/v"))
    fake_post.statuses = [200]

    deliveries.sender.deliver(Delivery("video.failed", "vid_abc"))

    ((_, headers, body, _, _),) = fake_post.calls
    payload = json.loads(body)
    assert headers["webhook-id"] == "msg_vid_abc_failed"
    assert payload["type"] == "video.failed"
    assert payload["data"]["error"] == {"code": "content_violation", "message": "flagged"}
    assert payload["data"]["video"] is None
