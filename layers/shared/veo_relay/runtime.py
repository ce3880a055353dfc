"""The process's collaborators, built once and lazily: a cold start pays only for what it uses."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from veo_relay.errors import ConfigurationError
from veo_relay.settings import PerFunction, Settings, get_settings, origin_of

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    from veo_relay.announcements import VideoEvents
    from veo_relay.callback_tokens import CallbackTokens
    from veo_relay.downloader import DownloadPolicy
    from veo_relay.providers.base import Provider
    from veo_relay.submit_slots import SubmitSlots
    from veo_relay.task_store import TaskStore
    from veo_relay.telemetry import Telemetry
    from veo_relay.video_store import VideoStore
    from veo_relay.webhook_messages import WebhookQueue
    from veo_relay.webhook_secrets import WebhookSecrets
    from veo_relay.workflow import CopyQueue, FallbackWorkflow, SubmitQueue


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._providers: dict[str, Provider] = {}

    @cached_property
    def tasks(self) -> TaskStore:
        from veo_relay.task_store import TaskStore

        return TaskStore(self.settings.tasks_table)

    @cached_property
    def videos(self) -> VideoStore:
        import boto3

        from veo_relay.video_store import VideoStore

        return VideoStore(boto3.client("s3"), self.settings.video_bucket)

    @cached_property
    def copy_queue(self) -> CopyQueue:
        import boto3

        from veo_relay.workflow import CopyQueue

        if not self.settings.copy_queue_url:
            raise RuntimeError("COPY_QUEUE_URL is not configured for this function")
        return CopyQueue(boto3.client("sqs"), self.settings.copy_queue_url)

    @cached_property
    def submit_queue(self) -> SubmitQueue:
        import boto3

        from veo_relay.workflow import SubmitQueue

        if not self.settings.submit_queue_url:
            raise RuntimeError("SUBMIT_QUEUE_URL is not configured for this function")
        return SubmitQueue(boto3.client("sqs"), self.settings.submit_queue_url)

    @cached_property
    def submit_slots(self) -> SubmitSlots:
        from veo_relay.submit_slots import SubmitSlots

        return SubmitSlots(self.settings.tasks_table)

    @cached_property
    def workflow(self) -> FallbackWorkflow:
        import boto3

        from veo_relay.workflow import FallbackWorkflow

        if not self.settings.state_machine_arn:
            raise RuntimeError("STATE_MACHINE_ARN is not configured for this function")
        return FallbackWorkflow(
            boto3.client("stepfunctions"),
            self.settings.state_machine_arn,
            self.settings.poll.deadline_seconds,
            self.settings.copy_lease_seconds,
        )

    @cached_property
    def telemetry(self) -> Telemetry:
        from veo_relay.telemetry import Telemetry

        return Telemetry(self.settings.metrics_namespace)

    @cached_property
    def video_events(self) -> VideoEvents:
        import boto3

        from veo_relay.announcements import VideoEvents

        if not self.settings.events.bus_name:
            raise RuntimeError("EVENT_BUS_NAME is not configured for this function")
        return VideoEvents(
            boto3.client("events"), self.settings.events.bus_name, self.settings.events.source
        )

    @cached_property
    def webhook_queue(self) -> WebhookQueue:
        import boto3

        from veo_relay.webhook_messages import WebhookQueue

        if not self.settings.webhooks.queue_url:
            raise RuntimeError("WEBHOOK_QUEUE_URL is not configured for this function")
        return WebhookQueue(boto3.client("sqs"), self.settings.webhooks.queue_url)

    @cached_property
    def secrets(self) -> SecretsProvider:
        # The function's own provider and cache (not Powertools' process-wide default).
        from aws_lambda_powertools.utilities.parameters import SecretsProvider

        return SecretsProvider()

    @cached_property
    def callback_tokens(self) -> CallbackTokens:
        from veo_relay.callback_tokens import CallbackTokens

        return CallbackTokens(self._callback_token_key)

    def _callback_token_key(self) -> bytes:
        return self._key(
            self.settings.callback_token_key_secret_arn,
            "CALLBACK_TOKEN_KEY_SECRET_ARN",
            "mints or checks callback tokens",
        )

    @cached_property
    def webhook_secrets(self) -> WebhookSecrets:
        from veo_relay.webhook_secrets import WebhookSecrets

        if not self.settings.principals_table:
            raise RuntimeError("PRINCIPALS_TABLE is not configured for this function")
        return WebhookSecrets(self.settings.principals_table, self.webhook_master_key)

    def webhook_master_key(self) -> bytes:
        """The key every principal's webhook secret is derived from, read through the secrets
        cache, so that a new one takes effect within SECRETS_CACHE_SECONDS, without a deploy (and
        changes every principal's secret at once)."""
        return self._key(
            self.settings.webhooks.master_key_secret_arn,
            "WEBHOOK_MASTER_KEY_SECRET_ARN",
            "shows or signs with webhook secrets",
        )

    def _key(self, arn: str | None, variable: str, use: str) -> bytes:
        """A key kept in Secrets Manager, read through the secrets cache on each use (a new value
        takes effect within SECRETS_CACHE_SECONDS, without a deploy)."""
        if not arn:
            raise ConfigurationError(f"{variable} is not configured for this function, which {use}")
        value = self.secrets.get(arn, max_age=self.settings.secrets_cache_seconds)
        return str(value).encode()

    def provider(self, name: str) -> Provider:
        if name not in self._providers:
            from veo_relay.providers import build_provider

            provider_settings = self.settings.providers[name]
            self._providers[name] = build_provider(
                provider_settings,
                api_key=lambda: provider_settings.api_key or self._provider_key(name),
                callback_key=lambda: self._secret_entry(
                    self.settings.callback_keys_secret_arn, name
                ),
            )
        return self._providers[name]

    def download_policy(self, provider: str) -> DownloadPolicy:
        from veo_relay.downloader import DownloadPolicy, ThroughputFloor

        settings = self.settings
        provider_settings = settings.providers[provider]
        trusted = (
            frozenset({origin_of(provider_settings.base_url)})
            if settings.trust_provider_origin
            else frozenset()
        )
        floor = (
            ThroughputFloor(
                bytes_per_second=settings.download_min_bytes_per_second,
                window_seconds=settings.download_throughput_window_seconds,
                grace_seconds=settings.download_throughput_grace_seconds,
            )
            if settings.download_min_bytes_per_second
            else None
        )
        return DownloadPolicy(
            allowed_origins=provider_settings.download_origins | trusted,
            trusted_local_origins=trusted,
            max_bytes=settings.download_max_bytes,
            throughput_floor=floor,
        )

    def _provider_key(self, provider: str) -> str | None:
        """From the provider keys secret; a function calling a provider without one (or a
        *_API_KEY) is misconfigured, and says so by name rather than send no key."""
        if not self.settings.provider_keys_secret_arn:
            raise ConfigurationError(
                f"PROVIDER_KEYS_SECRET_ARN (or {provider.upper()}_API_KEY) is not configured for "
                "this function, which calls the provider"
            )
        return self._secret_entry(self.settings.provider_keys_secret_arn, provider)

    def _secret_entry(self, secret_arn: str | None, provider: str) -> str | None:
        """The provider's entry of a JSON secret ({"apixo": "...", ...}), read on every use
        through the cache: a key put or rotated later is seen within SECRETS_CACHE_SECONDS."""
        if not secret_arn:
            return None
        entries: Any = self.secrets.get(
            secret_arn, transform="json", max_age=self.settings.secrets_cache_seconds
        )
        value = entries.get(provider) if isinstance(entries, dict) else None
        return value or None


@PerFunction
def get_runtime() -> Runtime:
    return Runtime(get_settings())
