"""Unit tests for veo_relay.webhook_retries: the retry schedule of a failed webhook delivery."""

from __future__ import annotations

import time

import pytest

from veo_relay.webhook_messages import Delivery
from veo_relay.webhook_retries import WebhookGaveUp, next_attempt


@pytest.mark.parametrize(("attempt", "delay"), [(1, 5), (2, 300), (3, 3600)])
def test_each_failed_attempt_is_followed_by_the_next_after_its_step_of_the_schedule(attempt, delay):
    # Given a schedule of three waits and a failed attempt within it
    failed = Delivery("video.completed", "vid_abc", attempt=attempt)
    before = time.time()

    # When its next attempt is scheduled
    retry, wait = next_attempt(failed, (5, 300, 3600), last_failure=500)

    # Then it is the same delivery's next attempt, due after the schedule's step for it
    assert (retry.event_type, retry.task_id, retry.attempt) == (
        "video.completed",
        "vid_abc",
        attempt + 1,
    )
    assert retry.message_id == failed.message_id
    assert wait == delay
    assert before + delay <= retry.not_before <= time.time() + delay


def test_once_the_schedule_has_run_out_the_delivery_gives_up_naming_the_last_failure():
    # Given the attempt after the schedule's last wait
    failed = Delivery("video.failed", "vid_abc", attempt=3)

    # When its next attempt is scheduled, Then there is none: it gives up, saying why
    with pytest.raises(
        WebhookGaveUp, match=r"video.failed for vid_abc failed 3 times \(last: 503\)"
    ):
        next_attempt(failed, (5, 300), last_failure=503)
