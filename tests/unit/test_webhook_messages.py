"""Unit tests for veo_relay.webhook_messages: the webhook queue's messages, as the bus sends them
and as the sender queues its retries (SQS is a fake that records what is sent)."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace
from typing import Any

import pytest

from tests.helpers import load_event
from veo_relay.webhook_messages import Delivery, WebhookQueue, delivery_from_message

# ------------------------------------------------------------------------ delivery_from_message


def test_a_video_completed_event_from_the_bus_is_a_first_attempt():
    # Given the webhook queue's sample message (an EventBridge event from our bus)
    body = load_event("webhook_video_completed")["Records"][0]["body"]

    # When it is read
    delivery = delivery_from_message(body)

    # Then it is the first attempt of video.completed for the event's task, due at once
    assert delivery == Delivery(
        event_type="video.completed", task_id="vid_0123456789abcdef01234567", attempt=1
    )
    assert delivery.not_before == 0.0
    assert delivery.message_id == "msg_vid_0123456789abcdef01234567_completed"


def test_a_video_failed_event_is_a_video_failed_delivery_with_its_own_message_id():
    # Given a Video Failed event for a task
    body = json.dumps(
        {"detail-type": "Video Failed", "source": "veo-relay", "detail": {"id": "vid_abc"}}
    )

    # When it is read
    delivery = delivery_from_message(body)

    # Then it is video.failed, and its message id differs from the completion's
    assert (delivery.event_type, delivery.task_id, delivery.attempt) == (
        "video.failed",
        "vid_abc",
        1,
    )
    assert delivery.message_id == "msg_vid_abc_failed"


def test_a_queued_retry_round_trips_through_the_webhook_queue():
    # Given a retry the sender queued (captured from a fake SQS client)
    sent: list[dict[str, Any]] = []
    sqs = SimpleNamespace(send_message=lambda **kwargs: sent.append(kwargs))
    retry = Delivery("video.completed", "vid_abc", attempt=3, not_before=time.time() + 30.5)
    WebhookQueue(sqs, "https://sqs.example/q").send(retry)

    # When its body is read back
    (message,) = sent
    delivery = delivery_from_message(message["MessageBody"])

    # Then it is the same delivery (same message id), delayed until it is due
    assert delivery == retry
    assert delivery.message_id == "msg_vid_abc_completed"
    assert message["QueueUrl"] == "https://sqs.example/q"
    assert 30 <= message["DelaySeconds"] <= 31


def test_a_retry_further_than_sqs_allows_is_delayed_by_the_maximum():
    # Given a retry due in ten hours
    sent: list[dict[str, Any]] = []
    sqs = SimpleNamespace(send_message=lambda **kwargs: sent.append(kwargs))

    # When it is queued
    WebhookQueue(sqs, "q").send(Delivery("video.failed", "vid_a", 5, time.time() + 36000))

    # Then SQS's own limit (15 minutes) is the delay; the sender defers it again when it comes
    assert sent[0]["DelaySeconds"] == 900


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"detail-type": "Video Started", "detail": {"id": "vid_a"}}),
        json.dumps({"detail-type": "Video Completed", "detail": {}}),
        json.dumps({"detail-type": "Video Completed", "detail": {"id": 12}}),
        json.dumps({"detail-type": "Video Completed"}),
        json.dumps({}),
    ],
    ids=["other-type", "no-id", "numeric-id", "no-detail", "empty"],
)
def test_other_messages_are_refused(body):
    # Given a message that is neither a video event nor a retry
    # When it is read, Then it is refused
    with pytest.raises(ValueError, match="Video Completed"):
        delivery_from_message(body)


def test_a_message_that_is_not_json_is_refused():
    with pytest.raises(ValueError):
        delivery_from_message("not json")
