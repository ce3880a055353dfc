"""Configuration: one validated model, read once at start from the function's environment."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from veo_relay.errors import ConfigurationError
from veo_relay.providers.registry import PROVIDER_NAMES, SPECS
from veo_relay.providers.spec import ProviderSpec
from veo_relay.safe_urls import parse_url
from veo_relay.workflow import MAX_DELAY_SECONDS

PROVIDERS = PROVIDER_NAMES


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
class EventSettings:
    bus_name: str | None
    source: str


@dataclass(frozen=True)
class WebhookSettings:
    queue_url: str | None
    # The Secrets Manager secret holding the key each principal's signing secret is derived from.
    master_key_secret_arn: str | None
    # Seconds before each retry after a failed delivery (Standard Webhooks' schedule by default);
    # when they run out the delivery goes to the dead-letter queue.
    retry_delays: tuple[int, ...]
    # How long one delivery may take in all (connect, send, the answer's status line); a slower
    # receiver's attempt fails and is retried. Well within the sender's 30 s function timeout.
    timeout_seconds: int
    # Only the offline stack sets this: a receiver on loopback (plain http) may be called, so that
    # webhooks can be tried on a laptop. Private and other special addresses stay refused.
    allow_loopback: bool


@dataclass(frozen=True)
class Settings:
    tasks_table: str
    # One record per principal (its webhook secret's generation), for the functions that use it.
    principals_table: str | None
    video_bucket: str
    copy_queue_url: str | None
    submit_queue_url: str | None
    state_machine_arn: str | None
    provider_keys_secret_arn: str | None
    # Keys that verify provider callbacks (kie's X-Webhook-Signature HMAC key), by provider.
    callback_keys_secret_arn: str | None
    # The HMAC key callback tokens are derived with (veo_relay.callback_tokens): read by the
    # functions that hand callback URLs to providers and by the callback function.
    callback_token_key_secret_arn: str | None
    # How long a secret read from Secrets Manager is reused: a rotated key is seen within this.
    secrets_cache_seconds: int
    public_base_url: str | None
    default_provider: str
    # The order `provider: "auto"` tries; it moves on only when a refusal proves nothing exists.
    provider_preference: tuple[str, ...]
    providers: Mapping[str, ProviderSettings]
    poll: PollSettings
    # Only the offline stack sets this: the provider's own (loopback, plain http) origin may serve
    # result videos. A deployed stack never trusts a non-public origin.
    trust_provider_origin: bool
    download_max_bytes: int
    # The throughput floor of a video download (0: none), judged over each window of waiting for
    # the server after a grace period (downloader's download_pace): a trickle ends early, not at
    # the copy's deadline.
    download_min_bytes_per_second: int
    download_throughput_window_seconds: int
    download_throughput_grace_seconds: int
    # How long a copy owns a `storing` task before another worker may take it over: longer than
    # the copy worker's timeout.
    copy_lease_seconds: int
    # After a callback the provider's status did not confirm (early or forged), further callbacks
    # of the task are answered but ignored for this long (the fallback poller still watches it);
    # the first of them queues one copy for its end, an SQS delay: at most 899 s (900 with a
    # second's margin).
    callback_quiet_seconds: int
    presign_expires_seconds: int
    events: EventSettings
    webhooks: WebhookSettings
    metrics_namespace: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        reader = _EnvReader(env)
        settings = cls(
            tasks_table=reader.required("TASKS_TABLE"),
            principals_table=reader.optional("PRINCIPALS_TABLE"),
            video_bucket=reader.required("VIDEO_BUCKET"),
            copy_queue_url=reader.optional("COPY_QUEUE_URL"),
            submit_queue_url=reader.optional("SUBMIT_QUEUE_URL"),
            state_machine_arn=reader.optional("STATE_MACHINE_ARN"),
            provider_keys_secret_arn=reader.optional("PROVIDER_KEYS_SECRET_ARN"),
            callback_keys_secret_arn=reader.optional("CALLBACK_KEYS_SECRET_ARN"),
            callback_token_key_secret_arn=reader.optional("CALLBACK_TOKEN_KEY_SECRET_ARN"),
            secrets_cache_seconds=reader.integer("SECRETS_CACHE_SECONDS", 300, minimum=0),
            public_base_url=reader.url("PUBLIC_BASE_URL", required=False),
            default_provider=reader.choice("DEFAULT_PROVIDER", PROVIDERS, default="apixo"),
            provider_preference=reader.choices(
                "PROVIDER_PREFERENCE", PROVIDERS, default=",".join(PROVIDERS)
            ),
            providers={spec.name: _provider_settings(spec, reader) for spec in SPECS},
            poll=PollSettings(
                interval_seconds=reader.integer("POLL_INTERVAL_SECONDS", 15, minimum=1),
                max_interval_seconds=reader.integer("POLL_MAX_INTERVAL_SECONDS", 180, minimum=1),
                deadline_seconds=reader.integer("TASK_DEADLINE_SECONDS", 2700, minimum=1),
            ),
            trust_provider_origin=reader.boolean("TRUST_PROVIDER_ORIGIN", default=False),
            copy_lease_seconds=reader.integer("COPY_LEASE_SECONDS", 360, minimum=1),
            callback_quiet_seconds=reader.integer(
                "CALLBACK_QUIET_SECONDS", 30, minimum=0, maximum=MAX_DELAY_SECONDS - 1
            ),
            download_max_bytes=reader.integer("DOWNLOAD_MAX_BYTES", 4 * 1024**3, minimum=1),
            # A CDN sends megabytes a second; 64 KiB/s is far below any working one.
            download_min_bytes_per_second=reader.integer(
                "DOWNLOAD_MIN_BYTES_PER_SECOND", 64 * 1024, minimum=0
            ),
            download_throughput_window_seconds=reader.integer(
                "DOWNLOAD_THROUGHPUT_WINDOW_SECONDS", 10, minimum=1
            ),
            download_throughput_grace_seconds=reader.integer(
                "DOWNLOAD_THROUGHPUT_GRACE_SECONDS", 10, minimum=0
            ),
            presign_expires_seconds=reader.integer("PRESIGN_EXPIRES_SECONDS", 3600, minimum=1),
            events=EventSettings(
                bus_name=reader.optional("EVENT_BUS_NAME"),
                source=reader.optional("EVENT_SOURCE") or "veo-relay",
            ),
            metrics_namespace=reader.optional("POWERTOOLS_METRICS_NAMESPACE") or "VeoRelay",
            webhooks=WebhookSettings(
                queue_url=reader.optional("WEBHOOK_QUEUE_URL"),
                master_key_secret_arn=reader.optional("WEBHOOK_MASTER_KEY_SECRET_ARN"),
                retry_delays=reader.integers("WEBHOOK_RETRY_SECONDS", _WEBHOOK_RETRY_SECONDS),
                timeout_seconds=reader.integer("WEBHOOK_TIMEOUT_SECONDS", 15, minimum=1),
                allow_loopback=reader.boolean("WEBHOOK_ALLOW_LOOPBACK", default=False),
            ),
        )
        if settings.poll.max_interval_seconds < settings.poll.interval_seconds:
            raise ConfigurationError(
                "POLL_MAX_INTERVAL_SECONDS must be at least POLL_INTERVAL_SECONDS"
            )
        return settings


# Standard Webhooks' recommended schedule after the first attempt: 5 s, 5 min, 30 min, 2 h, 5 h,
# 10 h, 10 h (about 28 hours in all).
_WEBHOOK_RETRY_SECONDS = (5, 300, 1800, 7200, 18000, 36000, 36000)


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

    def url(self, name: str, default: str | None = None, required: bool = True) -> str:
        value = self.optional(name) or default
        if value is None:
            if required:
                raise ConfigurationError(f"{name} must be set")
            return None  # type: ignore[return-value]
        try:
            origin_of(value)
        except ValueError:
            raise ConfigurationError(f"{name} must be an http(s) URL, got {value!r}") from None
        return value


T = TypeVar("T")


class PerFunction(Generic[T]):
    """A value built once per Lambda function. A Lambda process runs one function, so this is
    one value per process there; the offline stack runs every function in one process, each
    with its own environment (AWS_LAMBDA_FUNCTION_NAME included), and each gets its own."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._values: dict[str, T] = {}

    def __call__(self) -> T:
        name = function_name()
        if name not in self._values:
            self._values[name] = self._build()
        return self._values[name]

    def cache_clear(self) -> None:
        self._values.clear()


def function_name() -> str:
    return os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")


@PerFunction
def get_settings() -> Settings:
    """The function's settings; the only place that reads the environment."""
    return Settings.from_env(os.environ)
