"""Configuration: one validated model per function, read once at its start from its environment."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from veo_relay.errors import ConfigurationError, Unauthenticated
from veo_relay.pricing import PriceTable, to_micros
from veo_relay.principals import owner_of
from veo_relay.providers.registry import PROVIDER_NAMES, SPECS
from veo_relay.providers.spec import ProviderSpec
from veo_relay.safe_urls import parse_url

PROVIDERS = PROVIDER_NAMES
SQS_MAX_DELAY_SECONDS = 900  # SQS's limit on a message's DelaySeconds


@dataclass(frozen=True)
class RateLimit:
    """At most `requests` new tasks per `window_seconds`; beyond, the provider refuses."""

    requests: int
    window_seconds: int

    # Slots a little wider than the bare limit allows: clocks and network delays differ between
    # us and the provider, and a refused submit costs a retry.
    SAFETY = 1.1
    # However few slots a window has to spare, a submit may be this late (as it always could).
    MIN_LATE_TOLERANCE = 0.5

    @property
    def slot_spacing(self) -> float:
        """`window / requests`, widened by SAFETY; for a window of a few seconds, widened further
        so that a submit late by MIN_LATE_TOLERANCE still cannot crowd a window (7 per 3 s: 0.51 s,
        not 0.47 s, between slots)."""
        spanned = max(
            self.window_seconds * self.SAFETY,
            self.window_seconds + self.MIN_LATE_TOLERANCE * self.SAFETY,
        )
        return spanned / self.requests

    @property
    def late_tolerance(self) -> float:
        """How long after its slot a submit may still go: the slots a window can hold beyond
        those the schedule puts in it (the safety margin's slack), times the spacing. A later
        submit could crowd a window past the limit. kie (20/10 s): 0.55 s; apixo (10,000/60 s):
        6 s."""
        scheduled = math.floor(self.window_seconds / self.slot_spacing) + 1
        return max(self.MIN_LATE_TOLERANCE, (self.requests - scheduled) * self.slot_spacing)


@dataclass(frozen=True)
class ProviderSettings:
    name: str
    base_url: str
    api_key: str | None
    download_origins: frozenset[str]
    rate_limit: RateLimit
    # The fallback poller's first look comes after about the provider's usual completion time.
    first_wait_seconds: int


@dataclass(frozen=True)
class PollSettings:
    interval_seconds: int
    max_interval_seconds: int
    deadline_seconds: int


@dataclass(frozen=True)
class ProviderAccess:
    """The providers a function talks to, and where their keys are kept."""

    providers: Mapping[str, ProviderSettings]
    # Each provider's API key, by name, unless its *_API_KEY is set: read through the secrets
    # cache on every use, so that a rotation is seen within `secrets_cache_seconds`.
    keys_secret_arn: str | None
    # Keys that verify provider callbacks (kie's X-Webhook-Signature HMAC key), by provider.
    callback_keys_secret_arn: str | None


@dataclass(frozen=True)
class FallbackPollerStart:
    """What the functions starting a task's fallback poller hand its execution."""

    state_machine_arn: str
    deadline_seconds: int
    copy_lease_seconds: int


@dataclass(frozen=True)
class DownloadSettings:
    max_bytes: int
    # The throughput floor of a video download (0: none), judged over each window of waiting for
    # the server after a grace period (downloader's download_pace): a trickle ends early, not at
    # the copy's deadline.
    min_bytes_per_second: int
    throughput_window_seconds: int
    throughput_grace_seconds: int
    # Only the offline stack sets this: the provider's own (loopback, plain http) origin may serve
    # result videos. A deployed stack never trusts a non-public origin.
    trust_provider_origin: bool


@dataclass(frozen=True)
class EventSettings:
    bus_name: str
    source: str


@dataclass(frozen=True)
class WebhookDelivery:
    queue_url: str
    # Seconds before each retry after a failed delivery (Standard Webhooks' schedule by default);
    # when they run out the delivery goes to the dead-letter queue.
    retry_delays: tuple[int, ...]
    # How long one delivery may take in all (connect, send, the answer's status line); a slower
    # receiver's attempt fails and is retried. Well within the sender's 30 s function timeout.
    timeout_seconds: int


# Each function's settings: exactly what it uses, every required variable checked when the
# function first runs (a missing one fails its cold start, naming the variable).


@dataclass(frozen=True)
class ApiSettings:
    tasks_table: str
    principals_table: str
    video_bucket: str
    submit_queue_url: str
    fallback_poller: FallbackPollerStart
    # The HMAC key callback tokens are derived with (veo_relay.callback_tokens).
    callback_token_key_secret_arn: str
    # The key every principal's webhook signing secret is derived from.
    webhook_master_key_secret_arn: str
    public_base_url: str | None
    default_provider: str
    # The order `provider: "auto"` tries; it moves on only when a refusal proves nothing exists.
    provider_preference: tuple[str, ...]
    access: ProviderAccess
    presign_expires_seconds: int
    # Only the offline stack sets this: a webhook receiver on loopback (plain http) may be named,
    # so that webhooks can be tried on a laptop. Private and other special addresses stay refused.
    webhook_allow_loopback: bool
    # How long a secret read from Secrets Manager is reused: a rotated key is seen within this.
    secrets_cache_seconds: int
    metrics_namespace: str
    money: MoneySettings
    # Where a deletion's `Video Deleted` goes (veo_relay.lifecycle).
    events: EventSettings

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ApiSettings:
        reader = _EnvReader(env)
        return cls(
            tasks_table=reader.required("TASKS_TABLE"),
            principals_table=reader.required("PRINCIPALS_TABLE"),
            video_bucket=reader.required("VIDEO_BUCKET"),
            submit_queue_url=reader.required("SUBMIT_QUEUE_URL"),
            fallback_poller=_fallback_poller_start(reader),
            callback_token_key_secret_arn=reader.required("CALLBACK_TOKEN_KEY_SECRET_ARN"),
            webhook_master_key_secret_arn=reader.required("WEBHOOK_MASTER_KEY_SECRET_ARN"),
            public_base_url=reader.optional_url("PUBLIC_BASE_URL"),
            default_provider=reader.choice("DEFAULT_PROVIDER", PROVIDERS, default="apixo"),
            provider_preference=reader.choices(
                "PROVIDER_PREFERENCE", PROVIDERS, default=",".join(PROVIDERS)
            ),
            access=_provider_access(reader, calls_providers=True),
            presign_expires_seconds=_presign_expires_seconds(reader),
            webhook_allow_loopback=_webhook_allow_loopback(reader),
            secrets_cache_seconds=_secrets_cache_seconds(reader),
            metrics_namespace=_metrics_namespace(reader),
            money=_money_settings(reader),
            events=_event_settings(reader),
        )


@dataclass(frozen=True)
class CallbackSettings:
    tasks_table: str
    copy_queue_url: str
    callback_token_key_secret_arn: str
    access: ProviderAccess
    # How long a secret read from Secrets Manager is reused: a rotated key is seen within this.
    secrets_cache_seconds: int
    metrics_namespace: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> CallbackSettings:
        reader = _EnvReader(env)
        return cls(
            tasks_table=reader.required("TASKS_TABLE"),
            copy_queue_url=reader.required("COPY_QUEUE_URL"),
            callback_token_key_secret_arn=reader.required("CALLBACK_TOKEN_KEY_SECRET_ARN"),
            # It parses callbacks only: no provider's API is called from here.
            access=_provider_access(reader, calls_providers=False),
            secrets_cache_seconds=_secrets_cache_seconds(reader),
            metrics_namespace=_metrics_namespace(reader),
        )


@dataclass(frozen=True)
class SubmitWorkerSettings:
    tasks_table: str
    submit_queue_url: str
    fallback_poller: FallbackPollerStart
    callback_token_key_secret_arn: str
    access: ProviderAccess
    # How long a secret read from Secrets Manager is reused: a rotated key is seen within this.
    secrets_cache_seconds: int
    metrics_namespace: str
    # A submit records what the task costs.
    prices: PriceTable

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SubmitWorkerSettings:
        reader = _EnvReader(env)
        return cls(
            tasks_table=reader.required("TASKS_TABLE"),
            submit_queue_url=reader.required("SUBMIT_QUEUE_URL"),
            fallback_poller=_fallback_poller_start(reader),
            callback_token_key_secret_arn=reader.required("CALLBACK_TOKEN_KEY_SECRET_ARN"),
            access=_provider_access(reader, calls_providers=True),
            secrets_cache_seconds=_secrets_cache_seconds(reader),
            metrics_namespace=_metrics_namespace(reader),
            prices=_price_table(reader),
        )


@dataclass(frozen=True)
class CopyWorkerSettings:
    tasks_table: str
    video_bucket: str
    access: ProviderAccess
    # An upgrade started here (kie's 4K) is handed the task's callback URL, token and all.
    callback_token_key_secret_arn: str
    download: DownloadSettings
    copy_lease_seconds: int
    # After a callback the provider's status did not confirm (early or forged), further callbacks
    # of the task are answered but ignored for this long (the fallback poller still watches it);
    # the first of them queues one copy for its end, an SQS delay: at most 899 s (900 with a
    # second's margin).
    callback_quiet_seconds: int
    # How long a secret read from Secrets Manager is reused: a rotated key is seen within this.
    secrets_cache_seconds: int
    metrics_namespace: str
    # VideoRetentionDays: the bucket's lifecycle rule expires each video and its manifest after
    # that many days, and a completed task's record expires with them; 0 keeps all three.
    video_retention_days: int = 0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> CopyWorkerSettings:
        reader = _EnvReader(env)
        return cls(
            tasks_table=reader.required("TASKS_TABLE"),
            video_bucket=reader.required("VIDEO_BUCKET"),
            access=_provider_access(reader, calls_providers=True),
            callback_token_key_secret_arn=reader.required("CALLBACK_TOKEN_KEY_SECRET_ARN"),
            download=DownloadSettings(
                max_bytes=reader.integer("DOWNLOAD_MAX_BYTES", 4 * 1024**3, minimum=1),
                # A CDN sends megabytes a second; 64 KiB/s is far below any working one.
                min_bytes_per_second=reader.integer(
                    "DOWNLOAD_MIN_BYTES_PER_SECOND", 64 * 1024, minimum=0
                ),
                throughput_window_seconds=reader.integer(
                    "DOWNLOAD_THROUGHPUT_WINDOW_SECONDS", 10, minimum=1
                ),
                throughput_grace_seconds=reader.integer(
                    "DOWNLOAD_THROUGHPUT_GRACE_SECONDS", 10, minimum=0
                ),
                trust_provider_origin=reader.boolean("TRUST_PROVIDER_ORIGIN", default=False),
            ),
            copy_lease_seconds=_copy_lease_seconds(reader),
            callback_quiet_seconds=reader.integer(
                "CALLBACK_QUIET_SECONDS", 30, minimum=0, maximum=SQS_MAX_DELAY_SECONDS - 1
            ),
            secrets_cache_seconds=_secrets_cache_seconds(reader),
            metrics_namespace=_metrics_namespace(reader),
            video_retention_days=reader.integer("VIDEO_RETENTION_DAYS", 0, minimum=0),
        )


@dataclass(frozen=True)
class PollerSettings:
    tasks_table: str
    copy_queue_url: str
    access: ProviderAccess
    # An upgrade started here (kie's 4K) is handed the task's callback URL, token and all.
    callback_token_key_secret_arn: str
    poll: PollSettings
    # A `storing` task whose copy holds its lease is let finish, even past the deadline.
    copy_lease_seconds: int
    # How long a secret read from Secrets Manager is reused: a rotated key is seen within this.
    secrets_cache_seconds: int
    metrics_namespace: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> PollerSettings:
        reader = _EnvReader(env)
        poll = PollSettings(
            interval_seconds=reader.integer("POLL_INTERVAL_SECONDS", 15, minimum=1),
            max_interval_seconds=reader.integer("POLL_MAX_INTERVAL_SECONDS", 180, minimum=1),
            deadline_seconds=_deadline_seconds(reader),
        )
        if poll.max_interval_seconds < poll.interval_seconds:
            raise ConfigurationError(
                "POLL_MAX_INTERVAL_SECONDS must be at least POLL_INTERVAL_SECONDS"
            )
        return cls(
            tasks_table=reader.required("TASKS_TABLE"),
            copy_queue_url=reader.required("COPY_QUEUE_URL"),
            access=_provider_access(reader, calls_providers=True),
            callback_token_key_secret_arn=reader.required("CALLBACK_TOKEN_KEY_SECRET_ARN"),
            poll=poll,
            copy_lease_seconds=_copy_lease_seconds(reader),
            secrets_cache_seconds=_secrets_cache_seconds(reader),
            metrics_namespace=_metrics_namespace(reader),
        )


@dataclass(frozen=True)
class VideoConsumerSettings:
    video_bucket: str
    events: EventSettings
    metrics_namespace: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> VideoConsumerSettings:
        reader = _EnvReader(env)
        return cls(
            video_bucket=reader.required("VIDEO_BUCKET"),
            events=_event_settings(reader),
            metrics_namespace=_metrics_namespace(reader),
        )


@dataclass(frozen=True)
class FailureAnnouncerSettings:
    events: EventSettings
    metrics_namespace: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> FailureAnnouncerSettings:
        reader = _EnvReader(env)
        return cls(events=_event_settings(reader), metrics_namespace=_metrics_namespace(reader))


@dataclass(frozen=True)
class WebhookSenderSettings:
    tasks_table: str
    principals_table: str
    # A webhook's task object carries a presigned download_url, as the API's does.
    video_bucket: str
    presign_expires_seconds: int
    webhook_master_key_secret_arn: str
    secrets_cache_seconds: int
    delivery: WebhookDelivery
    webhook_allow_loopback: bool
    metrics_namespace: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> WebhookSenderSettings:
        reader = _EnvReader(env)
        return cls(
            tasks_table=reader.required("TASKS_TABLE"),
            principals_table=reader.required("PRINCIPALS_TABLE"),
            video_bucket=reader.required("VIDEO_BUCKET"),
            presign_expires_seconds=_presign_expires_seconds(reader),
            webhook_master_key_secret_arn=reader.required("WEBHOOK_MASTER_KEY_SECRET_ARN"),
            secrets_cache_seconds=_secrets_cache_seconds(reader),
            delivery=WebhookDelivery(
                queue_url=reader.required("WEBHOOK_QUEUE_URL"),
                retry_delays=reader.integers("WEBHOOK_RETRY_SECONDS", _WEBHOOK_RETRY_SECONDS),
                timeout_seconds=reader.integer("WEBHOOK_TIMEOUT_SECONDS", 15, minimum=1),
            ),
            webhook_allow_loopback=_webhook_allow_loopback(reader),
            metrics_namespace=_metrics_namespace(reader),
        )


@dataclass(frozen=True)
class BalanceReaderSettings:
    # Every provider's settings and keys: each one with a balance route is read.
    access: ProviderAccess
    # How long a secret read from Secrets Manager is reused: a rotated key is seen within this.
    secrets_cache_seconds: int
    metrics_namespace: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> BalanceReaderSettings:
        reader = _EnvReader(env)
        return cls(
            access=_provider_access(reader, calls_providers=True),
            secrets_cache_seconds=_secrets_cache_seconds(reader),
            metrics_namespace=_metrics_namespace(reader),
        )


# Standard Webhooks' recommended schedule after the first attempt: 5 s, 5 min, 30 min, 2 h, 5 h,
# 10 h, 10 h (about 28 hours in all).
_WEBHOOK_RETRY_SECONDS = (5, 300, 1800, 7200, 18000, 36000, 36000)


@dataclass(frozen=True)
class MoneySettings:
    """What videos cost and what each principal may spend (veo_relay.spending)."""

    prices: PriceTable
    # Micro-dollars per calendar month (UTC): the default (None: no budget) and, by owner,
    # overrides.
    monthly_budget_micros: int | None
    budget_overrides_micros: Mapping[str, int]
    # None: no limit.
    creates_per_minute: int | None


@dataclass(frozen=True)
class SpendSettlerSettings:
    tasks_table: str
    prices: PriceTable

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SpendSettlerSettings:
        reader = _EnvReader(env)
        return cls(tasks_table=reader.required("TASKS_TABLE"), prices=_price_table(reader))


def _money_settings(reader: _EnvReader) -> MoneySettings:
    per_minute = reader.integer("CREATES_PER_MINUTE", default=0, minimum=0)
    budget = reader.optional("MONTHLY_BUDGET_USD")
    return MoneySettings(
        prices=_price_table(reader),
        monthly_budget_micros=None if budget is None else _usd("MONTHLY_BUDGET_USD", budget),
        budget_overrides_micros=_budget_overrides(reader.optional("BUDGET_OVERRIDES_USD")),
        creates_per_minute=per_minute or None,
    )


def _price_table(reader: _EnvReader) -> PriceTable:
    return PriceTable.parse(
        reader.required("PRICE_TABLE"), {spec.name: spec.capabilities for spec in SPECS}
    )


def _budget_overrides(raw: str | None) -> dict[str, int]:
    """`{"<IAM principal ARN>": usd, ...}`, each principal reduced to its owner as the API names
    it (a role's sessions are the role)."""
    if raw is None:
        return {}
    try:
        document = json.loads(raw)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise ConfigurationError("BUDGET_OVERRIDES_USD must be a JSON object of ARN: USD")
    overrides = {}
    for principal, usd in document.items():
        try:
            owner = owner_of(principal)
        except Unauthenticated:
            raise ConfigurationError(
                f"BUDGET_OVERRIDES_USD: {principal!r} is not an IAM principal's ARN"
            ) from None
        overrides[owner] = _usd(f"BUDGET_OVERRIDES_USD[{principal!r}]", usd)
    return overrides


def _usd(name: str, value: object) -> int:
    """An amount of USD (at least 0), in micro-dollars."""
    try:
        amount = Decimal(str(value)) if not isinstance(value, bool) else None
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite() or amount < 0:
        raise ConfigurationError(f"{name} must be an amount of USD of at least 0, got {value!r}")
    return to_micros(amount)


def _provider_settings(spec: ProviderSpec, reader: _EnvReader) -> ProviderSettings:
    """The spec's documented defaults, each overridden by its own variable (spec.variable)."""
    base_url = reader.url(spec.variable("BASE_URL"), default=spec.base_url)
    origins = reader.optional(spec.variable("DOWNLOAD_ORIGINS")) or ",".join(spec.download_origins)
    return ProviderSettings(
        name=spec.name,
        base_url=base_url.rstrip("/"),
        api_key=reader.optional(spec.variable("API_KEY")),
        download_origins=frozenset(origin_of(o.strip()) for o in origins.split(",") if o.strip()),
        rate_limit=reader.rate_limit(spec.variable("RATE_LIMIT"), spec.rate_limit),
        # A provider's own setting, else the one for all (e.g. seconds under `make run`).
        first_wait_seconds=reader.integer(
            spec.variable("POLL_FIRST_WAIT_SECONDS"),
            reader.integer("POLL_FIRST_WAIT_SECONDS", spec.poll_first_wait_seconds, minimum=0),
            minimum=0,
        ),
    )


def _provider_access(reader: _EnvReader, calls_providers: bool) -> ProviderAccess:
    """Every provider's settings; for a function that calls their APIs, somewhere to find each
    one's key (the keys secret, or every provider's *_API_KEY), or it does not start."""
    providers = {spec.name: _provider_settings(spec, reader) for spec in SPECS}
    keys_secret_arn = reader.optional("PROVIDER_KEYS_SECRET_ARN")
    keyless = [name for name, p in providers.items() if p.api_key is None]
    if calls_providers and keys_secret_arn is None and keyless:
        raise ConfigurationError(
            f"PROVIDER_KEYS_SECRET_ARN (or {keyless[0].upper()}_API_KEY) must be set: this "
            "function calls the provider"
        )
    return ProviderAccess(
        providers=providers,
        keys_secret_arn=keys_secret_arn,
        callback_keys_secret_arn=reader.optional("CALLBACK_KEYS_SECRET_ARN"),
    )


def _fallback_poller_start(reader: _EnvReader) -> FallbackPollerStart:
    return FallbackPollerStart(
        state_machine_arn=reader.required("STATE_MACHINE_ARN"),
        deadline_seconds=_deadline_seconds(reader),
        copy_lease_seconds=_copy_lease_seconds(reader),
    )


def _deadline_seconds(reader: _EnvReader) -> int:
    return reader.integer("TASK_DEADLINE_SECONDS", 2700, minimum=1)


def _copy_lease_seconds(reader: _EnvReader) -> int:
    """How long a copy owns a `storing` task before another worker may take it over: longer
    than the copy worker's timeout."""
    return reader.integer("COPY_LEASE_SECONDS", 360, minimum=1)


def _secrets_cache_seconds(reader: _EnvReader) -> int:
    return reader.integer("SECRETS_CACHE_SECONDS", 300, minimum=0)


def _presign_expires_seconds(reader: _EnvReader) -> int:
    return reader.integer("PRESIGN_EXPIRES_SECONDS", 3600, minimum=1)


def _metrics_namespace(reader: _EnvReader) -> str:
    return reader.optional("POWERTOOLS_METRICS_NAMESPACE") or "VeoRelay"


def _event_settings(reader: _EnvReader) -> EventSettings:
    return EventSettings(
        bus_name=reader.required("EVENT_BUS_NAME"),
        source=reader.optional("EVENT_SOURCE") or "veo-relay",
    )


def _webhook_allow_loopback(reader: _EnvReader) -> bool:
    return reader.boolean("WEBHOOK_ALLOW_LOOPBACK", default=False)


def origin_of(url: str) -> str:
    """`scheme://host:port` with the default port filled in, the form origins are compared in,
    as the downloader and the webhook sender parse a URL (a refused one is a ValueError)."""
    return parse_url(url).origin


class _EnvReader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def optional(self, name: str) -> str | None:
        value = self._env.get(name, "").strip()
        return value or None

    def required(self, name: str) -> str:
        value = self.optional(name)
        if value is None:
            raise ConfigurationError(f"{name} must be set")
        return value

    def integer(self, name: str, default: int, minimum: int, maximum: int | None = None) -> int:
        raw = self.optional(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigurationError(f"{name} must be an integer, got {raw!r}") from None
        if value < minimum:
            raise ConfigurationError(f"{name} must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise ConfigurationError(f"{name} must be at most {maximum}, got {value}")
        return value

    def integers(self, name: str, default: tuple[int, ...]) -> tuple[int, ...]:
        raw = self.optional(name)
        if raw is None:
            return default
        try:
            values = tuple(int(v) for v in raw.split(",") if v.strip())
        except ValueError:
            raise ConfigurationError(
                f"{name} must list whole seconds (e.g. 5,300,1800), got {raw!r}"
            ) from None
        if not values or any(v < 0 for v in values):
            raise ConfigurationError(f"{name} must list seconds of at least 0, got {raw!r}")
        return values

    def rate_limit(self, name: str, default: str) -> RateLimit:
        raw = self.optional(name) or default
        requests, _, window = raw.partition("/")
        try:
            limit = RateLimit(int(requests), int(window))
        except ValueError:
            raise ConfigurationError(
                f"{name} must read REQUESTS/SECONDS (e.g. 20/10), got {raw!r}"
            ) from None
        if limit.requests < 1 or limit.window_seconds < 1:
            raise ConfigurationError(f"{name} must be positive, got {raw!r}")
        return limit

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.optional(name)
        if raw is None:
            return default
        if raw.lower() in ("1", "true", "yes"):
            return True
        if raw.lower() in ("0", "false", "no"):
            return False
        raise ConfigurationError(f"{name} must be true or false, got {raw!r}")

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = self.optional(name) or default
        if value not in choices:
            raise ConfigurationError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
        return value

    def choices(self, name: str, choices: tuple[str, ...], default: str) -> tuple[str, ...]:
        raw = self.optional(name) or default
        values = tuple(v.strip() for v in raw.split(",") if v.strip())
        unknown = [v for v in values if v not in choices]
        if unknown or not values:
            raise ConfigurationError(f"{name} must list some of {', '.join(choices)}, got {raw!r}")
        return values

    def url(self, name: str, default: str) -> str:
        value = self.optional(name) or default
        self._check_url(name, value)
        return value

    def optional_url(self, name: str) -> str | None:
        value = self.optional(name)
        if value is not None:
            self._check_url(name, value)
        return value

    @staticmethod
    def _check_url(name: str, value: str) -> None:
        try:
            origin_of(value)
        except ValueError:
            raise ConfigurationError(f"{name} must be an http(s) URL, got {value!r}") from None


def environment() -> Mapping[str, str]:
    """The function's environment: the only place that reads it (each function's settings model
    is built from it once, veo_relay.wiring)."""
    return os.environ
