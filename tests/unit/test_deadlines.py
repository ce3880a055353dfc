"""The API's time budget: a create answers well before API Gateway's 30 s, and a submit the API
cannot fit in it goes to the submit queue."""

from __future__ import annotations

import time

import pytest

from veo_relay import deadlines
from veo_relay.deadlines import (
    AFTER_SUBMIT_SECONDS,
    API_BUDGET_SECONDS,
    COPY_CLEANUP_SECONDS,
    MIN_INLINE_SUBMIT_SECONDS,
    Deadline,
    api_deadline,
    copy_deadline,
    leaves_time_to_submit,
    submit_deadline,
)
from veo_relay.providers.http import SUBMIT_TIMEOUT
from veo_relay.submission import INLINE_WAIT_SECONDS, submits_inline


def test_the_budget_leaves_api_gateway_room_for_the_longest_cold_start():
    # API Gateway's 30 s include the cold start, whose init phase Lambda caps at 10 s
    assert API_BUDGET_SECONDS + deadlines.LAMBDA_INIT_LIMIT_SECONDS <= 30
    # and the budget holds a slot's wait, a submit and the writes after it
    assert INLINE_WAIT_SECONDS + MIN_INLINE_SUBMIT_SECONDS + AFTER_SUBMIT_SECONDS < (
        API_BUDGET_SECONDS
    )
    # while the submit queue's worker has the full timeouts, whatever the budget
    assert sum(SUBMIT_TIMEOUT) > MIN_INLINE_SUBMIT_SECONDS


def test_a_deadline_counts_down():
    deadline = Deadline.within(5.0)
    assert 4.5 < deadline.remaining() <= 5.0
    assert 1.5 < deadline.earlier(3.0).remaining() <= 2.0
    assert Deadline.within(-1.0).remaining() < 0


@pytest.mark.parametrize(
    ("function_left_ms", "expected"),
    [(30_000, API_BUDGET_SECONDS), (8_000, 7.0)],
    ids=["template-timeout", "shorter-timeout"],
)
def test_a_creates_deadline_is_the_budget_or_what_the_function_has_left(function_left_ms, expected):
    # Given a function with this much of its Timeout left at the request's start
    # When its deadline is set
    deadline = api_deadline(function_left_ms)

    # Then it is the budget, or less when the function's own Timeout would stop it first
    assert expected - 0.5 < deadline.remaining() <= expected


def test_the_provider_must_answer_before_the_writes_after_it_are_due():
    deadline = Deadline.within(10.0)
    assert submit_deadline(deadline).at == deadline.at - AFTER_SUBMIT_SECONDS


def test_without_a_deadline_there_is_always_time():
    assert leaves_time_to_submit(None)
    assert leaves_time_to_submit(None, wait_seconds=3600)


def test_a_slots_wait_counts_against_the_providers_time():
    # Given a caller with just over the provider's minimum left once the later writes are kept
    deadline = Deadline.within(AFTER_SUBMIT_SECONDS + MIN_INLINE_SUBMIT_SECONDS + 0.5)

    # Then it submits itself now, or after a short wait, but not after a longer one
    assert leaves_time_to_submit(deadline)
    assert leaves_time_to_submit(deadline, wait_seconds=0.3)
    assert not leaves_time_to_submit(deadline, wait_seconds=0.7)


def test_a_caller_short_of_time_leaves_even_a_free_slot_to_the_queue():
    # Given a caller whose cold start and AWS calls left it less than the provider needs
    deadline = Deadline.within(AFTER_SUBMIT_SECONDS + MIN_INLINE_SUBMIT_SECONDS - 0.5)

    # Then a slot free right now is still the submit queue's
    assert not submits_inline(time.time(), deadline)
    # while a caller with no deadline (the submit worker) takes it
    assert submits_inline(time.time(), None)


def test_a_far_slot_is_the_queues_whatever_the_time_left():
    far = time.time() + INLINE_WAIT_SECONDS + 1
    assert not submits_inline(far, None)
    assert not submits_inline(far, Deadline.within(API_BUDGET_SECONDS))
    assert submits_inline(time.time() + INLINE_WAIT_SECONDS / 2, Deadline.within(20.0))


def test_a_copys_deadline_keeps_the_cleanup_margin_of_the_functions_timeout():
    # Given a copy worker with 300 s of its Timeout left / When its copy's deadline is taken
    deadline = copy_deadline(300_000)
    # Then the download must end COPY_CLEANUP_SECONDS before the function would be stopped
    assert deadline.remaining() == pytest.approx(300 - COPY_CLEANUP_SECONDS, abs=0.1)
    # And the margin covers the cleanup (abort, lease release), not a copy's worth of time
    assert 5 <= COPY_CLEANUP_SECONDS <= 30
