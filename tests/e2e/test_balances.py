"""Provider balances: the scheduled balance reader reads the simulators' balances, and each
becomes the ProviderBalance metric the alarms watch."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests

from tests.e2e.targets import RunningStack

LOW = 42.0  # kie credits
KIE_DEFAULT = 10_000.0  # the simulator's own


@pytest.fixture
def low_kie_balance(stack: RunningStack) -> Iterator[float]:
    """kie's simulated balance set low through the simulator's control, then restored."""
    control = f"{stack.simulator_urls['kie']}/_sim/balance"
    assert requests.post(control, json={"balance": LOW}, timeout=30).status_code == 200
    yield LOW
    requests.post(control, json={"balance": KIE_DEFAULT}, timeout=30)


def lowest_kie_balance(stack: RunningStack, namespace: str) -> float | None:
    now = datetime.now(UTC)
    points = stack.aws("cloudwatch").get_metric_statistics(
        Namespace=namespace,
        MetricName="ProviderBalance",
        Dimensions=[
            {"Name": "provider", "Value": "kie"},
            {"Name": "service", "Value": "veo-relay"},
        ],
        StartTime=now - timedelta(minutes=5),
        EndTime=now + timedelta(minutes=1),
        Period=60,
        Statistics=["Minimum"],
    )["Datapoints"]
    return min((p["Minimum"] for p in points), default=None)


def test_the_scheduled_reader_puts_a_low_balance_into_cloudwatch(stack, low_kie_balance):
    if stack.deployed:
        # Its schedule is five minutes there: ask the function itself once.
        name = stack.outputs["BalanceReaderFunctionName"]  # type: ignore[attr-defined]
        answer = stack.aws("lambda").invoke(FunctionName=name, Payload=b"{}")
        result = json.loads(answer["Payload"].read())
        assert result["balances"]["kie"] == {"amount": LOW, "unit": "credits"}, result
        return

    # When the reader's schedule comes round (every 2 s in this stack)
    deadline = time.monotonic() + 30
    lowest = lowest_kie_balance(stack, "VeoRelayLocal")
    while lowest != LOW and time.monotonic() < deadline:
        time.sleep(0.5)
        lowest = lowest_kie_balance(stack, "VeoRelayLocal")

    # Then the embedded CloudWatch holds kie's low balance, by provider and service, as the
    # function's EMF output became metrics
    assert lowest == LOW
