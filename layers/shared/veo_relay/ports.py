"""What the use cases depend on outside themselves, each a small Protocol.

The adapters (task_store, video_store, queues, fallback_poller, video_events, telemetry,
submit_slots, providers, downloader) implement them; veo_relay.wiring builds each function's from
its own settings, and tests/fakes.py has an in-memory one of each. A use case takes only the ports
it uses."""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from veo_relay.deadlines import Deadline
    from veo_relay.downloader import VideoStream
    from veo_relay.providers.base import Provider
    from veo_relay.queues import SubmitTicket
    from veo_relay.settings import RateLimit
    from veo_relay.tasks import StoredVideo, Task, TaskError, TaskObject, TaskStatus


class TaskRepository(Protocol):
    """The tasks table. Every change is a conditional write: a transition the task's state does
    not allow changes nothing and answers None (or False)."""

    def create(self, task: Task) -> bool: ...

    def get(self, task_id: str) -> Task: ...

    def list_for_owner(
        self,
        owner: str,
        limit: int,
        cursor: dict[str, Any] | None,
        status: str | None,
        root_id: str | None = None,
    ) -> tuple[list[Task], dict[str, Any] | None]: ...

    def count_by_status(self, owner: str, month: str) -> dict[str, int]: ...

    def claim_submit(self, task_id: str) -> Task | None: ...

    def release_submit(
        self, task_id: str, provider: str, fallback_providers: list[str]
    ) -> None: ...

    def mark_submitted(
        self,
        task_id: str,
        provider_task_id: str,
        provider_model: str | None,
        cost_usd: float | None = None,
    ) -> Task | None: ...

    def note_cost(self, task_id: str, cost_usd: float) -> None: ...

    def record_callback(self, task_id: str) -> Task | None: ...

    def defer_copy(self, task_id: str, quiet_until: str) -> bool: ...

    def renew_lease(self, task_id: str, taken_at: str) -> Task | None: ...

    def mark_storing(self, task_id: str, lease: timedelta) -> Task | None: ...

    def release_storing(
        self,
        task_id: str,
        taken_at: str,
        forget_callback_for: timedelta | None = None,
        back_to: TaskStatus = ...,
    ) -> None: ...

    def answer_callback(self, task_id: str, taken_at: str) -> None: ...

    def start_upgrade(self, task_id: str, source_video_url: str | None) -> Task | None: ...

    def release_upgrade(self, task_id: str) -> None: ...

    def record_upgrade_task(self, task_id: str, upgrade_task_id: str) -> Task | None: ...

    def note_progress(self, task_id: str, progress: int) -> None: ...

    def mark_completed(
        self,
        task_id: str,
        video: StoredVideo,
        provider_cost_usd: float | None = None,
        retention: timedelta | None = None,
    ) -> Task | None: ...

    def mark_failed(
        self, task_id: str, error: TaskError, cost_usd: float | None = None
    ) -> Task | None: ...
    def cancel(self, task_id: str) -> Task | None: ...

    def request_deletion(self, task_id: str) -> Task | None: ...

    def finish_deletion(self, task_id: str) -> Task | None: ...


class SpendRecords(Protocol):
    """Each principal's spending per month (veo_relay.spend_ledger), in micro-dollars."""

    def reserve(self, owner: str, month: str, micros: int, budget_micros: int | None) -> bool: ...

    def adjust(self, owner: str, month: str, committed_micros: int, spent_micros: int) -> None: ...

    def read(self, owner: str, month: str) -> tuple[int, int]: ...

    def mark_settled(self, task_id: str) -> bool: ...


class CreationCounts(Protocol):
    """Creates per principal and minute (veo_relay.creation_quota)."""

    def take(self, owner: str, per_minute: int) -> float | None: ...


class VideoStorage(Protocol):
    """Our bucket: the videos, their manifests, and links to download them."""

    @property
    def bucket(self) -> str: ...

    def store(self, stream: VideoStream, key: str, metadata: dict[str, str]) -> StoredVideo: ...

    def put_document(
        self, key: str, body: bytes, content_type: str, metadata: dict[str, str]
    ) -> bool: ...

    def read_document(self, key: str, max_bytes: int) -> bytes: ...

    def measure(self, key: str) -> tuple[int, str]: ...

    def presigned_url(self, key: str, expires_in: int) -> str: ...

    def delete(self, key: str) -> None: ...


class VideoSource(Protocol):
    """A provider's result video, opened for the copy to stream (veo_relay.downloader)."""

    def open(
        self, url: str, provider: str, deadline: Deadline | None
    ) -> AbstractContextManager[VideoStream]: ...


class CopyRequests(Protocol):
    """The copy queue: `lease` when the requester took the copy's lease for it, `delay_seconds`
    for a copy that must not start sooner."""

    def request_copy(
        self, task_id: str, reason: str, lease: str | None = None, delay_seconds: int = 0
    ) -> None: ...


class SubmitRequests(Protocol):
    """The submit queue: a ticket waits there for its slot."""

    def request_submit(self, ticket: SubmitTicket, slot_at: float) -> None: ...


class SubmitSchedule(Protocol):
    """The providers' submit slots, shared by every function that submits."""

    def reserve(self, provider: str, limit: RateLimit) -> float: ...


class FallbackPoller(Protocol):
    """The state machine watching a task; a second start for a task is a no-op."""

    def start(self, task_id: str, first_wait_seconds: int) -> None: ...


class EventPublisher(Protocol):
    """Our event bus: `detail_type` ("Video Completed", "Video Failed", "Video Deleted") and the
    task object."""

    def publish(self, detail_type: str, task: TaskObject) -> None: ...


class Providers(Protocol):
    """The provider adapters, by name."""

    def get(self, name: str) -> Provider: ...


class CallbackTokenMint(Protocol):
    def mint(self, provider: str, task_id: str, attempt: int) -> str: ...


class Metrics(Protocol):
    """Business metrics (veo_relay.telemetry)."""

    def task_created(self, provider: str) -> None: ...

    def task_completed(
        self,
        provider: str,
        size_bytes: int,
        copy_seconds: float,
        callback_to_stored_seconds: float | None,
        cost_usd: float | None = None,
    ) -> None: ...

    def task_failed(self, provider: str) -> None: ...

    def provider_error(self, provider: str, code: str) -> None: ...

    def video_verified(self, matches: bool) -> None: ...

    def webhook_outcome(self, outcome: str) -> None: ...

    def provider_balance(self, provider: str, amount: float) -> None: ...
