"""Tasks beyond the provider's rate limit wait in the submit queue; the submit worker sends them."""

from __future__ import annotations

import json
import time

import pytest

from tests.helpers import load_event, response_json

# One apixo submit a minute: the second task of a test has to wait for the submit queue.
pytestmark = pytest.mark.stack_env(POLL_FIRST_WAIT_SECONDS=600, APIXO_RATE_LIMIT="1/60")


@pytest.fixture
def tickets(monkeypatch):
    """The submit queue's messages, as sent (they are delayed until their slot in SQS)."""
    from veo_relay.workflow import SubmitQueue

    sent: list[dict] = []
    real = SubmitQueue.request_submit

    def recording(self, ticket, slot_at):
        sent.append(
            {
                "task_id": ticket.task_id,
                "callback_token": ticket.callback_token,
                "callback_base_url": ticket.callback_base_url,
                "slot_at": slot_at,
            }
        )
        return real(self, ticket, slot_at)

    monkeypatch.setattr(SubmitQueue, "request_submit", recording)
    return sent


def submit_event(ticket: dict, slot_at: float) -> dict:
    event = load_event("submit_request")
    event["Records"][0]["body"] = json.dumps({**ticket, "slot_at": slot_at})
    return event


def test_a_task_over_the_rate_limit_is_queued_then_submitted_by_the_worker(stack, tickets):
    # Given one task that took the minute's only submit slot
    first = stack.create_task("first fox")
    assert first["status"] == "in_progress"
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
    assert stack.item(second["id"])["callback_token_hash"]["S"] not in json.dumps(ticket)
    sfn = stack.client("stepfunctions")
    assert (
        sfn.describe_execution(executionArn=stack.execution_arn(second["id"]))["name"]
        == (second["id"])
    )

    # When its slot has come and the submit worker gets the message
    result = stack.invoke("SubmitWorkerFunction", submit_event(ticket, time.time()))

    # Then the task is submitted in callback mode with its own token, and is in progress
    assert result == {"batchItemFailures": []}
    item = stack.item(second["id"])
    assert item["status"]["S"] == "in_progress"
    sim_task = stack.simulator.task(item["provider_task_id"]["S"])
    assert sim_task.callback_url.endswith(f"/v1/callbacks/apixo/{ticket['callback_token']}")


def test_a_ticket_delivered_twice_submits_once(stack, tickets):
    # Given a queued task whose ticket the worker already handled
    stack.create_task("first fox")
    second = response_json(stack.create_video({"prompt": "second fox"}))
    [ticket] = tickets
    stack.invoke("SubmitWorkerFunction", submit_event(ticket, time.time()))
    submitted = len(stack.simulator.submissions())

    # When SQS delivers the same ticket again
    result = stack.invoke("SubmitWorkerFunction", submit_event(ticket, time.time()))

    # Then nothing is sent to the provider again (a second submit could pay twice)
    assert result == {"batchItemFailures": []}
    assert len(stack.simulator.submissions()) == submitted
    assert stack.status(second["id"]) == "in_progress"


def test_a_ticket_whose_slot_is_far_goes_back_to_the_queue(stack, tickets):
    # Given a queued task
    stack.create_task("first fox")
    second = response_json(stack.create_video({"prompt": "second fox"}))
    [ticket] = tickets

    # When the worker gets its ticket long before the slot (an SQS delay caps at 15 minutes)
    result = stack.invoke("SubmitWorkerFunction", submit_event(ticket, time.time() + 3600))

    # Then the task stays queued and the ticket is sent back for later
    assert result == {"batchItemFailures": []}
    assert stack.status(second["id"]) == "queued"
    assert len(tickets) == 2 and tickets[1]["task_id"] == second["id"]
