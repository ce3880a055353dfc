"""How long the next read of a download may wait, and whether the server is sending fast enough.

A server that trickles (a byte every half second) resets every read timeout and would hold a copy
until Lambda kills it. So each read's wait is bounded by the earliest of three limits: the read
timeout, the copy's deadline, and the moment the throughput floor would be missed were nothing
more to come. A wait that ends at that bound ends the download; which limit it was says why.

The throughput floor is judged on the time spent waiting for the server's bytes, not on the wall
clock: while the upload to S3 holds the reader back (its parts are in flight), the server is not
to blame. The first ``grace_seconds`` of waiting are not judged (connection warm-up); after them,
each ``window_seconds`` of waiting must have brought at least ``bytes_per_second`` on average.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from veo_relay.deadlines import Deadline

__all__ = ["Limit", "Pace", "ThroughputFloor"]


class Limit(Enum):
    """What bounds a read's wait (the first one reached ends the download)."""

    READ_TIMEOUT = "read timeout"
    DEADLINE = "deadline"
    THROUGHPUT = "throughput floor"


@dataclass(frozen=True)
class ThroughputFloor:
    bytes_per_second: int
    window_seconds: float
    grace_seconds: float

    def __post_init__(self) -> None:
        if self.bytes_per_second <= 0 or self.window_seconds <= 0 or self.grace_seconds < 0:
            raise ValueError("a throughput floor needs a positive rate and window")


class Pace:
    def __init__(
        self, read_timeout: float, deadline: Deadline | None, floor: ThroughputFloor | None
    ) -> None:
        self._read_timeout = read_timeout
        self._deadline = deadline
        self._floor = floor
        self._waited = 0.0  # in all
        self._window_waited = 0.0  # in the window being judged (after the grace period)
        self._window_bytes = 0

    def next_wait(self) -> tuple[float, Limit]:
        """How long the next read may wait at most, and the limit that sets it (<= 0: none)."""
        limits = [(self._read_timeout, Limit.READ_TIMEOUT)]
        if self._deadline is not None:
            limits.append((self._deadline.remaining(), Limit.DEADLINE))
        if self._floor is not None:
            limits.append((self._until_too_slow(self._floor), Limit.THROUGHPUT))
        return min(limits, key=lambda limit: limit[0])

    def record(self, received: int, waited: float) -> str | None:
        """A read that brought `received` bytes after waiting `waited` seconds; why the download
        is too slow, once a window closes under the floor (else None)."""
        floor = self._floor
        grace_left = max(0.0, floor.grace_seconds - self._waited) if floor else 0.0
        self._waited += waited
        if floor is None or waited <= grace_left:
            return None
        self._window_waited += waited - grace_left
        self._window_bytes += received
        if self._window_waited < floor.window_seconds:
            return None
        window, got = self._window_waited, self._window_bytes
        self._window_waited, self._window_bytes = 0.0, 0
        if got >= floor.bytes_per_second * window:
            return None
        return (
            f"{got} bytes in {window:.1f} s of waiting, under the "
            f"{floor.bytes_per_second} bytes/s minimum"
        )

    def too_slow_after(self, waited: float) -> str:
        """Why, when a read waited to the throughput limit and got nothing."""
        return self.record(0, waited) or "no bytes within the throughput floor's window"

    def _until_too_slow(self, floor: ThroughputFloor) -> float:
        """How much more waiting with nothing received would close a window under the floor."""
        left = max(0.0, floor.grace_seconds - self._waited)
        left += floor.window_seconds - self._window_waited
        if self._window_bytes >= floor.bytes_per_second * floor.window_seconds:
            left += floor.window_seconds  # this window passes; the next, empty one would not
        return left
