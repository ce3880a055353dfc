"""One fallback poller step (the Lambda the state machine invokes), against moto and the
simulator."""

from __future__ import annotations

import time

import pytest

from tests.helpers import load_event

pytestmark = pytest.mark.stack_env(POLL_FIRST_WAIT_SECONDS=600)


def step(stack, task_id: str, attempt: int = 0) -> dict:
    return stack.invoke(
        "PollerFunction", load_event("poller_step", task_id=task_id, attempt=attempt)
    )


def test_a_running_task_stays_open_with_a_bounded_wait(stack):
    # Given a task the provider is still working on
    task = stack.create_task("a slow fox [sim:no-callback] [sim:delay=60]")

    # When the poller steps (sample event, task id patched in)
    result = step(stack, task["id"], attempt=3)

    # Then it asks to be called again, within the configured interval bounds
    assert result["outcome"] == "open"
    assert result["attempt"] == 4
    assert 1 <= result["wait_seconds"] <= 2  # POLL_MAX_INTERVAL_SECONDS, plus rounding
    assert stack.simulator.task(task["provider_task_id"]).status_reads == 1
    assert stack.copy_messages() == []


def test_a_finished_task_is_handed_to_the_copy_queue(stack):
    # Given a task the provider finished but never called back about
    task = stack.create_task("a fox [sim:no-callback]")
    sim_id = task["provider_task_id"]
    stack.simulator.wait_for(lambda: stack.simulator.task(sim_id).state == "succeeded")

    # When the poller steps
    result = step(stack, task["id"])

    # Then it hands the copy off and keeps watching until the video is stored
    assert result["outcome"] == "open"
    assert stack.bodies(stack.copy_messages()) == [{"task_id": task["id"], "reason": "poller"}]
    assert stack.status(task["id"]) == "in_progress"


def test_a_provider_failure_closes_the_task(stack):
    # Given a task the provider failed
    task = stack.create_task("a fox [sim:no-callback] [sim:fail=NSFW_DETECTED]")
    sim_id = task["provider_task_id"]
    stack.simulator.wait_for(lambda: stack.simulator.task(sim_id).state == "failed")

    # When the poller steps
    result = step(stack, task["id"])

    # Then the task is failed with our code and the poller is done
    assert result["outcome"] == "closed"
    item = stack.item(task["id"])
    assert item["status"]["S"] == "failed"
    assert item["error"]["M"]["code"]["S"] == "content_violation"


def test_a_closed_task_is_closed_without_asking_the_provider(stack):
    # Given a completed task
    task = stack.create_task("a fox [sim:no-callback]")
    sim_id = task["provider_task_id"]
    stack.simulator.wait_for(lambda: stack.simulator.task(sim_id).state == "succeeded")
    stack.copy(task["id"])
    reads = stack.simulator.task(sim_id).status_reads

    # When the poller steps
    result = step(stack, task["id"], attempt=2)

    # Then it reports closed and did not call the provider
    assert result == {"outcome": "closed", "wait_seconds": 0, "attempt": 3}
    assert stack.simulator.task(sim_id).status_reads == reads


@pytest.mark.stack_env(POLL_FIRST_WAIT_SECONDS=600, TASK_DEADLINE_SECONDS=1)
def test_a_task_past_its_deadline_fails_with_timeout(stack):
    # Given a task still running after its deadline
    task = stack.create_task("a slow fox [sim:no-callback] [sim:delay=60]")
    time.sleep(1.1)

    # When the poller steps
    result = step(stack, task["id"])

    # Then the task is failed with code timeout and the poller is done
    assert result["outcome"] == "closed"
    item = stack.item(task["id"])
    assert item["status"]["S"] == "failed"
    assert item["error"]["M"]["code"]["S"] == "timeout"
