"""Sliding-window rate limiting, as the providers document it ("N requests per T seconds")."""

import threading
import time
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class RateLimit:
    max_requests: int
    window_seconds: float


class SlidingWindowLimiter:
    """Admits at most `limit.max_requests` events in any `limit.window_seconds` span.

    Rejected attempts are not recorded, so a client that backs off regains capacity as soon as
    old admissions slide out of the window (kie: "excess → 429, not queued").
    """

    def __init__(self, limit: RateLimit) -> None:
        self._limit = limit
        self._admitted: deque[float] = deque()
        self._lock = threading.Lock()

    def try_acquire(self) -> bool:
        now = time.monotonic()
        with self._lock:
            while self._admitted and now - self._admitted[0] >= self._limit.window_seconds:
                self._admitted.popleft()
            if len(self._admitted) >= self._limit.max_requests:
                return False
            self._admitted.append(now)
            return True
