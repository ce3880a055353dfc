"""veo_relay.download_pace: how long a read may wait, and when a trickle is too slow."""

from __future__ import annotations

import pytest

from veo_relay.deadlines import Deadline
from veo_relay.download_pace import Limit, Pace, ThroughputFloor

FLOOR = ThroughputFloor(bytes_per_second=1000, window_seconds=2, grace_seconds=1)


def test_a_trickle_is_too_slow_once_a_window_after_the_grace_period_closes() -> None:
    # Given a server sending 1 byte every 0.5 s, and a floor of 1,000 B/s over 2 s after 1 s
    pace = Pace(60, None, FLOOR)
    # When the reads are recorded
    verdicts = [pace.record(1, 0.5) for _ in range(6)]
    # Then the grace period and the first 1.5 s of the window pass, its end does not
    assert verdicts[:5] == [None] * 5
    assert verdicts[5] is not None and "under the 1000 bytes/s minimum" in verdicts[5]


def test_a_fast_server_is_never_too_slow() -> None:
    # Given reads bringing 64 KiB each after 10 ms of waiting / When recorded for many windows
    pace = Pace(60, None, FLOOR)
    # Then never too slow
    assert all(pace.record(65536, 0.01) is None for _ in range(2000))


def test_time_not_spent_waiting_for_the_server_does_not_count() -> None:
    # Given reads that find their bytes at once (the reader was held back by the upload)
    pace = Pace(60, None, FLOOR)
    # When a window's worth of waiting brings enough / Then not too slow, however long it took
    assert all(pace.record(2100, 0.001) is None for _ in range(3000))


def test_a_read_waits_at_most_until_the_floor_would_be_missed() -> None:
    # Given a pace with a floor and a far deadline
    pace = Pace(60, Deadline.within(300), FLOOR)
    # When nothing has come yet / Then a read may wait through the grace period and one window
    assert pace.next_wait() == (pytest.approx(3.0), Limit.THROUGHPUT)
    # When the current window has got its due already / Then up to the end of the next one
    assert pace.record(5000, 1.5) is None
    assert pace.next_wait() == (pytest.approx(1.5 + 2.0), Limit.THROUGHPUT)


def test_a_read_waits_at_most_until_the_deadline_or_the_read_timeout() -> None:
    # Given a deadline 0.5 s away / When asked / Then the deadline bounds the wait
    wait, limit = Pace(60, Deadline.within(0.5), FLOOR).next_wait()
    assert limit is Limit.DEADLINE and 0 < wait <= 0.5
    # Given no floor and no deadline / Then the read timeout does
    assert Pace(7, None, None).next_wait() == (7, Limit.READ_TIMEOUT)
    # Given a deadline already past / Then no wait at all
    assert Pace(60, Deadline.within(-1), None).next_wait()[0] < 0


@pytest.mark.parametrize(
    "values", [(0, 1, 0), (1000, 0, 0), (1000, 1, -1)], ids=["rate", "window", "grace"]
)
def test_a_floor_that_judges_nothing_is_refused(values: tuple[int, int, int]) -> None:
    with pytest.raises(ValueError):
        ThroughputFloor(*values)
