"""Money against moto: budgets that hold under racing creates, the creates-per-minute quota, costs
on the task object, and each reservation settled from the tasks table's stream."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest

from offline.event_sources import StreamPollers
from tests.helpers import ALICE, api_event, header, response_json, wait_until
from veo_relay.spend_ledger import SpendLedger
from veo_relay.tasks import StoredVideo

pytestmark = pytest.mark.stack_env(POLL_FIRST_WAIT_SECONDS=600)

BUDGETED = "arn:aws:iam::123456789012:user/budgeted"
MONTH = time.strftime("%Y-%m", time.gmtime())


@pytest.fixture
def stream_pollers(stack: Any) -> Iterator[StreamPollers]:
    """The tasks table's stream → its consumers (the settler among them), as Lambda runs them."""
    pollers = StreamPollers(
        stack.template, stack.functions, stack.session, poll_interval_seconds=0.05
    )
    pollers.start()
    yield pollers
    pollers.stop()


def usage(stack: Any, principal: str = ALICE, **query: str) -> dict[str, Any]:
    response = stack.invoke(
        "ApiFunction", api_event("api_get_usage", principal=principal, query=query)
    )
    assert response["statusCode"] == 200, response
    return response_json(response)


def test_reservations_racing_for_the_end_of_a_budget_never_pass_it(stack):
    # Given the API's own ledger on the tasks table, and a budget of $1.00
    ledger: SpendLedger = stack.runtime("ApiFunction").creation.spending.ledger

    # When 24 reservations of $0.30 race for it, eight at a time
    start = threading.Barrier(8)

    def reserve(_: int) -> bool:
        start.wait()
        return ledger.reserve(BUDGETED, MONTH, 300_000, 1_000_000)

    with ThreadPoolExecutor(8) as pool:
        granted = list(pool.map(reserve, range(24)))

    # Then exactly three are granted, and the month holds $0.90: never more than its budget
    assert granted.count(True) == 3
    assert ledger.read(BUDGETED, MONTH) == (900_000, 0)


@pytest.mark.stack_env(BUDGET_OVERRIDES_USD='{"' + BUDGETED + '": 0.5}')
def test_a_create_past_the_budget_is_402_naming_it_and_reaches_no_provider(stack):
    # Given a principal whose budget takes two apixo videos ($0.20 each) and not a third
    for n in range(2):
        stack.create_task(f"video {n}", principal=BUDGETED)
    submitted = len(stack.simulator.submissions())

    # When it asks for a third
    response = stack.create_video({"prompt": "one too many"}, principal=BUDGETED)

    # Then it is 402 budget_exceeded naming the budget and the spend, and no provider saw it
    assert response["statusCode"] == 402
    error = response_json(response)["error"]
    assert error["code"] == "budget_exceeded"
    assert "$0.50" in error["message"] and "reserved $0.40" in error["message"]
    assert len(stack.simulator.submissions()) == submitted
    assert len(stack.task_items()) == 2
    # And the others' budget is their own: another principal (no budget) still creates
    stack.create_task("someone else's")


@pytest.mark.stack_env(CREATES_PER_MINUTE="2")
def test_the_creates_of_a_minute_past_the_limit_are_429_with_retry_after(stack):
    # Given the start of a minute (so that the three creates below fall in one)
    if time.time() % 60 > 50:
        time.sleep(60 - time.time() % 60 + 0.1)
    stack.create_task("first")
    stack.create_task("second")

    # When a third comes in the same minute
    response = stack.create_video({"prompt": "third"})

    # Then it is 429, with the seconds to wait, and nothing was created
    assert response["statusCode"] == 429
    assert response_json(response)["error"]["code"] == "throttled"
    assert 1 <= int(header(response, "Retry-After") or 0) <= 60
    assert len(stack.task_items()) == 2


def test_a_submitted_task_has_its_cost_and_usage_shows_it_reserved_then_spent(
    stack, stream_pollers
):
    # Given a task the provider has (apixo fast: $0.20)
    task = stack.create_task("a lighthouse")
    assert task["status"] == "in_progress"
    assert task["cost"] == {"usd": 0.2, "source": "price_table"}
    before = usage(stack)
    assert (before["spent_usd"], before["reserved_usd"], before["budget_usd"]) == (0, 0.2, None)
    assert before["tasks"]["in_progress"] == 1

    # When it completes (its copy's writes, as the copy worker makes them)
    tasks = stack.runtime("CopyWorkerFunction").tasks
    assert tasks.mark_storing(task["id"], lease=timedelta(minutes=5))
    key = f"videos/{task['id']}/{task['id']}.mp4"
    video = StoredVideo(stack.bucket, key, 1, "0" * 64, "video/mp4")
    assert tasks.mark_completed(task["id"], video)

    # Then the settler, on the table's stream, makes the reservation its cost
    wait_until(lambda: usage(stack)["spent_usd"] == 0.2, timeout=10, what="the settlement")
    after = usage(stack)
    assert after["reserved_usd"] == 0 and after["tasks"]["completed"] == 1
    # And a month without tasks is empty
    assert usage(stack, month="2001-01")["tasks"] == dict.fromkeys(before["tasks"], 0)


def test_a_refused_month_is_a_422_naming_the_field(stack):
    response = stack.invoke("ApiFunction", api_event("api_get_usage", query={"month": "2026-13"}))
    assert response["statusCode"] == 422
    assert response_json(response)["error"]["message"].startswith("month")
