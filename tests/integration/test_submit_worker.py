"""Tasks beyond the provider's rate limit wait in the submit queue; the submit worker sends them."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest

from tests.helpers import api_event, load_event, response_json

# One apixo submit a minute: the second task of a test has to wait for the submit queue.
pytestmark = pytest.mark.stack_env(POLL_FIRST_WAIT_SECONDS=600, APIXO_RATE_LIMIT="1/60")


@pytest.fixture
def tickets(monkeypatch):
    """The submit queue's message bodies, as sent (they are delayed until their slot in SQS)."""
    from veo_relay.queues import SubmitQueue

    sent: list[dict] = []
    real = SubmitQueue.request_submit

    def recording(self, ticket, slot_at):
        sent.append({**dataclasses.asdict(ticket), "slot_at": slot_at})
        return real(self, ticket, slot_at)

    monkeypatch.setattr(SubmitQueue, "request_submit", recording)
    return sent


def submit_event(ticket: dict, slot_at: float) -> dict:
    event = load_event("submit_request")
    event["Records"][0]["body"] = json.dumps({**ticket, "slot_at": slot_at})
    return event


def test_a_task_over_the_rate_limit_is_queued_then_submitted_by_the_worker(
    stack, tickets, monkeypatch
):
    # Given a loaded machine's create, which may take more than the 0.5 s a 1/60 s limit lets a
    # submit be late (then it takes the next slot and is queued: its own test covers that)
    from veo_relay.settings import RateLimit

    monkeypatch.setattr(RateLimit, "MIN_LATE_TOLERANCE", 10.0)
    # And one task that took the minute's only submit slot
    first = stack.create_task("first fox")
    assert first["status"] in ("in_progress", "storing")  # storing once its callback came
    submitted_before = len(stack.simulator.submissions())

    # When a second task is created in the same minute
    response = stack.create_video({"prompt": "second fox"})

    # Then it is accepted but queued: not sent to the provider, its fallback poller already started
    assert response["statusCode"] == 202
    second = response_json(response)
    assert second["status"] == "queued"
    assert second["provider_task_id"] is None
    assert len(stack.simulator.submissions()) == submitted_before
    [ticket] = tickets
    assert ticket["task_id"] == second["id"]
    assert ticket["slot_at"] > time.time() + 30
    # And its message holds nothing secret: no token, which is derived at the submit
    assert set(ticket) == {"task_id", "callback_base_url", "slot_at"}
    sfn = stack.client("stepfunctions")
    assert (
        sfn.describe_execution(executionArn=stack.execution_arn(second["id"]))["name"]
        == (second["id"])
    )

    # When its slot has come and the submit worker gets the message
    result = stack.invoke("SubmitWorkerFunction", submit_event(ticket, time.time()))

    # Then the task is submitted in callback mode with the token of its first attempt (the
    # worker's claim), and is in progress
    assert result == {"batchItemFailures": []}
    item = stack.item(second["id"])
    assert item["status"]["S"] in ("in_progress", "storing")  # storing once its callback came
    assert item["submit_attempt"]["N"] == "1"
    sim_task = stack.simulator.task(item["provider_task_id"]["S"])
    token = sim_task.callback_url.rsplit("/", 1)[1]
    assert sim_task.callback_url == f"{ticket['callback_base_url']}/v1/callbacks/apixo/{token}"
    assert token.startswith(f"{second['id']}.1.")
    assert token not in json.dumps(item)


def test_a_ticket_delivered_twice_submits_once(stack, tickets, monkeypatch):
    # Given a loaded machine's submit, which may be later than a 1/60 s limit's 0.5 s tolerance
    # (then the first delivery would take a fresh slot and go back to the queue: its own test
    # covers that)
    from veo_relay.settings import RateLimit

    monkeypatch.setattr(RateLimit, "MIN_LATE_TOLERANCE", 10.0)
    # And a queued task whose ticket the worker already submitted
    stack.create_task("first fox")
    second = response_json(stack.create_video({"prompt": "second fox"}))
    # (the first may be queued too, when the API's time budget could not wait for its slot)
    [ticket] = [t for t in tickets if t["task_id"] == second["id"]]
    stack.invoke("SubmitWorkerFunction", submit_event(ticket, time.time()))
    assert stack.status(second["id"]) in ("in_progress", "storing")
    submitted = len(stack.simulator.submissions())

    # When SQS delivers the same ticket again
    result = stack.invoke("SubmitWorkerFunction", submit_event(ticket, time.time()))

    # Then nothing is sent to the provider again (a second submit could pay twice)
    assert result == {"batchItemFailures": []}
    assert len(stack.simulator.submissions()) == submitted
    assert stack.status(second["id"]) in ("in_progress", "storing")  # storing once called back


def test_a_ticket_whose_slot_is_far_goes_back_to_the_queue(stack, tickets):
    # Given a queued task
    stack.create_task("first fox")
    second = response_json(stack.create_video({"prompt": "second fox"}))
    # (the first may be queued too, when the API's time budget could not wait for its slot)
    [ticket] = [t for t in tickets if t["task_id"] == second["id"]]

    # When the worker gets its ticket long before the slot (an SQS delay caps at 15 minutes)
    result = stack.invoke("SubmitWorkerFunction", submit_event(ticket, time.time() + 3600))

    # Then the task stays queued and the ticket is sent back for later
    assert result == {"batchItemFailures": []}
    assert stack.status(second["id"]) == "queued"
    assert [t["task_id"] for t in tickets].count(second["id"]) == 2
    assert tickets[-1]["task_id"] == second["id"]


def test_a_slow_claim_does_not_make_a_ticket_late_for_its_slot(stack, tickets, monkeypatch):
    # Given a queued task, and a table so loaded that the claim's write takes 2.5 s; a submit
    # may be 1.5 s late here (a loaded machine's own delays stay within that), so a claim taken
    # after the slot, not while it is awaited, would make it late
    from veo_relay.settings import RateLimit
    from veo_relay.task_store import TaskStore

    monkeypatch.setattr(RateLimit, "MIN_LATE_TOLERANCE", 1.5)
    stack.create_task("first fox")
    second = response_json(stack.create_video({"prompt": "second fox"}))
    [ticket] = [t for t in tickets if t["task_id"] == second["id"]]
    claim = TaskStore.claim_submit

    def slow_claim(self, task_id):
        time.sleep(2.5)
        return claim(self, task_id)

    monkeypatch.setattr(TaskStore, "claim_submit", slow_claim)

    # When the worker gets its ticket 2.9 s before the slot (within the 3 s it waits for one)
    result = stack.invoke("SubmitWorkerFunction", submit_event(ticket, time.time() + 2.9))

    # Then it is submitted in its slot: the claim was taken while the slot was awaited, not after
    # it (late, it would go to the end of the schedule, and under a burst round the queue for good)
    assert result == {"batchItemFailures": []}
    assert stack.status(second["id"]) in ("in_progress", "storing")
    assert [t["task_id"] for t in tickets].count(second["id"]) == 1


@pytest.mark.stack_env(POLL_FIRST_WAIT_SECONDS=600, APIXO_RATE_LIMIT="100/60")
def test_a_ticket_delivered_long_after_its_slot_takes_a_fresh_one_and_goes_at_once(stack, tickets):
    # Given a queued task whose ticket reaches the worker a minute after its slot (a busy system)
    task = stack.create_task("a fox [sim:no-callback]")
    submitted_before = len(stack.simulator.submissions())
    ticket = {**_ticket_of(stack, task["id"]), "slot_at": time.time() - 60}

    # When the worker handles it, the provider having room now
    stack.client("dynamodb").update_item(
        TableName=stack.table,
        Key={"id": {"S": task["id"]}},
        UpdateExpression="SET #s = :q REMOVE submit_claimed_at, provider_task_id",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":q": {"S": "queued"}},
    )
    result = stack.invoke("SubmitWorkerFunction", submit_event(ticket, ticket["slot_at"]))

    # Then it is submitted in a fresh slot, not sent back to the queue (where it would be late
    # again)
    assert result == {"batchItemFailures": []}
    assert len(stack.simulator.submissions()) == submitted_before + 1
    assert stack.status(task["id"]) == "in_progress"
    assert tickets == []


def _ticket_of(stack, task_id: str) -> dict:
    """A ticket for a task, as the submit queue would carry it."""
    return {"task_id": task_id, "callback_base_url": "https://api.example"}


def test_a_queued_extension_is_submitted_by_the_worker_against_its_parent(
    stack, tickets, monkeypatch
):
    # Given a loaded machine's create and submit, which may be later than a 1/60 s limit's 0.5 s
    # tolerance (then the parent would be queued, never called back, or the extension queued
    # again: their own tests cover that)
    from veo_relay.settings import RateLimit

    monkeypatch.setattr(RateLimit, "MIN_LATE_TOLERANCE", 10.0)
    # And a completed video that took the minute's only submit slot
    parent = stack.create_task("first fox")
    stack.wait_for_status(parent["id"], "storing")  # called back
    assert stack.copy(parent["id"]) == {"batchItemFailures": []}
    assert stack.status(parent["id"]) == "completed"

    # When it is extended in the same minute: queued
    event = api_event("api_extend_video", path=f"/v1/videos/{parent['id']}/extend")
    event["pathParameters"] = {"id": parent["id"]}
    response = stack.invoke("ApiFunction", event)
    assert response["statusCode"] == 202, response
    child = response_json(response)
    assert child["status"] == "queued"
    [ticket] = tickets

    # And the submit worker gets its message when its slot has come
    result = stack.invoke("SubmitWorkerFunction", submit_event(ticket, time.time()))

    # Then the provider was asked to extend the parent's provider task (which the worker read)
    assert result == {"batchItemFailures": []}
    item = stack.item(child["id"])
    assert item["status"]["S"] == "in_progress"
    sim_task = stack.simulator.task(item["provider_task_id"]["S"])
    assert sim_task.kind == "extend"
    assert sim_task.parent_task_id == parent["provider_task_id"]
