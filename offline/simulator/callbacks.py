"""Sending completion callbacks (webhooks) the way the providers do, and recording each try."""

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import requests

from .tasks import CallbackAttempt, SimTask, TaskStore

log = logging.getLogger(__name__)

DUPLICATE_COPIES = 3


@dataclass(frozen=True)
class CallbackPlan:
    url: str
    build_body: Callable[[SimTask], dict[str, Any]]  # called when the task finishes
    max_attempts: int  # first try plus retries


class CallbackSender:
    """POSTs callback bodies from daemon threads, so a slow receiver delays only its own task."""

    def __init__(
        self, store: TaskStore, retry_delays: Sequence[float], timeout_seconds: float
    ) -> None:
        self._store = store
        self._retry_delays = tuple(retry_delays)
        self._timeout_seconds = timeout_seconds
        self._stopped = False
        # Set to end the deliveries under way (`cancel`); each delivery holds the one of its start.
        self._cancelled = threading.Event()
        self._lock = threading.Lock()
        self._senders: set[threading.Thread] = set()

    def stop(self) -> None:
        self._stopped = True
        self.cancel(timeout=0)

    def cancel(self, timeout: float) -> None:
        """Ends every delivery under way: no more tries or copies are sent. Waits up to `timeout`
        for a POST in flight to be answered, so that nothing reaches a receiver after this."""
        with self._lock:
            cancelled, self._cancelled = self._cancelled, threading.Event()
            senders = list(self._senders)
        cancelled.set()
        deadline = time.monotonic() + timeout
        for sender in senders:
            sender.join(max(0.0, deadline - time.monotonic()))

    def send(self, task: SimTask, plan: CallbackPlan) -> None:
        with self._lock:
            if self._stopped:
                return
            sender = threading.Thread(
                target=self._send,
                args=(task, plan, self._cancelled),
                name=f"callback-{task.task_id}",
                daemon=True,
            )
            self._senders.add(sender)
        sender.start()

    def _send(self, task: SimTask, plan: CallbackPlan, cancelled: threading.Event) -> None:
        try:
            self._deliver_copies(task, plan, cancelled)
        finally:
            with self._lock:
                self._senders.discard(threading.current_thread())

    def deliver(self, task: SimTask, plan: CallbackPlan) -> None:
        """Sends the callback (each copy, with its retries) in the calling thread."""
        with self._lock:
            cancelled = self._cancelled
        self._deliver_copies(task, plan, cancelled)

    def _deliver_copies(
        self, task: SimTask, plan: CallbackPlan, cancelled: threading.Event
    ) -> None:
        copies = DUPLICATE_COPIES if task.tags.duplicate_callback else 1
        body = plan.build_body(task)
        for copy in range(1, copies + 1):
            self._deliver(task, plan, body, copy, cancelled)

    def _deliver(
        self,
        task: SimTask,
        plan: CallbackPlan,
        body: dict[str, Any],
        copy: int,
        cancelled: threading.Event,
    ) -> None:
        for attempt in range(1, plan.max_attempts + 1):
            if cancelled.is_set():
                return
            status_code, error = self._post(plan.url, body)
            self._store.note_callback(
                task, CallbackAttempt(plan.url, copy, attempt, status_code, error, time.time())
            )
            if status_code is not None and 200 <= status_code < 300:
                return
            if attempt < plan.max_attempts:
                cancelled.wait(self._retry_delay(attempt))
        log.info("callback for %s gave up after %d attempts", task.task_id, plan.max_attempts)

    def _retry_delay(self, failed_attempt: int) -> float:
        if not self._retry_delays:
            return 0.0
        return self._retry_delays[min(failed_attempt, len(self._retry_delays)) - 1]

    def _post(self, url: str, body: dict[str, Any]) -> tuple[int | None, str | None]:
        try:
            response = requests.post(url, json=body, timeout=self._timeout_seconds)
        except requests.RequestException as exc:
            return None, f"{type(exc).__name__}: {exc}"
        return response.status_code, None
