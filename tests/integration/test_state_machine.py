"""The real fallback poller definition, executed by moto, with its Lambda tasks run by our handlers.

The definition is statemachine/fallback_poller.asl.json with template.yaml's substitutions; moto's
interpreter runs it (waits, retries, catches, the DynamoDB and Lambda integrations), and its
`lambda:invoke` tasks are dispatched to functions/poller/app.py. Executions are started by the
API's create, as in production, with waits of seconds (POLL_FIRST_WAIT_SECONDS=1,
POLL_INTERVAL_SECONDS=1, POLL_MAX_INTERVAL_SECONDS=2 unless a test says otherwise).

How the tests count, from `get_execution_history`:

- a *state transition* is one `StateEntered` event: one state the execution went through. A Task
  state that is retried is entered once; its retries show up as further TaskScheduled events
  (and are counted as Lambda invocations below when the task is a Lambda one).
- a *Lambda invocation* is one `TaskScheduled` event whose resourceType is "lambda" (the
  `lambda:invoke` integration, one per attempt) or one `LambdaFunctionScheduled` event (the
  legacy form of a Lambda task, which this definition does not use).

Besides the history, each test looks at the task item, the objects in the video bucket (exactly
one per completed task), the simulator's view (status reads, callbacks, submissions) and, through
a spy on the task store, how many times a terminal transition really happened.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bench.asl import lambda_invocations, minimum_path
from tests.helpers import (
    ROOT,
    api_event,
    apixo_status_body,
    post_json,
    response_json,
    wait_until,
)
from veo_relay.tasks import StoredVideo

ASL_PATH = ROOT / "statemachine" / "fallback_poller.asl.json"


# --- reading the execution history ---------------------------------------------------------------


def entered_states(history: list[dict]) -> list[str]:
    """The states entered, in order: one state transition each."""
    return [
        e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e
    ]


def scheduled_tasks(history: list[dict], resource_type: str) -> list[dict]:
    return [
        e["taskScheduledEventDetails"]
        for e in history
        if e["type"] == "TaskScheduled"
        and e["taskScheduledEventDetails"]["resourceType"] == resource_type
    ]


def failed_tasks(history: list[dict], resource_type: str) -> list[dict]:
    return [
        e["taskFailedEventDetails"]
        for e in history
        if e["type"] == "TaskFailed"
        and e["taskFailedEventDetails"]["resourceType"] == resource_type
    ]


def poll_results(history: list[dict]) -> list[dict]:
    """The poller function's answers, in order."""
    results = []
    for event in history:
        details = event.get("taskSucceededEventDetails")
        if details and details["resourceType"] == "lambda":
            results.append(json.loads(details["output"])["Payload"])
    return results


def load_definition(path: Path = ASL_PATH) -> dict:
    return json.loads(path.read_text())


# --- spies and stack helpers -------------------------------------------------------------------


@dataclass
class Recorder:
    """What really happened inside the handlers: transitions that took effect, copy requests,
    videos streamed into S3."""

    events: list[tuple[str, str, str]] = field(default_factory=list)  # (what, task id, detail)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, what: str, task_id: str, detail: str = "") -> None:
        with self.lock:
            self.events.append((what, task_id, detail))

    def details(self, what: str, task_id: str) -> list[str]:
        with self.lock:
            return [d for w, t, d in self.events if w == what and t == task_id]

    def count(self, what: str, task_id: str) -> int:
        return len(self.details(what, task_id))


@pytest.fixture
def record(stack, monkeypatch: pytest.MonkeyPatch) -> Recorder:
    """Spies on the task store's transitions (counted only when their conditional write took
    effect), the copy queue and the video store, whichever function calls them."""
    from veo_relay.queues import CopyQueue
    from veo_relay.task_store import TaskStore
    from veo_relay.video_store import VideoStore

    recorder = Recorder()

    def spy_transition(name: str) -> None:
        original = getattr(TaskStore, name)

        def transition(self, task_id, *args, **kwargs):
            result = original(self, task_id, *args, **kwargs)
            if result is not None:
                recorder.add(name, task_id)
            return result

        monkeypatch.setattr(TaskStore, name, transition)

    # record_callback takes the copy's lease too (one write for the callback and the lease)
    for name in ("record_callback", "mark_storing", "mark_completed", "mark_failed"):
        spy_transition(name)

    original_request_copy = CopyQueue.request_copy

    def request_copy(self, task_id, reason, lease=None):
        recorder.add("request_copy", task_id, reason)
        return original_request_copy(self, task_id, reason, lease)

    monkeypatch.setattr(CopyQueue, "request_copy", request_copy)

    original_store = VideoStore.store

    def store(self, stream, key, metadata):
        recorder.add("store_video", metadata.get("task-id", ""), key)
        return original_store(self, stream, key, metadata)

    monkeypatch.setattr(VideoStore, "store", store)
    return recorder


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """moto's interpreter sleeps out every Retry interval (time.sleep in RetrierDecl): up to
    2+4+8+16+32+60 s for PollProvider. The definition's intervals are kept and recorded (so a test
    can check the backoff), but each is slept as 10 ms."""
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    requested: list[float] = []
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        requested.append(seconds)
        real_sleep(0.01)

    monkeypatch.setattr(retrier_decl, "time", SimpleNamespace(sleep=sleep))
    return requested


def unique(prompt: str) -> str:
    """A prompt no other test sends, so the simulators' submission logs can be filtered by it."""
    return f"{prompt} #{uuid.uuid4().hex[:8]}"


def video_keys(stack, task_id: str) -> list[str]:
    listed = stack.client("s3").list_objects_v2(Bucket=stack.bucket, Prefix="videos/")
    return [
        o["Key"]
        for o in listed.get("Contents", [])
        if task_id in o["Key"] and o["Key"].endswith(".mp4")
    ]


def assert_stored_once(stack, record: Recorder, task_id: str, simulator) -> dict:
    """The task completed exactly once, with exactly one object: the provider's video."""
    item = stack.item(task_id)
    assert item["status"]["S"] == "completed"
    assert "error" not in item or item["error"].get("NULL")
    assert record.count("mark_completed", task_id) == 1
    assert record.count("mark_failed", task_id) == 0
    # one lease taken: by the callback, or by the copy worker when no callback came
    assert record.count("record_callback", task_id) + record.count("mark_storing", task_id) == 1
    assert len(record.details("store_video", task_id)) == 1
    key = item["video"]["M"]["key"]["S"]
    assert video_keys(stack, task_id) == [key]
    assert key.endswith(".mp4")
    data = stack.client("s3").get_object(Bucket=stack.bucket, Key=key)["Body"].read()
    sim_task = simulator.task(item["provider_task_id"]["S"])
    assert hashlib.sha256(data).hexdigest() == simulator.video_sha256(sim_task.task_id)
    return item


def assert_failed_once(stack, record: Recorder, task_id: str, code: str) -> dict:
    item = stack.item(task_id)
    assert item["status"]["S"] == "failed"
    assert item["error"]["M"]["code"]["S"] == code
    assert record.count("mark_failed", task_id) == 1
    assert record.count("mark_completed", task_id) == 0
    assert record.details("store_video", task_id) == []
    assert video_keys(stack, task_id) == []
    return item


def submissions_of(simulator, prompt: str) -> list:
    return [s for s in simulator.submissions() if s.prompt == prompt]


def finished_execution(stack, task_id: str, timeout: float = 20.0) -> tuple[dict, list[dict]]:
    arn = stack.execution_arn(task_id)
    execution = stack.wait_for_execution(arn, timeout=timeout)
    return execution, stack.history(arn)


# --- the cases ---------------------------------------------------------------------------------


@pytest.mark.stack_env(POLL_FIRST_WAIT_SECONDS=3)
def test_a_task_finished_by_its_callback_ends_without_polling(stack, record):
    # Given the copy worker running on the copy queue, as its event source mapping runs it
    stack.start_queue_pollers()

    # When a video is created and its provider calls back before the first wait is over
    prompt = unique("a fox")
    task = stack.create_task(prompt)
    stack.wait_for_status(task["id"], "completed", timeout=3)

    # Then the execution ends successfully on its single DynamoDB read: 4 state transitions
    # (at most 6 allowed), no Lambda invocation, no provider status call by the poller
    execution, history = finished_execution(stack, task["id"], timeout=10)
    assert execution["status"] == "SUCCEEDED"
    assert entered_states(history) == [
        "WaitForProvider",
        "ReadTaskStatus",
        "IsTaskClosed",
        "TaskClosed",
    ]
    assert len(entered_states(history)) <= 6
    assert lambda_invocations(history) == 0
    assert not [e for e in history if e["type"].startswith("LambdaFunction")]
    assert [d["resource"] for d in scheduled_tasks(history, "dynamodb")] == ["getItem"]
    assert json.loads(execution["output"])["task"] == {"status": "completed"}

    # And the video was copied once, through the callback path only
    assert_stored_once(stack, record, task["id"], stack.simulator)
    assert record.details("request_copy", task["id"]) == ["callback"]
    sim_task = stack.sim_task_for(task["id"])
    assert [c.status_code for c in sim_task.callbacks] == [200]
    assert sim_task.status_reads == 1  # the copy's confirmation with the provider
    assert len(submissions_of(stack.simulator, prompt)) == 1


def test_without_a_callback_the_poller_finds_the_result_and_hands_off_the_copy(stack, record):
    # Given the copy worker running on the copy queue
    stack.start_queue_pollers()

    # When a video is created whose provider never calls back
    prompt = unique("a fox [sim:no-callback]")
    task = stack.create_task(prompt)

    # Then the execution polls the provider, the copy happens, and the execution ends
    execution, history = finished_execution(stack, task["id"])
    assert execution["status"] == "SUCCEEDED"
    states = entered_states(history)
    assert states[:4] == ["WaitForProvider", "ReadTaskStatus", "IsTaskClosed", "PollProvider"]
    assert "WaitBeforeNextPoll" in states
    assert states[-1] == "TaskClosed"
    results = poll_results(history)
    assert results[0]["outcome"] == "open"
    assert results[-1]["outcome"] == "closed"
    assert all(r["outcome"] == "open" for r in results[:-1])
    assert [r["attempt"] for r in results] == list(range(1, len(results) + 1))
    lambda_calls = scheduled_tasks(history, "lambda")
    assert len(lambda_calls) == len(results)
    assert all(
        json.loads(d["parameters"])["FunctionName"].endswith(":function:PollerFunction")
        for d in lambda_calls
    )

    # And the execution, named after the task, started once the provider had accepted it
    (submission,) = submissions_of(stack.simulator, prompt)
    assert submission.task_id == task["provider_task_id"]
    assert execution["name"] == task["id"]
    assert execution["startDate"].timestamp() >= submission.received_at
    execution_input = json.loads(execution["input"])
    assert execution_input.pop("failed_expires_at").isdigit()
    assert execution_input == {
        "task_id": task["id"],
        "first_wait_seconds": 1,
        "copy_lease_seconds": 360,
        "poll": {"attempt": 0},
    }

    # And the task is completed with the provider's video, which came without any callback
    item = assert_stored_once(stack, record, task["id"], stack.simulator)
    assert "callback_received_at" not in item
    assert set(record.details("request_copy", task["id"])) == {"poller"}
    sim_task = stack.sim_task_for(task["id"])
    assert sim_task.callbacks == ()
    # one read per poll that found the task open, plus the copy's confirmation
    assert sim_task.status_reads == len(results) - 1 + 1


def test_a_callback_after_the_pollers_hand_off_makes_no_second_copy(stack, record):
    # Given a task whose provider does not call back on its own, and no copy worker running yet
    prompt = unique("a fox [sim:no-callback]")
    task = stack.create_task(prompt)
    task_id = task["id"]

    # When the poller has found the video and handed the copy off
    wait_until(
        lambda: "poller" in record.details("request_copy", task_id),
        timeout=10,
        what="the poller's hand-off",
    )
    assert stack.status(task_id) == "in_progress"

    # And then the provider's callback arrives at the task's own URL, through the HTTP API
    sim_task = stack.sim_task_for(task_id)
    body = apixo_status_body(sim_task.task_id, "success", video_url=sim_task.video.url)
    status, _ = post_json(sim_task.callback_url, body)
    assert status == 200
    assert "callback" in record.details("request_copy", task_id)

    # And the copy worker runs on every request queued (the poller's and the callback's)
    stack.start_queue_pollers()

    # Then the execution ends, and the video was stored once, by one terminal transition
    execution, history = finished_execution(stack, task_id)
    assert execution["status"] == "SUCCEEDED"
    assert poll_results(history)[-1]["outcome"] == "closed"
    item = assert_stored_once(stack, record, task_id, stack.simulator)
    assert "callback_received_at" in item
    completed_at = item["completed_at"]["S"]

    # When the same callback arrives once more, after the execution finished
    requests_before = len(record.events)
    status, _ = post_json(sim_task.callback_url, body)

    # Then it is acknowledged and changes nothing: no copy request, no transition
    assert status == 200
    time.sleep(0.5)
    assert len(record.events) == requests_before
    assert_stored_once(stack, record, task_id, stack.simulator)
    assert stack.item(task_id)["completed_at"]["S"] == completed_at


def test_a_callback_while_the_poller_is_polling_makes_no_second_copy(stack, record):
    # Given the copy worker running
    stack.start_queue_pollers()

    # When the provider finishes (and calls back) only after the poller's first look
    prompt = unique("a fox [sim:delay=2.5]")
    task = stack.create_task(prompt)

    # Then the poller saw the task running, the callback came while it was polling, and the
    # video was stored once
    execution, history = finished_execution(stack, task["id"])
    assert execution["status"] == "SUCCEEDED"
    results = poll_results(history)
    assert results[0]["outcome"] == "open"
    assert results[-1]["outcome"] == "closed"
    sim_task = stack.sim_task_for(task["id"])
    assert [c.status_code for c in sim_task.callbacks] == [200]
    assert_stored_once(stack, record, task["id"], stack.simulator)
    assert "callback" in record.details("request_copy", task["id"])


@pytest.mark.parametrize(
    "prompt, polls",
    [
        pytest.param("a fox [sim:fail=CONTENT_VIOLATION] [sim:no-callback]", 1, id="poller"),
        pytest.param(
            "a fox [sim:fail=CONTENT_VIOLATION]",
            0,
            id="callback",
            marks=pytest.mark.stack_env(POLL_FIRST_WAIT_SECONDS=3),
        ),
    ],
)
def test_a_provider_failure_ends_the_task_failed(stack, record, prompt, polls):
    # Given the copy worker running
    stack.start_queue_pollers()

    # When the provider fails the task (found by the poller, or told by the callback)
    task = stack.create_task(unique(prompt))

    # Then the execution ends and the task is failed with our code, once, without a video
    execution, history = finished_execution(stack, task["id"])
    assert execution["status"] == "SUCCEEDED"
    assert lambda_invocations(history) == polls
    assert entered_states(history)[-1] == "TaskClosed"
    if polls:
        assert poll_results(history) == [{"outcome": "closed", "wait_seconds": 0, "attempt": 1}]
    item = assert_failed_once(stack, record, task["id"], "content_violation")
    assert item["error"]["M"]["provider_code"]["S"] == "CONTENT_VIOLATION"
    assert stack.sim_task_for(task["id"]).status_reads == 1


@pytest.mark.parametrize(
    "errors, failed_polls",
    [
        # absorbed by the provider client's own retries (3, backoff) inside one poll
        pytest.param(2, 0, id="within-one-poll"),
        # outlasting one poll's retries: that poll answers "open", a later one recovers
        pytest.param(6, 1, id="across-polls"),
    ],
)
def test_provider_status_errors_that_recover_end_completed(stack, record, errors, failed_polls):
    # Given the copy worker running
    stack.start_queue_pollers()

    # When the provider's first status reads of a task (that never calls back) fail
    task = stack.create_task(unique(f"a fox [sim:status-errors={errors}] [sim:no-callback]"))

    # Then the poller kept the task open through them and the video was stored once
    execution, history = finished_execution(stack, task["id"], timeout=30)
    assert execution["status"] == "SUCCEEDED"
    results = poll_results(history)
    assert all(r["outcome"] == "open" for r in results[:-1])
    assert results[-1]["outcome"] == "closed"
    assert len(results) >= failed_polls + 2  # the failed ones, the hand-off, the closing one
    assert failed_tasks(history, "lambda") == []  # the errors never failed the Lambda task
    assert_stored_once(stack, record, task["id"], stack.simulator)
    handoffs = record.details("request_copy", task["id"])
    assert set(handoffs) == {"poller"}
    # no hand-off before the errors were over
    assert len(handoffs) <= len(results) - 1 - failed_polls
    sim_task = stack.sim_task_for(task["id"])
    # the failed reads, one good read per hand-off, the copy's confirmation
    assert sim_task.status_reads == errors + len(handoffs) + 1


@pytest.mark.stack_env(TASK_DEADLINE_SECONDS=2)
def test_a_task_past_its_deadline_ends_failed_with_timeout(stack, record):
    # When a video is created that the provider will not finish in time
    task = stack.create_task(unique("a very slow fox [sim:delay=60] [sim:no-callback]"))

    # Then the execution polls until the deadline and closes the task as timed out
    execution, history = finished_execution(stack, task["id"])
    assert execution["status"] == "SUCCEEDED"
    results = poll_results(history)
    assert results[-1]["outcome"] == "closed"
    assert all(r["outcome"] == "open" for r in results[:-1])
    assert all(1 <= r["wait_seconds"] <= 2 for r in results[:-1])
    assert_failed_once(stack, record, task["id"], "timeout")
    # every poll before the deadline asked the provider; the one at the deadline did not
    assert stack.sim_task_for(task["id"]).status_reads == len(results) - 1


def test_an_apimart_task_without_callbacks_is_completed_by_the_poller(stack, apimart, record):
    # Given the copy worker running, and apimart (which has no callbacks for veo3.1)
    stack.start_queue_pollers()

    # When an apimart video is created
    prompt = unique("a fox")
    task = stack.create_task(prompt, provider="apimart")
    assert task["provider"] == "apimart"

    # Then the poller finds the result and the copy stores it
    execution, history = finished_execution(stack, task["id"])
    assert execution["status"] == "SUCCEEDED"
    results = poll_results(history)
    assert results[0]["outcome"] == "open"
    assert results[-1]["outcome"] == "closed"
    item = assert_stored_once(stack, record, task["id"], apimart)
    assert set(record.details("request_copy", task["id"])) == {"poller"}
    sim_task = apimart.task(item["provider_task_id"]["S"])
    assert sim_task.callback_url is None
    assert sim_task.callbacks == ()
    # And the provider was asked once by the copy and at most once by each poll before the last
    # (a poll that finds the copy under way asks nothing: how many did depends on timing)
    assert 1 + 1 <= sim_task.status_reads <= 1 + len(results) - 1
    assert len(submissions_of(apimart, prompt)) == 1


def test_a_second_start_for_the_same_task_is_harmless(stack, record):
    # Given the copy worker running, and a created task whose execution is running
    stack.start_queue_pollers()
    task = stack.create_task(unique("a fox [sim:no-callback] [sim:delay=1.5]"))
    sfn = stack.client("stepfunctions")
    arn = stack.execution_arn(task["id"])
    wait_until(lambda: sfn.describe_execution(executionArn=arn)["status"] == "RUNNING")
    workflow = stack.runtime("ApiFunction").fallback_poller

    # When the workflow is started again for it (a retried submit), with the same input and
    # with another
    workflow.start(task["id"], first_wait_seconds=1)
    workflow.start(task["id"], first_wait_seconds=7)

    # Then there is still one execution for the task, and it stores the video once
    executions = sfn.list_executions(stateMachineArn=stack.state_machine_arn)["executions"]
    assert [e["name"] for e in executions] == [task["id"]]
    execution, _ = finished_execution(stack, task["id"])
    assert execution["status"] == "SUCCEEDED"
    assert_stored_once(stack, record, task["id"], stack.simulator)

    # And a start after it finished changes nothing either
    workflow.start(task["id"], first_wait_seconds=1)
    executions = sfn.list_executions(stateMachineArn=stack.state_machine_arn)["executions"]
    assert [(e["name"], e["status"]) for e in executions] == [(task["id"], "SUCCEEDED")]


def _break_the_poller(local_functions, monkeypatch: pytest.MonkeyPatch, poll_task) -> None:
    """The poller function's step (veo_relay.polling.Poller.poll_task), replaced."""
    from veo_relay.polling import Poller

    monkeypatch.setattr(Poller, "poll_task", poll_task)


def test_a_poller_that_keeps_failing_is_retried_and_then_the_task_is_closed(
    stack, record, local_functions, fast_retries, monkeypatch
):
    # Given a poller Lambda that fails on every invocation
    calls: list[str] = []

    def broken_poll_task(runtime, task_id, attempt, now=None):
        calls.append(task_id)
        raise RuntimeError("the poller is broken")

    _break_the_poller(local_functions, monkeypatch, broken_poll_task)

    # When a task is created that only the poller could finish
    task = stack.create_task(unique("a fox [sim:no-callback] [sim:delay=60]"))

    # Then PollProvider is retried as its Retry says (1 + MaxAttempts 6, backoff 2 s doubling,
    # full jitter, at most 60 s), then FailTask closes the task, and the execution succeeds
    execution, history = finished_execution(stack, task["id"])
    assert execution["status"] == "SUCCEEDED"
    retry = load_definition()["States"]["PollProvider"]["Retry"][0]
    attempts = 1 + retry["MaxAttempts"]
    assert len(calls) == attempts
    assert lambda_invocations(history) == attempts
    assert [d["error"] for d in failed_tasks(history, "lambda")] == ["RuntimeError"] * attempts
    ceilings = [
        min(retry["MaxDelaySeconds"], retry["IntervalSeconds"] * retry["BackoffRate"] ** n)
        for n in range(retry["MaxAttempts"])
    ]
    assert len(fast_retries) == len(ceilings)
    assert all(0 <= slept <= ceiling for slept, ceiling in zip(fast_retries, ceilings, strict=True))
    states = entered_states(history)
    assert states[-3:] == ["PollProvider", "FailTask", "TaskClosed"]
    assert states.count("PollProvider") == 1
    assert [d["resource"] for d in scheduled_tasks(history, "dynamodb")] == [
        "getItem",
        "updateItem",
    ]
    assert failed_tasks(history, "dynamodb") == []

    # And the task is failed with provider_error, without a video and without a provider read
    item = stack.item(task["id"])
    assert item["status"]["S"] == "failed"
    assert item["error"]["M"]["code"]["S"] == "provider_error"
    assert "poller failed repeatedly" in item["error"]["M"]["message"]["S"]
    assert video_keys(stack, task["id"]) == []
    assert stack.sim_task_for(task["id"]).status_reads == 0
    # FailTask wrote $$.State.EnteredTime: an ISO 8601 instant after the task's creation (AWS
    # writes it as 2026-11-21T10:00:00.123Z like our own timestamps; moto's interpreter as
    # 2026-11-21T10:00:00.123456+00:00)
    updated_at = datetime.fromisoformat(item["updated_at"]["S"].replace("Z", "+00:00"))
    created_at = datetime.fromisoformat(item["created_at"]["S"].replace("Z", "+00:00"))
    assert updated_at > created_at

    # And the API shows the task failed
    shown = response_json(
        stack.invoke("ApiFunction", api_event("api_get_video", path=f"/v1/videos/{task['id']}"))
    )
    assert shown["status"] == "failed"
    assert shown["error"]["code"] == "provider_error"


def test_a_failing_poller_leaves_a_task_closed_meanwhile_as_it_is(
    stack, record, local_functions, fast_retries, monkeypatch
):
    # Given a poller Lambda that fails every time, and holds its later failures until the test
    # lets them go
    calls: list[str] = []
    release = threading.Event()

    def broken_poll_task(runtime, task_id, attempt, now=None):
        calls.append(task_id)
        if len(calls) > 1:
            release.wait(10)
        raise RuntimeError("the poller is broken")

    _break_the_poller(local_functions, monkeypatch, broken_poll_task)
    task = stack.create_task(unique("a fox [sim:no-callback]"))
    wait_until(lambda: calls, timeout=10, what="the first poll")

    # When the task is completed meanwhile (the copy path, e.g. after a callback)
    stack.copy(task["id"])
    assert stack.status(task["id"]) == "completed"
    release.set()

    # Then FailTask's conditional write finds the task closed, is not retried, and the
    # execution reads it, sees it closed and ends without touching it
    execution, history = finished_execution(stack, task["id"])
    assert execution["status"] == "SUCCEEDED"
    assert entered_states(history)[-5:] == [
        "PollProvider",
        "FailTask",
        "ReadStalledTask",
        "IsCopyUnderWay",
        "TaskClosed",
    ]
    assert [d["resource"] for d in scheduled_tasks(history, "dynamodb")] == [
        "getItem",
        "updateItem",
        "getItem",
    ]
    assert [d["error"] for d in failed_tasks(history, "dynamodb")] == [
        "DynamoDB.ConditionalCheckFailedException"
    ]
    assert_stored_once(stack, record, task["id"], stack.simulator)


def test_a_task_closed_by_the_state_machine_expires_like_every_failed_task(
    stack, record, local_functions, fast_retries, monkeypatch
):
    # Given a poller Lambda that fails on every invocation
    def broken_poll_task(runtime, task_id, attempt, now=None):
        raise RuntimeError("the poller is broken")

    _break_the_poller(local_functions, monkeypatch, broken_poll_task)

    # When FailTask closes a task
    task = stack.create_task(unique("a fox [sim:no-callback] [sim:delay=60]"))
    execution, _ = finished_execution(stack, task["id"])
    assert execution["status"] == "SUCCEEDED"
    assert stack.status(task["id"]) == "failed"

    # Then the failed task carries its expiry, as a task failed by any other path does
    assert "expires_at" in stack.item(task["id"])


@pytest.mark.stack_env(COPY_LEASE_SECONDS=2)
def test_a_failing_poller_lets_a_copy_under_way_finish(
    stack, record, local_functions, fast_retries, monkeypatch
):
    # Given a poller Lambda that fails every time, its later failures held until released
    calls: list[str] = []
    release = threading.Event()

    def broken_poll_task(runtime, task_id, attempt, now=None):
        calls.append(task_id)
        if len(calls) > 1:
            release.wait(10)
        raise RuntimeError("the poller is broken")

    _break_the_poller(local_functions, monkeypatch, broken_poll_task)
    task = stack.create_task(unique("a fox [sim:no-callback]"))
    wait_until(lambda: calls, timeout=10, what="the first poll")

    # When a copy worker takes the task (its lease is fresh) while the poller keeps failing
    from datetime import timedelta

    tasks = stack.runtime("CopyWorkerFunction").tasks
    assert tasks.mark_storing(task["id"], timedelta(seconds=360)) is not None
    release.set()

    # Then the state machine leaves the task to its copy, which completes it
    wait_until(lambda: _entered(stack, task["id"], "WaitForCopy"), timeout=20, what="the wait")
    video = StoredVideo("bucket", "videos/x.mp4", 1, "0" * 64, "video/mp4")
    assert tasks.mark_completed(task["id"], video) is not None
    execution, _ = finished_execution(stack, task["id"])
    assert execution["status"] == "SUCCEEDED"
    assert stack.status(task["id"]) == "completed"


@pytest.mark.stack_env(COPY_LEASE_SECONDS=1)
def test_a_failing_poller_closes_a_task_whose_copy_stalled(
    stack, record, local_functions, fast_retries, monkeypatch
):
    # Given a poller Lambda that fails every time, and a copy that took the task and then died
    def broken_poll_task(runtime, task_id, attempt, now=None):
        raise RuntimeError("the poller is broken")

    _break_the_poller(local_functions, monkeypatch, broken_poll_task)
    task = stack.create_task(unique("a fox [sim:no-callback]"))
    from datetime import timedelta

    assert (
        stack.runtime("CopyWorkerFunction").tasks.mark_storing(task["id"], timedelta(seconds=1))
        is not None
    )

    # When the copy has not moved for a whole lease
    execution, _ = finished_execution(stack, task["id"])

    # Then the task is closed as failed, not left `storing` forever
    assert execution["status"] == "SUCCEEDED"
    item = stack.item(task["id"])
    assert item["status"]["S"] == "failed"
    assert item["error"]["M"]["code"]["S"] == "provider_error"
    assert "expires_at" in item


def _entered(stack, task_id: str, state: str) -> bool:
    history = stack.client("stepfunctions").get_execution_history(
        executionArn=stack.execution_arn(task_id)
    )["events"]
    return any(e.get("stateEnteredEventDetails", {}).get("name") == state for e in history)


# --- what it costs -------------------------------------------------------------------------------


@pytest.mark.stack_env(APIXO_POLL_FIRST_WAIT_SECONDS=3)
def test_transitions_and_lambda_invocations_per_task(stack, apimart, record):
    """Counts, not times: per case, the state transitions (StateEntered events) and Lambda
    invocations of its execution, beside the least the definition allows for that case.

    - callback on time: the task is completed before the first check; the least is the run
      that never enters a Lambda state.
    - callback missing / apimart: the poller's hand-off answers "open" (the copy runs on its
      own), so the least is two polls: the one that hands off and the one that finds the task
      completed.
    """
    definition = load_definition()
    stack.start_queue_pollers()
    cases: dict[str, tuple[dict, Any, int]] = {
        "callback on time": (stack.create_task(unique("a fox")), stack.simulator, 0),
        "callback missing": (
            stack.create_task(unique("a fox [sim:no-callback]")),
            stack.simulator,
            2,
        ),
        "apimart (no callbacks)": (
            stack.create_task(unique("a fox"), provider="apimart"),
            apimart,
            2,
        ),
    }

    # the first wait is each provider's own (apixo's set to 3 s here, the others' 1 s)
    first_waits = {"apixo": 3, "apimart": 1}

    rows = []
    for case, (task, simulator, least_polls) in cases.items():
        execution, history = finished_execution(stack, task["id"])
        assert execution["status"] == "SUCCEEDED", case
        first_wait = json.loads(execution["input"])["first_wait_seconds"]
        assert first_wait == first_waits[task["provider"]], case
        assert_stored_once(stack, record, task["id"], simulator)
        transitions = len(entered_states(history))
        invocations = lambda_invocations(history)
        least_transitions, least_invocations = minimum_path(definition, least_polls)
        status_reads = simulator.task(task["provider_task_id"]).status_reads
        rows.append(
            (case, transitions, least_transitions, invocations, least_invocations, status_reads)
        )

        assert transitions >= least_transitions, case
        assert invocations >= least_invocations, case
        if least_polls == 0:
            assert (transitions, invocations) == (least_transitions, least_invocations) == (4, 0)
            assert transitions <= 6
        else:
            # each further poll costs 3 transitions (WaitBeforeNextPoll, PollProvider,
            # IsTaskOpen); one more than the least is allowed for a copy slower than a poll
            assert (least_transitions, least_invocations) == (9, 2)
            assert invocations <= least_invocations + 1, case
            assert transitions == least_transitions + 3 * (invocations - least_invocations)

    header = ("case", "transitions", "least", "Lambda invocations", "least", "status reads")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = [" | ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)) for row in rows]
    print()
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("-+-".join("-" * w for w in widths))
    print("\n".join(lines))
