"""Simulated provider tasks, the record of what clients did with them, and a thread-safe store.

A task's life is fixed when it is created (outcome, delay, video size), and its state at any
moment is computed from the clock, so status reads and callbacks can never disagree.
"""

import threading
import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Literal

from .tags import SimTags

# kie's upgrades are tasks of their own: a 4K one has an id the client sees; a 1080p one is the
# simulator's way to give the upgrade its delay and file.
TaskKind = Literal["generate", "extend", "upgrade_1080p", "upgrade_4k"]
Resolution = Literal["720p", "1080p", "4k"]
UpgradeResolution = Literal["1080p", "4k"]

# Share of the delay a task spends "pending" before it turns "processing".
_PENDING_SHARE = 0.3


class Phase(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class VideoFile:
    name: str  # served at {origin}/files/{name}
    size: int
    seed: str  # iter_mp4(size, seed, resolution=resolution) gives its bytes
    url: str
    resolution: Resolution = "720p"


@dataclass(frozen=True)
class CallbackAttempt:
    url: str
    copy: int  # 1..3; above 1 only for [sim:duplicate-callback]
    attempt: int  # 1 = first try, 2.. = retries
    status_code: int | None  # None when the request itself failed
    error: str | None
    sent_at: float


@dataclass(frozen=True)
class SubmitAttempt:
    """One create request (generate or extend), accepted or not."""

    fingerprint: str  # same route + same JSON body -> same fingerprint
    prompt: str | None
    http_status: int
    response_code: int | None  # the envelope's code, where the protocol has one
    task_id: str | None  # set when the request created a task
    received_at: float


@dataclass(frozen=True)
class UpgradeRequest:
    """One kie get-1080p-video or get-4k-video request for a task, as answered."""

    resolution: UpgradeResolution
    response_code: int  # the envelope's code
    task_id: str | None  # the upgrade's task, once there is one
    received_at: float


@dataclass
class SimTask:
    task_id: str
    provider: str
    kind: TaskKind
    model: str
    prompt: str
    request: dict[str, Any]
    tags: SimTags
    callback_url: str | None
    parent_task_id: str | None
    fingerprint: str
    created_at: float  # Unix seconds
    created_monotonic: float
    delay_seconds: float
    video: VideoFile
    origin_video: VideoFile | None = None  # kie's originUrls (non-16:9 renders)
    status_reads: int = 0
    callbacks: list[CallbackAttempt] = field(default_factory=list)
    upgrade_requests: list[UpgradeRequest] = field(default_factory=list)

    @property
    def finishes_at(self) -> float:
        return self.created_at + self.delay_seconds

    @property
    def finishes_monotonic(self) -> float:
        return self.created_monotonic + self.delay_seconds

    @property
    def fail_code(self) -> str | None:
        return self.tags.fail_code

    def phase(self) -> Phase:
        now = time.monotonic()
        # Same comparison as the scheduler's, so a callback built when due always sees the end.
        if now >= self.finishes_monotonic:
            return Phase.FAILED if self.fail_code else Phase.SUCCEEDED
        if now - self.created_monotonic < self.delay_seconds * _PENDING_SHARE:
            return Phase.PENDING
        return Phase.PROCESSING

    def progress_percent(self) -> int:
        """0 while pending, then rising to 99 until finished, 100 when finished."""
        if self.delay_seconds <= 0:
            return 100
        share = (time.monotonic() - self.created_monotonic) / self.delay_seconds
        if share >= 1:
            return 100
        if share < _PENDING_SHARE:
            return 0
        return max(1, min(99, int(share * 100)))


@dataclass(frozen=True)
class TaskSnapshot:
    """A consistent copy of a task for tests and `GET /_sim/tasks`."""

    provider: str
    task_id: str
    kind: TaskKind
    model: str
    prompt: str
    parent_task_id: str | None
    callback_url: str | None
    state: str
    outcome: Literal["success", "failed"]
    fail_code: str | None
    created_at: float
    finishes_at: float
    submit_count: int  # create requests with this task's fingerprint, including rejected ones
    status_reads: int
    callbacks: tuple[CallbackAttempt, ...]
    video: VideoFile
    origin_video: VideoFile | None
    upgrade_requests: tuple[UpgradeRequest, ...]  # kie's get-1080p-video / get-4k-video calls

    @property
    def requests_1080p(self) -> int:
        return sum(request.resolution == "1080p" for request in self.upgrade_requests)

    @property
    def requests_4k(self) -> int:
        return sum(request.resolution == "4k" for request in self.upgrade_requests)

    @property
    def task_id_1080p(self) -> str | None:
        return self._upgrade_task_id("1080p")

    @property
    def task_id_4k(self) -> str | None:
        return self._upgrade_task_id("4k")

    def _upgrade_task_id(self, resolution: UpgradeResolution) -> str | None:
        return next(
            (
                request.task_id
                for request in self.upgrade_requests
                if request.resolution == resolution and request.task_id
            ),
            None,
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for listed in ("callbacks", "upgrade_requests"):
            data[listed] = list(data[listed])  # as JSON would give it back
        return data


class TaskStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tasks: dict[str, SimTask] = {}
        self._files: dict[str, tuple[VideoFile, SimTask]] = {}
        self._submissions: list[SubmitAttempt] = []
        self._balance: float | None = None

    def balance(self, default: float) -> float:
        """The account's balance: `default` until one is set."""
        with self._lock:
            return default if self._balance is None else self._balance

    def set_balance(self, amount: float) -> None:
        with self._lock:
            self._balance = amount

    def add(self, task: SimTask) -> None:
        with self._lock:
            self._tasks[task.task_id] = task
            for video in (task.video, task.origin_video):
                if video is not None:
                    self._files[video.name] = (video, task)

    def get(self, task_id: str) -> SimTask | None:
        with self._lock:
            return self._tasks.get(task_id)

    def file(self, name: str) -> tuple[VideoFile, SimTask] | None:
        """The video served as `name`, with the task that produced it."""
        with self._lock:
            return self._files.get(name)

    def count_unfinished(self) -> int:
        with self._lock:
            tasks = list(self._tasks.values())
        return sum(task.phase() in (Phase.PENDING, Phase.PROCESSING) for task in tasks)

    def note_status_read(self, task: SimTask) -> int:
        """Count one status read; returns how many reads the task has had, this one included."""
        with self._lock:
            task.status_reads += 1
            return task.status_reads

    def note_callback(self, task: SimTask, attempt: CallbackAttempt) -> None:
        with self._lock:
            task.callbacks.append(attempt)

    def note_upgrade_request(self, task: SimTask, request: UpgradeRequest) -> None:
        with self._lock:
            task.upgrade_requests.append(request)

    def note_submission(self, submission: SubmitAttempt) -> None:
        with self._lock:
            self._submissions.append(submission)

    def submissions(self) -> list[SubmitAttempt]:
        with self._lock:
            return list(self._submissions)

    def snapshots(self) -> list[TaskSnapshot]:
        with self._lock:
            submit_counts: dict[str, int] = {}
            for submission in self._submissions:
                submit_counts[submission.fingerprint] = (
                    submit_counts.get(submission.fingerprint, 0) + 1
                )
            return [
                snapshot(task, submit_counts.get(task.fingerprint, 1))
                for task in self._tasks.values()
            ]


def snapshot(task: SimTask, submit_count: int) -> TaskSnapshot:
    return TaskSnapshot(
        provider=task.provider,
        task_id=task.task_id,
        kind=task.kind,
        model=task.model,
        prompt=task.prompt,
        parent_task_id=task.parent_task_id,
        callback_url=task.callback_url,
        state=task.phase().value,
        outcome="failed" if task.fail_code else "success",
        fail_code=task.fail_code,
        created_at=task.created_at,
        finishes_at=task.finishes_at,
        submit_count=submit_count,
        status_reads=task.status_reads,
        callbacks=tuple(task.callbacks),
        video=task.video,
        origin_video=task.origin_video,
        upgrade_requests=tuple(task.upgrade_requests),
    )
