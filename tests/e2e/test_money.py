"""A burst that hits a budget exactly, over HTTP against the `make run` stack: the creates the
budget pays for are accepted, every other is 402 and reaches no provider, and once the videos are
stored the month has spent the budget to the cent with nothing left reserved."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.conftest import BUDGET_USD, BUDGETED

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("VEO_RELAY_STACK")),
    reason="the budget is the offline stack's own setting (BUDGET_OVERRIDES_USD)",
)

PRICE_USD = 0.20  # apixo fast 720p, the template's price table
BURST = 20


def test_a_burst_that_hits_the_budget_exactly_never_overspends_and_leaves_nothing_reserved(stack):
    # Given a principal whose budget pays for exactly seven videos, and nothing spent this month
    affordable = round(BUDGET_USD / PRICE_USD)
    assert stack.request("GET", "/v1/usage", BUDGETED).json()["spent_usd"] == 0

    # When twenty creates race
    prompts = [f"budget burst {n} {time.time_ns()}" for n in range(BURST)]
    with ThreadPoolExecutor(BURST) as pool:
        responses = list(pool.map(lambda p: stack.create(BUDGETED, prompt=p), prompts))

    # Then exactly the affordable ones are accepted; the rest are 402 naming the budget
    accepted = [r.json() for r in responses if r.status_code == 202]
    refused = [r.json() for r in responses if r.status_code == 402]
    assert (len(accepted), len(refused)) == (affordable, BURST - affordable), [
        r.status_code for r in responses
    ]
    assert all(e["error"]["code"] == "budget_exceeded" for e in refused)
    assert all(f"${BUDGET_USD:.2f}" in e["error"]["message"] for e in refused)
    # When the accepted videos are stored
    for task in accepted:
        deadline = time.monotonic() + 60
        while (done := stack.get(task["id"], BUDGETED).json())["status"] != "completed":
            assert time.monotonic() < deadline, done
            time.sleep(0.25)
        assert done["cost"] == {"usd": PRICE_USD, "source": "price_table"}

    # And no refused create ever reached the provider
    submitted = [t["prompt"] for t in stack.simulator_state("apixo")["tasks"]]
    assert sorted(p for p in submitted if p in prompts) == sorted(t["prompt"] for t in accepted)

    # Then the month spent the budget exactly, with nothing left reserved (each settlement comes
    # from the table's stream, a moment after the task completed)
    deadline = time.monotonic() + 20
    while (usage := stack.request("GET", "/v1/usage", BUDGETED).json())["reserved_usd"] != 0:
        assert time.monotonic() < deadline, usage
        time.sleep(0.25)
    assert usage["spent_usd"] == pytest.approx(BUDGET_USD)
    assert usage["budget_usd"] == BUDGET_USD
    assert usage["tasks"]["completed"] == affordable
    # And the next create is refused still: the budget is spent
    assert stack.create(BUDGETED, prompt="one more").status_code == 402
