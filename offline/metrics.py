"""The functions' metrics in the embedded CloudWatch: Lambda's log pipeline turns each embedded
metric format (EMF) document a function prints into CloudWatch metrics; here each document
Powertools serialises is also put into moto with PutMetricData, by a thread of the stack's own
(no function's role: in AWS, EMF needs no permission of the function)."""

from __future__ import annotations

import logging
import queue
import threading
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("offline.metrics")

_documents: queue.Queue[dict[str, Any] | None] = queue.Queue()
_patched = False


def metric_data(document: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """An EMF document as PutMetricData calls: (namespace, MetricData) for each directive."""
    aws = document["_aws"]
    timestamp = datetime.fromtimestamp(aws["Timestamp"] / 1000, UTC)
    calls = []
    for directive in aws["CloudWatchMetrics"]:
        data = []
        for dimension_set in directive["Dimensions"]:
            dimensions = [{"Name": n, "Value": str(document[n])} for n in dimension_set]
            for metric in directive["Metrics"]:
                values = document[metric["Name"]]
                for value in values if isinstance(values, list) else [values]:
                    data.append(
                        {
                            "MetricName": metric["Name"],
                            "Dimensions": dimensions,
                            "Value": float(value),
                            "Unit": metric.get("Unit") or "None",
                            "Timestamp": timestamp,
                        }
                    )
        calls.append((directive["Namespace"], data))
    return calls


def _capture_emf() -> None:
    """Once per process: every document Powertools serialises is queued for the sink."""
    global _patched
    if _patched:
        return
    from aws_lambda_powertools.metrics.base import MetricManager

    serialize = MetricManager.serialize_metric_set

    def serialized_and_queued(self: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        document: dict[str, Any] = serialize(self, *args, **kwargs)
        _documents.put(document)
        return document

    MetricManager.serialize_metric_set = serialized_and_queued  # type: ignore[method-assign]
    _patched = True


class EmfSink:
    """Puts the queued documents into the embedded CloudWatch until stopped."""

    def __init__(self, session: Any) -> None:
        self._cloudwatch = session.client("cloudwatch")
        self._thread = threading.Thread(target=self._run, name="emf-sink", daemon=True)

    def start(self) -> EmfSink:
        _capture_emf()
        self._thread.start()
        return self

    def stop(self) -> None:
        _documents.put(None)
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while (document := _documents.get()) is not None:
            try:
                for namespace, data in metric_data(document):
                    self._cloudwatch.put_metric_data(Namespace=namespace, MetricData=data)
            except Exception:  # a malformed document or the embedded AWS stopping
                log.exception("an EMF document was not put into CloudWatch")
