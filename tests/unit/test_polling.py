"""The fallback poller's wait between two provider reads."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from veo_relay.polling import next_wait_seconds
from veo_relay.settings import PollSettings

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
FAR = NOW + timedelta(hours=1)
POLL = PollSettings(interval_seconds=15, max_interval_seconds=120, deadline_seconds=2700)


@pytest.fixture(autouse=True)
def seeded() -> None:
    random.seed(1234)


def waits(attempt: int, samples: int = 300, deadline: datetime = FAR) -> list[int]:
    return [next_wait_seconds(POLL, attempt, NOW, deadline) for _ in range(samples)]


def test_the_first_wait_is_the_interval_give_or_take_the_jitter():
    # When the poller asks after its first read
    observed = waits(0)

    # Then it waits about the interval: never outside +-20%
    assert min(observed) >= round(15 * 0.8)
    assert max(observed) <= round(15 * 1.2)


def test_waits_grow_with_the_attempt():
    # When later attempts ask, each sampled many times
    averages = [sum(waits(a)) / 300 for a in range(5)]

    # Then the average wait grows with every attempt until the cap
    assert averages == sorted(averages)
    assert averages[4] > averages[0] * 3


@pytest.mark.parametrize("attempt", [6, 10, 50, 500])
def test_waits_are_capped_by_the_maximum_interval(attempt):
    # When the attempt number is large (1.5**attempt would be huge)
    observed = waits(attempt)

    # Then the wait stays within the jittered maximum interval
    assert max(observed) <= round(120 * 1.2)
    assert min(observed) >= round(120 * 0.8)


def test_waits_are_jittered():
    # When the same attempt asks many times
    observed = waits(3)

    # Then the answers differ (executions started together do not poll together)
    assert len(set(observed)) > 5


@pytest.mark.parametrize("seconds_left", [0.2, 1, 5, 14, 40])
def test_a_wait_never_goes_past_the_deadline(seconds_left):
    # Given a deadline closer than the next wait would be
    deadline = NOW + timedelta(seconds=seconds_left)

    # When the poller asks, at any attempt
    observed = [w for attempt in (0, 3, 10) for w in waits(attempt, 50, deadline)]

    # Then it never waits past the deadline, yet always waits at least a second
    assert all(1 <= w <= max(1, round(seconds_left)) for w in observed)


def test_a_wait_after_the_deadline_is_the_usual_interval():
    # Given a deadline already passed (the poller only goes on then while a copy finishes)
    deadline = NOW - timedelta(seconds=30)

    # Then it checks again at the usual pace, not in a one-second loop
    observed = waits(0, 50, deadline)
    low, high = POLL.interval_seconds * 0.8 - 1, POLL.interval_seconds * 1.2
    assert all(low <= w <= high for w in observed)
    assert max(observed) > 1


def test_a_wait_is_a_whole_number_of_seconds():
    assert all(isinstance(w, int) for w in waits(2, 50))


def test_a_wait_never_goes_past_a_deadline_between_whole_seconds():
    # Given a deadline 14.6 seconds away, closer than the next wait would be
    deadline = NOW + timedelta(seconds=14.6)

    # When the poller asks at a later attempt
    observed = waits(3, 20, deadline)

    # Then no wait ends after the deadline
    assert max(observed) <= 14.6
