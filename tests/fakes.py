"""In-memory fakes of the ports (veo_relay.ports), for unit tests of the use cases: no sockets,
no moto. Each behaves as its AWS adapter does where a use case can tell (conditional writes,
create-only documents, a second poller start a no-op) and records what it was asked."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from veo_relay.callback_tokens import CallbackTokens
from veo_relay.deadlines import Deadline
from veo_relay.errors import TaskNotFound
from veo_relay.pricing import PriceTable
from veo_relay.provider_results import ProviderResults
from veo_relay.providers.base import (
    Balance,
    CallbackNotice,
    Capabilities,
    ExtensionRequest,
    GenerationRequest,
    ProviderState,
    ProviderStatus,
    Submission,
    UpgradeStarted,
)
from veo_relay.queues import SubmitTicket
from veo_relay.settings import RateLimit
from veo_relay.spending import BudgetPolicy, Spending
from veo_relay.task_states import TaskWrites, Transition
from veo_relay.tasks import (
    StoredVideo,
    Task,
    TaskError,
    TaskKind,
    TaskStatus,
    is_task_id,
    utc_now,
)


class FakeTasks(TaskWrites):
    """The tasks table in memory: each state change is the transition of veo_relay.task_states
    the real store writes, applied only when its condition holds (else nothing changes and the
    answer is None)."""

    def __init__(self, *tasks: Task) -> None:
        self.items: dict[str, Task] = {task.id: copy.deepcopy(task) for task in tasks}
        self.writes: list[str] = []

    def create(self, task: Task) -> bool:
        if task.id in self.items:
            return False
        self.items[task.id] = copy.deepcopy(task)
        self.writes.append("create")
        return True

    def get(self, task_id: str) -> Task:
        if not is_task_id(task_id) or task_id not in self.items:
            raise TaskNotFound(task_id)
        return copy.deepcopy(self.items[task_id])

    def list_for_owner(
        self,
        owner: str,
        limit: int,
        cursor: dict[str, Any] | None,
        status: str | None,
        root_id: str | None = None,
    ) -> tuple[list[Task], dict[str, Any] | None]:
        matching = sorted(
            (
                t
                for t in self.items.values()
                if t.owner == owner
                and (root_id is None or t.root_id == root_id)
                and (status is None or t.status.value == status)
                and not t.is_gone(datetime.now(UTC))
            ),
            key=lambda t: (t.created_at, t.id),
            reverse=True,
        )
        if cursor is not None:
            after = (cursor["created_at"]["S"], cursor["id"]["S"])
            matching = [t for t in matching if (t.created_at, t.id) < after]
        page = matching[:limit]
        last = None
        if len(matching) > limit:
            partition = {"root_id": root_id} if root_id else {"owner": owner}
            last = {
                "id": {"S": page[-1].id},
                "created_at": {"S": page[-1].created_at},
                **{k: {"S": v} for k, v in partition.items()},
            }
        return [copy.deepcopy(t) for t in page], last

    def count_by_status(self, owner: str, month: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for task in self.items.values():
            if task.owner == owner and task.created_at.startswith(month):
                counts[task.status.value] = counts.get(task.status.value, 0) + 1
        return counts

    def apply(self, task_id: str, transition: Transition, values: Mapping[str, Any]) -> Task | None:
        task = self.items.get(task_id)
        if task is None or not transition.allows(task, values):
            return None
        self.items[task_id] = transition.applied(task, values)
        self.writes.append(transition.name)
        return copy.deepcopy(self.items[task_id])


@dataclass
class FakeVideos:
    """Our bucket: objects by key (bytes, metadata); documents create-only."""

    bucket: str = "videos"
    objects: dict[str, tuple[bytes, dict[str, str]]] = field(default_factory=dict)

    def store(self, stream: Any, key: str, metadata: dict[str, str]) -> StoredVideo:
        if key not in self.objects:
            self.objects[key] = (stream.read(), dict(metadata))
        body = self.objects[key][0]
        return StoredVideo(
            self.bucket, key, len(body), hashlib.sha256(body).hexdigest(), "video/mp4"
        )

    def put_document(
        self, key: str, body: bytes, content_type: str, metadata: dict[str, str]
    ) -> bool:
        if key in self.objects:
            return False
        self.objects[key] = (body, dict(metadata))
        return True

    def read_document(self, key: str, max_bytes: int) -> bytes:
        body = self.objects[key][0]
        if len(body) > max_bytes:
            raise ValueError(f"{key} is larger than {max_bytes} bytes")
        return body

    def measure(self, key: str) -> tuple[int, str]:
        body = self.objects[key][0]
        return len(body), hashlib.sha256(body).hexdigest()

    def presigned_url(self, key: str, expires_in: int) -> str:
        return f"https://s3.example/{self.bucket}/{key}?expires={expires_in}"

    def delete(self, key: str) -> None:
        self.objects.pop(key, None)  # S3's DeleteObject: a missing key is no error


@dataclass
class FakeSources:
    """Providers' result videos by URL: bytes, or the DownloadError opening it raises."""

    videos: dict[str, bytes | Exception] = field(default_factory=dict)
    opened: list[tuple[str, str]] = field(default_factory=list)

    @contextlib.contextmanager
    def open(self, url: str, provider: str, deadline: Deadline | None) -> Iterator[io.BytesIO]:
        self.opened.append((url, provider))
        video = self.videos[url]
        if isinstance(video, Exception):
            raise video
        yield io.BytesIO(video)


@dataclass(frozen=True)
class CopyRequest:
    task_id: str
    reason: str
    lease: str | None
    delay_seconds: int


@dataclass
class FakeCopyQueue:
    sent: list[CopyRequest] = field(default_factory=list)

    def request_copy(
        self, task_id: str, reason: str, lease: str | None = None, delay_seconds: int = 0
    ) -> None:
        self.sent.append(CopyRequest(task_id, reason, lease, delay_seconds))


@dataclass
class FakeSubmitQueue:
    sent: list[tuple[SubmitTicket, float]] = field(default_factory=list)

    def request_submit(self, ticket: SubmitTicket, slot_at: float) -> None:
        self.sent.append((ticket, slot_at))


@dataclass
class FakeSlots:
    """Every slot `delay` seconds from now (0: now), recording each reservation."""

    delay: float = 0.0
    reserved: list[str] = field(default_factory=list)

    def reserve(self, provider: str, limit: RateLimit) -> float:
        self.reserved.append(provider)
        return time.time() + self.delay


@dataclass
class FakeFallbackPoller:
    """The state machine: one execution per task, a second start a no-op."""

    started: dict[str, int] = field(default_factory=dict)
    fails: bool = False

    def start(self, task_id: str, first_wait_seconds: int) -> None:
        if self.fails:
            raise ConnectionError("Step Functions is unavailable")
        self.started.setdefault(task_id, first_wait_seconds)


@dataclass
class FakeEvents:
    published: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def publish(self, detail_type: str, task: dict[str, Any]) -> None:
        self.published.append((detail_type, task))


@dataclass
class FakeMetrics:
    recorded: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)

    def names(self) -> list[str]:
        return [name for name, _ in self.recorded]

    def task_created(self, provider: str) -> None:
        self.recorded.append(("task_created", (provider,)))

    def task_completed(
        self,
        provider: str,
        size_bytes: int,
        copy_seconds: float,
        callback_to_stored_seconds: float | None,
        cost_usd: float | None = None,
    ) -> None:
        self.recorded.append(("task_completed", (provider, size_bytes)))
        if cost_usd is not None:
            self.recorded.append(("task_cost", (provider, cost_usd)))

    def task_failed(self, provider: str) -> None:
        self.recorded.append(("task_failed", (provider,)))

    def provider_error(self, provider: str, code: str) -> None:
        self.recorded.append(("provider_error", (provider, code)))

    def video_verified(self, matches: bool) -> None:
        self.recorded.append(("video_verified", (matches,)))

    def webhook_outcome(self, outcome: str) -> None:
        self.recorded.append(("webhook_outcome", (outcome,)))

    def provider_balance(self, provider: str, amount: float) -> None:
        self.recorded.append(("provider_balance", (provider, amount)))


@dataclass
class FakeProvider:
    """A provider whose answers a test sets: `statuses` are returned in turn by read_status,
    `submit_errors` raised in turn by the submits (then each submit succeeds)."""

    name: str = "apixo"
    supports_callbacks: bool = True
    capabilities: Capabilities = field(default_factory=Capabilities)
    statuses: list[ProviderStatus | Exception] = field(default_factory=list)
    submit_errors: list[Exception] = field(default_factory=list)
    notice_task_id: str | None = None
    submitted: list[tuple[GenerationRequest | ExtensionRequest, str | None]] = field(
        default_factory=list
    )
    status_reads: list[str] = field(default_factory=list)
    # Set for a provider with upgraded resolutions (Capabilities.upgraded_resolutions).
    upgrades: FakeUpgrades | None = None
    # Set for a provider with a balance route.
    balance: FakeBalance | None = None

    def submit_generation(
        self, request: GenerationRequest, callback_url: str | None, deadline: Deadline | None = None
    ) -> Submission:
        return self._submit(request, callback_url)

    def submit_extension(
        self, request: ExtensionRequest, callback_url: str | None, deadline: Deadline | None = None
    ) -> Submission:
        return self._submit(request, callback_url)

    def read_status(self, provider_task_id: str, kind: TaskKind) -> ProviderStatus:
        self.status_reads.append(provider_task_id)
        answer = self.statuses.pop(0) if self.statuses else ProviderStatus(ProviderState.RUNNING)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def parse_callback(self, body: bytes, headers: Any) -> CallbackNotice:
        return CallbackNotice(self.notice_task_id)

    def _submit(
        self, request: GenerationRequest | ExtensionRequest, callback_url: str | None
    ) -> Submission:
        if self.submit_errors:
            raise self.submit_errors.pop(0)
        self.submitted.append((request, callback_url))
        return Submission(f"{self.name}-task-{len(self.submitted)}", "veo3_fast")


@dataclass
class FakeUpgrades:
    """Upgrades whose answers a test sets: `started` is the start's answer (or its error),
    `statuses` are returned in turn by read_upgrade (then: running)."""

    started: UpgradeStarted | Exception = field(
        default_factory=lambda: UpgradeStarted(
            "upgrade-task-1", ProviderStatus(ProviderState.RUNNING)
        )
    )
    statuses: list[ProviderStatus | Exception] = field(default_factory=list)
    starts: list[tuple[str, str, str | None]] = field(default_factory=list)
    reads: list[tuple[str, str, str | None]] = field(default_factory=list)

    def start_upgrade(
        self, provider_task_id: str, resolution: str, callback_url: str | None
    ) -> UpgradeStarted:
        self.starts.append((provider_task_id, resolution, callback_url))
        if isinstance(self.started, Exception):
            raise self.started
        return self.started

    def read_upgrade(
        self, provider_task_id: str, resolution: str, upgrade_task_id: str | None
    ) -> ProviderStatus:
        self.reads.append((provider_task_id, resolution, upgrade_task_id))
        answer = self.statuses.pop(0) if self.statuses else ProviderStatus(ProviderState.RUNNING)
        if isinstance(answer, Exception):
            raise answer
        return answer


@dataclass
class FakeBalance:
    """A balance route answering `answer` (or raising it) to every read."""

    answer: Balance | Exception
    reads: int = 0

    def read_balance(self) -> Balance:
        self.reads += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@dataclass
class FakeProviders:
    by_name: dict[str, FakeProvider] = field(default_factory=dict)

    def get(self, name: str) -> FakeProvider:
        return self.by_name.setdefault(name, FakeProvider(name=name))


def succeeded(*urls: str) -> ProviderStatus:
    return ProviderStatus(ProviderState.SUCCEEDED, video_urls=urls)


def failed(code: str = "content_violation", message: str = "flagged") -> ProviderStatus:
    return ProviderStatus(ProviderState.FAILED, error=TaskError(code, message))


def make_task(status: TaskStatus = TaskStatus.QUEUED, **fields: Any) -> Task:
    """A task as the API records one, in `status`; any field may be given."""
    now = utc_now()
    task = Task(
        id=fields.pop("id", "vid_" + "a" * 24),
        owner=fields.pop("owner", "arn:aws:iam::123456789012:user/alice"),
        status=status,
        provider=fields.pop("provider", "apixo"),
        prompt=fields.pop("prompt", "a lighthouse at dawn"),
        mode=fields.pop("mode", "fast"),
        generation_type=fields.pop("generation_type", "TEXT_2_VIDEO"),
        aspect_ratio=fields.pop("aspect_ratio", "16:9"),
        root_id=fields.pop("root_id", ""),
        created_at=fields.pop("created_at", now),
        updated_at=fields.pop("updated_at", now),
    )
    task.root_id = task.root_id or task.id
    if status is not TaskStatus.QUEUED:
        task.provider_task_id = "provider-task-1"
        task.submit_claimed_at = now
        task.submit_attempt = 1
    return replace(task, **fields)


def results_of(tasks: FakeTasks, providers: FakeProviders) -> ProviderResults:
    """The providers' results as the copy and the poller read them, with a test token key."""
    return ProviderResults(tasks, providers, CallbackTokens(lambda: b"k" * 32))


def default_prices() -> PriceTable:
    """The template's PriceTable default, as the functions parse it."""
    from offline.template import load_template
    from veo_relay.providers.registry import SPECS

    raw = load_template().parameter_defaults()["PriceTable"]
    return PriceTable.parse(raw, {spec.name: spec.capabilities for spec in SPECS})


class FakeSpendLedger:
    """The spend# items in memory: a reservation is refused, and changes nothing, when it would
    pass the budget, as the conditional UpdateItem is."""

    def __init__(self) -> None:
        self.months: dict[tuple[str, str], list[int]] = {}  # -> [committed, spent]
        self.settled: set[str] = set()

    def reserve(self, owner: str, month: str, micros: int, budget_micros: int | None) -> bool:
        counters = self.months.setdefault((owner, month), [0, 0])
        if budget_micros is not None and counters[0] + micros > budget_micros:
            return False
        counters[0] += micros
        return True

    def adjust(self, owner: str, month: str, committed_micros: int, spent_micros: int) -> None:
        counters = self.months.setdefault((owner, month), [0, 0])
        counters[0] += committed_micros
        counters[1] += spent_micros

    def read(self, owner: str, month: str) -> tuple[int, int]:
        committed, spent = self.months.get((owner, month), [0, 0])
        return committed, spent

    def mark_settled(self, task_id: str) -> bool:
        if task_id in self.settled:
            return False
        self.settled.add(task_id)
        return True


@dataclass
class FakeCreationCounts:
    """A minute that never ends unless the test says so."""

    taken: dict[str, int] = field(default_factory=dict)

    def take(self, owner: str, per_minute: int) -> float | None:
        if self.taken.get(owner, 0) >= per_minute:
            return 42.0
        self.taken[owner] = self.taken.get(owner, 0) + 1
        return None


def spending(
    ledger: FakeSpendLedger | None = None,
    budget_micros: int | None = None,
    overrides: Mapping[str, int] | None = None,
    creates_per_minute: int | None = None,
    counts: FakeCreationCounts | None = None,
) -> Spending:
    return Spending(
        ledger=ledger or FakeSpendLedger(),
        counts=counts or FakeCreationCounts(),
        prices=default_prices(),
        budgets=BudgetPolicy(budget_micros, dict(overrides or {})),
        creates_per_minute=creates_per_minute,
    )
