"""The offline stack's schedules (each Schedule event's function run at start and then every
period) and its EMF sink (the metrics a function prints, as CloudWatch metric data)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

from offline.event_sources import Schedules
from offline.metrics import metric_data
from offline.template import load_template, rate_seconds


class RecordingFunctions:
    def __init__(self, fail: bool = False) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.fail = fail
        self.third = threading.Event()

    def invoke(self, name: str, event: dict[str, Any]) -> Any:
        self.events.append((name, event))
        if len(self.events) >= 3:
            self.third.set()
        if self.fail:
            raise RuntimeError("a provider could not be read")
        return {}


def test_rate_expressions_are_read_in_seconds():
    assert rate_seconds("rate(5 minutes)") == 300
    assert rate_seconds("rate(1 hour)") == 3600
    assert rate_seconds("rate(2 days)") == 172800


def test_a_scheduled_function_runs_at_start_and_then_every_period_even_after_failing():
    # Given the template's schedules, their period made short, and a function that fails
    functions = RecordingFunctions(fail=True)
    schedules = Schedules(load_template(), functions, period_seconds=0.05, first_delay_seconds=0.01)  # type: ignore[arg-type]

    # When the schedules run for a while
    started = time.monotonic()
    schedules.start()
    try:
        assert functions.third.wait(5)
    finally:
        schedules.stop()

    # Then the reader ran again and again, each time with a scheduled event, its failures logged
    assert time.monotonic() - started >= 0.1
    assert {name for name, _ in functions.events} == {"BalanceReaderFunction"}
    assert all(event["detail-type"] == "Scheduled Event" for _, event in functions.events)


def test_an_emf_document_becomes_metric_data_with_its_dimensions():
    # Given the document Powertools prints for one balance
    document = {
        "_aws": {
            "Timestamp": 1_795_255_200_000,
            "CloudWatchMetrics": [
                {
                    "Namespace": "VeoRelayLocal",
                    "Dimensions": [["provider", "service"]],
                    "Metrics": [{"Name": "ProviderBalance", "Unit": "None"}],
                }
            ],
        },
        "provider": "kie",
        "service": "veo-relay",
        "ProviderBalance": [5.0],
    }

    # When it is read as PutMetricData calls
    ((namespace, data),) = metric_data(document)

    # Then it is the one datum, by provider and service, at the document's time
    assert namespace == "VeoRelayLocal"
    assert data == [
        {
            "MetricName": "ProviderBalance",
            "Dimensions": [
                {"Name": "provider", "Value": "kie"},
                {"Name": "service", "Value": "veo-relay"},
            ],
            "Value": 5.0,
            "Unit": "None",
            "Timestamp": datetime.fromtimestamp(1_795_255_200, UTC),
        }
    ]
