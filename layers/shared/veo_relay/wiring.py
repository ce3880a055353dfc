"""Each function's use cases, wired in one place from its own settings (veo_relay.settings).

One builder per function of template.yaml, run at the function's first invocation: its settings
are validated then, whole (a missing variable fails the cold start, naming it), and it gets the
adapters its use cases take and no others. AWS clients are made at their first call, so that an
invocation pays only for the services it uses.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from veo_relay.settings import (
    ApiSettings,
    BalanceReaderSettings,
    CallbackSettings,
    CopyWorkerSettings,
    DownloadSettings,
    EventSettings,
    FailureAnnouncerSettings,
    FallbackPollerStart,
    PollerSettings,
    ProviderAccess,
    ProviderSettings,
    SpendSettlerSettings,
    SubmitWorkerSettings,
    VideoConsumerSettings,
    WebhookSenderSettings,
    environment,
    origin_of,
)

if TYPE_CHECKING:
    from veo_relay.balances import BalanceReader
    from veo_relay.callback_tokens import CallbackTokens
    from veo_relay.callbacks import CallbackIntake
    from veo_relay.catalog import ProviderCatalog
    from veo_relay.copying import VideoCopier
    from veo_relay.creation import TaskCreation
    from veo_relay.downloader import DownloadPolicy
    from veo_relay.failure_announcement import FailureAnnouncer
    from veo_relay.fallback_poller import FallbackPollerExecutions
    from veo_relay.lifecycle import TaskLifecycle
    from veo_relay.polling import Poller
    from veo_relay.pricing import PriceTable
    from veo_relay.provider_results import ProviderResults
    from veo_relay.providers import ProviderDirectory
    from veo_relay.queries import TaskQueries
    from veo_relay.secret_values import SecretValues
    from veo_relay.spend_ledger import SpendLedger
    from veo_relay.spend_settlement import SpendSettler
    from veo_relay.submission import Submitter
    from veo_relay.task_store import TaskStore
    from veo_relay.telemetry import Telemetry
    from veo_relay.usage import UsageReport
    from veo_relay.video_check import StoredVideoCheck
    from veo_relay.video_store import VideoStore
    from veo_relay.webhook_secrets import WebhookSecrets
    from veo_relay.webhooks import WebhookSender

T = TypeVar("T")


class PerFunction(Generic[T]):
    """A value built once per Lambda function. A Lambda process runs one function, so this is
    one value per process there; the offline stack runs every function in one process, each
    with its own environment (AWS_LAMBDA_FUNCTION_NAME included), and each gets its own."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._values: dict[str, T] = {}

    def __call__(self) -> T:
        name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        if name not in self._values:
            self._values[name] = self._build()
        return self._values[name]

    def cache_clear(self) -> None:
        self._values.clear()


# ----------------------------------------------------------------------------------- functions


@dataclass(frozen=True)
class Api:
    settings: ApiSettings
    tasks: TaskStore
    videos: VideoStore
    creation: TaskCreation
    queries: TaskQueries
    catalog: ProviderCatalog
    usage: UsageReport
    webhook_secrets: WebhookSecrets
    callback_tokens: CallbackTokens
    fallback_poller: FallbackPollerExecutions
    lifecycle: TaskLifecycle


@dataclass(frozen=True)
class Callback:
    settings: CallbackSettings
    tasks: TaskStore
    callback_tokens: CallbackTokens
    intake: CallbackIntake


@dataclass(frozen=True)
class SubmitWorker:
    settings: SubmitWorkerSettings
    tasks: TaskStore
    submitter: Submitter


@dataclass(frozen=True)
class CopyWorker:
    settings: CopyWorkerSettings
    tasks: TaskStore
    videos: VideoStore
    copier: VideoCopier


@dataclass(frozen=True)
class PollerStep:
    settings: PollerSettings
    tasks: TaskStore
    poller: Poller


@dataclass(frozen=True)
class VideoConsumer:
    settings: VideoConsumerSettings
    videos: VideoStore
    check: StoredVideoCheck


@dataclass(frozen=True)
class FailureAnnouncerFunction:
    settings: FailureAnnouncerSettings
    announcer: FailureAnnouncer


@dataclass(frozen=True)
class SpendSettlerFunction:
    settings: SpendSettlerSettings
    settler: SpendSettler


@dataclass(frozen=True)
class WebhookSenderFunction:
    settings: WebhookSenderSettings
    tasks: TaskStore
    webhook_secrets: WebhookSecrets
    sender: WebhookSender


@dataclass(frozen=True)
class BalanceReaderFunction:
    settings: BalanceReaderSettings
    reader: BalanceReader


@PerFunction
def api() -> Api:
    from veo_relay.catalog import ProviderCatalog
    from veo_relay.creation import TaskCreation
    from veo_relay.creation_quota import CreationQuota
    from veo_relay.spending import BudgetPolicy, Spending
    from veo_relay.usage import UsageReport

    settings = ApiSettings.from_env(environment())
    money = settings.money
    secrets = _secret_values(settings.secrets_cache_seconds)
    tasks = _task_store(settings.tasks_table)
    videos = _video_store(settings.video_bucket)
    providers = _providers(settings.access, secrets)
    tokens = _callback_tokens(secrets, settings.callback_token_key_secret_arn)
    fallback_poller = _fallback_poller(settings.fallback_poller)
    submitter = _submitter(
        tasks,
        settings.tasks_table,
        providers,
        settings.access,
        settings.submit_queue_url,
        fallback_poller,
        tokens,
        settings.metrics_namespace,
        money.prices,
    )
    ledger = _spend_ledger(settings.tasks_table)
    budgets = BudgetPolicy(money.monthly_budget_micros, money.budget_overrides_micros)
    return Api(
        settings=settings,
        tasks=tasks,
        videos=videos,
        creation=TaskCreation(
            tasks=tasks,
            providers=providers,
            submitter=submitter,
            metrics=submitter.metrics,
            spending=Spending(
                ledger=ledger,
                counts=CreationQuota(settings.tasks_table),  # counted in the tasks table too
                prices=money.prices,
                budgets=budgets,
                creates_per_minute=money.creates_per_minute,
            ),
            provider_names=frozenset(settings.access.providers),
            default_provider=settings.default_provider,
            provider_preference=settings.provider_preference,
            webhook_allow_loopback=settings.webhook_allow_loopback,
        ),
        queries=_queries(tasks, videos, settings.presign_expires_seconds),
        catalog=ProviderCatalog(
            providers=providers,
            provider_settings=settings.access.providers,
            provider_preference=settings.provider_preference,
            default_provider=settings.default_provider,
        ),
        usage=UsageReport(ledger=ledger, tasks=tasks, budgets=budgets),
        webhook_secrets=_webhook_secrets(
            settings.principals_table, secrets, settings.webhook_master_key_secret_arn
        ),
        callback_tokens=tokens,
        fallback_poller=fallback_poller,
        lifecycle=_lifecycle(tasks, videos, settings.events),
    )


def _lifecycle(tasks: TaskStore, videos: VideoStore, events: EventSettings) -> TaskLifecycle:
    from veo_relay.lifecycle import TaskLifecycle
    from veo_relay.video_events import VideoEvents

    return TaskLifecycle(
        tasks=tasks,
        videos=videos,
        events=VideoEvents(_client("events"), events.bus_name, events.source),
    )


@PerFunction
def callback() -> Callback:
    from veo_relay.callbacks import CallbackIntake
    from veo_relay.queues import CopyQueue

    settings = CallbackSettings.from_env(environment())
    secrets = _secret_values(settings.secrets_cache_seconds)
    tasks = _task_store(settings.tasks_table)
    tokens = _callback_tokens(secrets, settings.callback_token_key_secret_arn)
    return Callback(
        settings=settings,
        tasks=tasks,
        callback_tokens=tokens,
        intake=CallbackIntake(
            tasks=tasks,
            providers=_providers(settings.access, secrets),
            provider_names=frozenset(settings.access.providers),
            callback_tokens=tokens,
            copy_queue=CopyQueue(_client("sqs"), settings.copy_queue_url),
        ),
    )


@PerFunction
def submit_worker() -> SubmitWorker:
    settings = SubmitWorkerSettings.from_env(environment())
    secrets = _secret_values(settings.secrets_cache_seconds)
    tasks = _task_store(settings.tasks_table)
    submitter = _submitter(
        tasks,
        settings.tasks_table,
        _providers(settings.access, secrets),
        settings.access,
        settings.submit_queue_url,
        _fallback_poller(settings.fallback_poller),
        _callback_tokens(secrets, settings.callback_token_key_secret_arn),
        settings.metrics_namespace,
        settings.prices,
    )
    return SubmitWorker(settings=settings, tasks=tasks, submitter=submitter)


@PerFunction
def copy_worker() -> CopyWorker:
    from veo_relay.copying import VideoCopier
    from veo_relay.downloader import ProviderVideos

    settings = CopyWorkerSettings.from_env(environment())
    tasks = _task_store(settings.tasks_table)
    videos = _video_store(settings.video_bucket)
    providers = settings.access.providers
    secrets = _secret_values(settings.secrets_cache_seconds)
    return CopyWorker(
        settings=settings,
        tasks=tasks,
        videos=videos,
        copier=VideoCopier(
            tasks=tasks,
            videos=videos,
            results=_provider_results(
                tasks, settings.access, secrets, settings.callback_token_key_secret_arn
            ),
            metrics=_metrics(settings.metrics_namespace),
            # The policy is looked up at each call: a test may replace it in a built function.
            sources=ProviderVideos(
                lambda name: download_policy(settings.download, providers[name])
            ),
            copy_lease=timedelta(seconds=settings.copy_lease_seconds),
            callback_quiet=timedelta(seconds=settings.callback_quiet_seconds),
            video_retention=timedelta(days=settings.video_retention_days)
            if settings.video_retention_days
            else None,
        ),
    )


@PerFunction
def poller() -> PollerStep:
    from veo_relay.polling import Poller
    from veo_relay.queues import CopyQueue

    settings = PollerSettings.from_env(environment())
    tasks = _task_store(settings.tasks_table)
    secrets = _secret_values(settings.secrets_cache_seconds)
    return PollerStep(
        settings=settings,
        tasks=tasks,
        poller=Poller(
            tasks=tasks,
            results=_provider_results(
                tasks, settings.access, secrets, settings.callback_token_key_secret_arn
            ),
            copy_queue=CopyQueue(_client("sqs"), settings.copy_queue_url),
            metrics=_metrics(settings.metrics_namespace),
            poll=settings.poll,
            copy_lease=timedelta(seconds=settings.copy_lease_seconds),
        ),
    )


@PerFunction
def video_consumer() -> VideoConsumer:
    from veo_relay.video_check import StoredVideoCheck
    from veo_relay.video_events import VideoEvents

    settings = VideoConsumerSettings.from_env(environment())
    videos = _video_store(settings.video_bucket)
    events = VideoEvents(_client("events"), settings.events.bus_name, settings.events.source)
    return VideoConsumer(
        settings=settings,
        videos=videos,
        check=StoredVideoCheck(
            videos=videos, events=events, metrics=_metrics(settings.metrics_namespace)
        ),
    )


@PerFunction
def failure_announcer() -> FailureAnnouncerFunction:
    from veo_relay.failure_announcement import FailureAnnouncer
    from veo_relay.video_events import VideoEvents

    settings = FailureAnnouncerSettings.from_env(environment())
    events = VideoEvents(_client("events"), settings.events.bus_name, settings.events.source)
    return FailureAnnouncerFunction(
        settings=settings,
        announcer=FailureAnnouncer(events=events, metrics=_metrics(settings.metrics_namespace)),
    )


@PerFunction
def spend_settler() -> SpendSettlerFunction:
    from veo_relay.spend_settlement import SpendSettler

    settings = SpendSettlerSettings.from_env(environment())
    return SpendSettlerFunction(
        settings=settings,
        settler=SpendSettler(ledger=_spend_ledger(settings.tasks_table), prices=settings.prices),
    )


@PerFunction
def webhook_sender() -> WebhookSenderFunction:
    from veo_relay.webhook_messages import WebhookQueue
    from veo_relay.webhooks import WebhookSender

    settings = WebhookSenderSettings.from_env(environment())
    tasks = _task_store(settings.tasks_table)
    webhook_secrets = _webhook_secrets(
        settings.principals_table,
        _secret_values(settings.secrets_cache_seconds),
        settings.webhook_master_key_secret_arn,
    )
    return WebhookSenderFunction(
        settings=settings,
        tasks=tasks,
        webhook_secrets=webhook_secrets,
        sender=WebhookSender(
            tasks=tasks,
            queries=_queries(
                tasks, _video_store(settings.video_bucket), settings.presign_expires_seconds
            ),
            webhook_secrets=webhook_secrets,
            webhook_queue=WebhookQueue(_client("sqs"), settings.delivery.queue_url),
            metrics=_metrics(settings.metrics_namespace),
            delivery=settings.delivery,
            allow_loopback=settings.webhook_allow_loopback,
        ),
    )


@PerFunction
def balance_reader() -> BalanceReaderFunction:
    from veo_relay.balances import BalanceReader

    settings = BalanceReaderSettings.from_env(environment())
    return BalanceReaderFunction(
        settings=settings,
        reader=BalanceReader(
            providers=_providers(settings.access, _secret_values(settings.secrets_cache_seconds)),
            provider_names=tuple(settings.access.providers),
            metrics=_metrics(settings.metrics_namespace),
        ),
    )


FUNCTIONS: tuple[PerFunction[Any], ...] = (
    api,
    callback,
    submit_worker,
    copy_worker,
    poller,
    video_consumer,
    failure_announcer,
    webhook_sender,
    balance_reader,
)


def clear() -> None:
    """Forgets every function's wiring: each builds it again, from its environment, at its next
    invocation (as after a configuration change in AWS)."""
    for built in FUNCTIONS:
        built.cache_clear()


# ------------------------------------------------------------------------------------ adapters


def download_policy(download: DownloadSettings, provider: ProviderSettings) -> DownloadPolicy:
    """Where a provider's videos may be fetched from, and how slowly at worst."""
    from veo_relay.downloader import DownloadPolicy, ThroughputFloor

    trusted = (
        frozenset({origin_of(provider.base_url)}) if download.trust_provider_origin else frozenset()
    )
    floor = (
        ThroughputFloor(
            bytes_per_second=download.min_bytes_per_second,
            window_seconds=download.throughput_window_seconds,
            grace_seconds=download.throughput_grace_seconds,
        )
        if download.min_bytes_per_second
        else None
    )
    return DownloadPolicy(
        allowed_origins=provider.download_origins | trusted,
        trusted_local_origins=trusted,
        max_bytes=download.max_bytes,
        throughput_floor=floor,
    )


def _submitter(
    tasks: TaskStore,
    tasks_table: str,
    providers: ProviderDirectory,
    access: ProviderAccess,
    submit_queue_url: str,
    fallback_poller: FallbackPollerExecutions,
    tokens: CallbackTokens,
    metrics_namespace: str,
    prices: PriceTable,
) -> Submitter:
    from veo_relay.queues import SubmitQueue
    from veo_relay.submission import Submitter
    from veo_relay.submit_slots import SubmitSlots

    return Submitter(
        tasks=tasks,
        providers=providers,
        provider_settings=access.providers,
        slots=SubmitSlots(tasks_table),  # the submit slots share the tasks table
        submit_queue=SubmitQueue(_client("sqs"), submit_queue_url),
        fallback_poller=fallback_poller,
        callback_tokens=tokens,
        metrics=_metrics(metrics_namespace),
        prices=prices,
    )


def _spend_ledger(table: str) -> SpendLedger:
    from veo_relay.spend_ledger import SpendLedger

    return SpendLedger(table)  # each principal's month is an item of the tasks table


def _task_store(table: str) -> TaskStore:
    from veo_relay.task_store import TaskStore

    return TaskStore(table)


def _video_store(bucket: str) -> VideoStore:
    from veo_relay.video_store import VideoStore

    return VideoStore(_client("s3"), bucket)


def _queries(tasks: TaskStore, videos: VideoStore, presign_expires_seconds: int) -> TaskQueries:
    from veo_relay.queries import TaskQueries

    return TaskQueries(tasks, videos, presign_expires_seconds)


def _fallback_poller(start: FallbackPollerStart) -> FallbackPollerExecutions:
    from veo_relay.fallback_poller import FallbackPollerExecutions

    return FallbackPollerExecutions(
        _client("stepfunctions"),
        start.state_machine_arn,
        start.deadline_seconds,
        start.copy_lease_seconds,
    )


def _secret_values(max_age_seconds: int) -> SecretValues:
    from veo_relay.secret_values import SecretValues

    return SecretValues(max_age_seconds)


def _providers(access: ProviderAccess, secrets: SecretValues) -> ProviderDirectory:
    from veo_relay.providers import ProviderDirectory

    return ProviderDirectory(access, secrets)


def _provider_results(
    tasks: TaskStore, access: ProviderAccess, secrets: SecretValues, token_key_secret_arn: str
) -> ProviderResults:
    from veo_relay.provider_results import ProviderResults

    return ProviderResults(
        tasks=tasks,
        providers=_providers(access, secrets),
        callback_tokens=_callback_tokens(secrets, token_key_secret_arn),
    )


def _callback_tokens(secrets: SecretValues, key_secret_arn: str) -> CallbackTokens:
    from veo_relay.callback_tokens import CallbackTokens

    return CallbackTokens(lambda: secrets.key(key_secret_arn))


def _webhook_secrets(table: str, secrets: SecretValues, master_key_arn: str) -> WebhookSecrets:
    from veo_relay.webhook_secrets import WebhookSecrets

    # Read through the secrets cache on each use: a new master key changes every principal's
    # secret at once, within SECRETS_CACHE_SECONDS, without a deploy.
    return WebhookSecrets(table, lambda: secrets.key(master_key_arn))


def _metrics(namespace: str) -> Telemetry:
    from veo_relay.telemetry import Telemetry

    return Telemetry(namespace)


def _client(service: str) -> Any:
    """A boto3 client made at its first call (and loaded with boto3 itself then)."""
    return _LazyClient(service)


class _LazyClient:
    def __init__(self, service: str) -> None:
        self._service = service
        self._client: Any = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.made(), name)

    def made(self) -> Any:
        # The lock only while the client is being made: every later call reads it as it is.
        if self._client is None:
            with self._lock:
                if self._client is None:
                    import boto3

                    make: Any = boto3.client  # typed per service name; this one is any service's
                    self._client = make(self._service)
        return self._client
