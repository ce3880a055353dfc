"""One daemon thread that runs callables at given monotonic times.

A single heap instead of a `threading.Timer` per task keeps thousands of in-flight benchmark tasks
from costing thousands of sleeping threads.
"""

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(self, name: str) -> None:
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()  # ties on time keep submission order, never compare fns
        self._wakeup = threading.Condition()
        self._stopped = False
        # Held while an action runs, so that `cancel_pending` returns only once none is running.
        self._running = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._wakeup:
            self._stopped = True
            self._wakeup.notify()
        self._thread.join(timeout=5)

    def cancel_pending(self) -> None:
        """Drops every action not yet run, and waits for one running now to end."""
        with self._wakeup:
            self._queue.clear()
        with self._running:
            pass

    def call_at(self, due_monotonic: float, action: Callable[[], None]) -> None:
        with self._wakeup:
            heapq.heappush(self._queue, (due_monotonic, next(self._order), action))
            self._wakeup.notify()

    def _run(self) -> None:
        while True:
            with self._wakeup:
                while not self._stopped and (
                    not self._queue or self._queue[0][0] > time.monotonic()
                ):
                    timeout = self._queue[0][0] - time.monotonic() if self._queue else None
                    self._wakeup.wait(timeout)
                if self._stopped:
                    return
                _, _, action = heapq.heappop(self._queue)
                self._running.acquire()
            try:
                action()
            except Exception:  # one broken action must not stop every later one
                log.exception("scheduled action failed")
            finally:
                self._running.release()
