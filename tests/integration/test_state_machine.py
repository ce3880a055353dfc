"""The real fallback poller definition, executed by moto, with its Lambda tasks run by our handlers.

Executions are started by the API's create, as in production, with waits of seconds.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.helpers import wait_until


def entered_states(history: list[dict]) -> list[str]:
    return [
        e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e
    ]


def poll_results(history: list[dict]) -> list[dict]:
    """The poller function's answers, in order."""
    results = []
    for event in history:
        details = event.get("taskSucceededEventDetails")
        if details and details["resourceType"] == "lambda":
            results.append(json.loads(details["output"])["Payload"])
    return results


@pytest.mark.stack_env(POLL_FIRST_WAIT_SECONDS=3)
def test_a_task_finished_by_its_callback_ends_without_polling(stack):
    # Given the copy worker running on the copy queue, as its event source mapping runs it
    stack.start_queue_pollers()

    # When a video is created and its provider calls back before the first wait is over
    task = stack.create_task("a fox")
    stack.wait_for_status(task["id"], "completed", timeout=3)

    # Then the execution ends successfully on its single DynamoDB read
    arn = stack.execution_arn(task["id"])
    execution = stack.wait_for_execution(arn, timeout=10)
    assert execution["status"] == "SUCCEEDED"
    history = stack.history(arn)
    assert entered_states(history) == [
        "WaitForProvider",
        "ReadTaskStatus",
        "IsTaskClosed",
        "TaskClosed",
    ]
    assert "PollProvider" not in entered_states(history)
    assert not [e for e in history if e["type"].startswith("LambdaFunction")]
    assert json.loads(execution["output"])["task"] == {"status": "completed"}


def test_without_a_callback_the_poller_finds_the_result_and_hands_off_the_copy(stack):
    # Given the copy worker running on the copy queue
    stack.start_queue_pollers()

    # When a video is created whose provider never calls back
    task = stack.create_task("a fox [sim:no-callback]")

    # Then the execution polls the provider, the copy happens, and the execution ends
    arn = stack.execution_arn(task["id"])
    execution = stack.wait_for_execution(arn, timeout=20)
    assert execution["status"] == "SUCCEEDED"
    history = stack.history(arn)
    states = entered_states(history)
    assert states[:4] == ["WaitForProvider", "ReadTaskStatus", "IsTaskClosed", "PollProvider"]
    assert "WaitBeforeNextPoll" in states
    assert states[-1] == "TaskClosed"
    results = poll_results(history)
    assert results[0]["outcome"] == "open"
    assert results[-1]["outcome"] == "closed"
    assert [r["attempt"] for r in results] == list(range(1, len(results) + 1))
    scheduled = [e["taskScheduledEventDetails"] for e in history if e["type"] == "TaskScheduled"]
    lambda_calls = [d for d in scheduled if d["resourceType"] == "lambda"]
    assert lambda_calls
    assert all(
        json.loads(d["parameters"])["FunctionName"].endswith(":function:PollerFunction")
        for d in lambda_calls
    )

    # And the task is completed with the provider's video, which came without any callback
    item = stack.item(task["id"])
    assert item["status"]["S"] == "completed"
    assert "callback_received_at" not in item
    sim_task = stack.simulator.task(task["provider_task_id"])
    assert sim_task.callbacks == ()
    key = item["video"]["M"]["key"]["S"]
    data = stack.client("s3").get_object(Bucket=stack.bucket, Key=key)["Body"].read()
    assert hashlib.sha256(data).hexdigest() == stack.simulator.video_sha256(sim_task.task_id)


@pytest.mark.stack_env(TASK_DEADLINE_SECONDS=2)
def test_a_task_past_its_deadline_ends_failed_with_timeout(stack):
    # When a video is created that the provider will not finish in time
    task = stack.create_task("a very slow fox [sim:delay=60] [sim:no-callback]")

    # Then the execution polls until the deadline and closes the task as timed out
    arn = stack.execution_arn(task["id"])
    execution = stack.wait_for_execution(arn, timeout=20)
    assert execution["status"] == "SUCCEEDED"
    history = stack.history(arn)
    results = poll_results(history)
    assert results[-1]["outcome"] == "closed"
    assert all(r["outcome"] == "open" for r in results[:-1])
    assert all(1 <= r["wait_seconds"] <= 2 for r in results[:-1])

    item = stack.item(task["id"])
    assert item["status"]["S"] == "failed"
    assert item["error"]["M"]["code"]["S"] == "timeout"


def test_a_second_start_for_the_same_task_is_harmless(stack):
    # Given a created task, whose execution is running
    task = stack.create_task("a fox [sim:no-callback] [sim:delay=60]")
    sfn = stack.client("stepfunctions")
    arn = stack.execution_arn(task["id"])
    wait_until(lambda: sfn.describe_execution(executionArn=arn)["status"] == "RUNNING")

    # When the workflow is started again for it (a retried create)
    from veo_relay.runtime import get_runtime

    get_runtime().workflow.start(task["id"])

    # Then there is still one execution for the task
    executions = sfn.list_executions(stateMachineArn=stack.state_machine_arn)["executions"]
    assert [e["name"] for e in executions] == [task["id"]]
