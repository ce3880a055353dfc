"""Business metrics as CloudWatch embedded metric format (EMF) lines, through Powertools.

Each metric is flushed on its own (`single_metric`) because one batch of records can hold tasks of
several providers, and Powertools' batched Metrics carry one set of dimensions per flush.
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit, single_metric


class Telemetry:
    def __init__(self, namespace: str) -> None:
        self._namespace = namespace

    def task_created(self, provider: str) -> None:
        self._emit("TasksCreated", MetricUnit.Count, 1, provider=provider)

    def task_completed(
        self,
        provider: str,
        size_bytes: int,
        copy_seconds: float,
        callback_to_stored_seconds: float | None,
        cost_usd: float | None = None,
    ) -> None:
        self._emit("TasksCompleted", MetricUnit.Count, 1, provider=provider)
        if cost_usd is not None:
            # CloudWatch has no currency unit: the name says it.
            self._emit("TaskCostUsd", MetricUnit.NoUnit, cost_usd, provider=provider)
        self._emit("BytesCopied", MetricUnit.Bytes, size_bytes, provider=provider)
        self._emit("CopyDuration", MetricUnit.Milliseconds, copy_seconds * 1000, provider=provider)
        if callback_to_stored_seconds is not None:
            self._emit(
                "CallbackToStoredLatency",
                MetricUnit.Milliseconds,
                callback_to_stored_seconds * 1000,
                provider=provider,
            )

    def task_failed(self, provider: str) -> None:
        self._emit("TasksFailed", MetricUnit.Count, 1, provider=provider)

    def provider_error(self, provider: str, code: str) -> None:
        self._emit("ProviderErrors", MetricUnit.Count, 1, provider=provider, code=code)

    def video_verified(self, matches: bool) -> None:
        self._emit("VideosVerified" if matches else "VideoMismatches", MetricUnit.Count, 1)

    def webhook_outcome(self, outcome: str) -> None:
        self._emit("WebhookDeliveries", MetricUnit.Count, 1, outcome=outcome)

    def provider_balance(self, provider: str, amount: float) -> None:
        # In the provider's own unit (its spec's balance_unit: apixo dollars, kie credits), which
        # CloudWatch has no name for.
        self._emit("ProviderBalance", MetricUnit.NoUnit, amount, provider=provider)

    def _emit(self, name: str, unit: MetricUnit, value: float, **dimensions: str) -> None:
        with single_metric(
            name=name,
            unit=unit,
            value=value,
            namespace=self._namespace,
            default_dimensions=dimensions or None,
        ):
            pass
