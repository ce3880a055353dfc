"""The callback handler against moto: token check, one copy request per task, nothing else."""

from __future__ import annotations

import json

import pytest

from tests.helpers import apixo_status_body, callback_event, load_event, response_json, wait_until

# No fallback poller activity while these tests watch the copy queue.
pytestmark = pytest.mark.stack_env(POLL_FIRST_WAIT_SECONDS=600)


def quiet_task(stack, prompt: str = "a quiet fox") -> tuple[dict, str]:
    """A task whose provider never calls back by itself, and the token of its callback URL."""
    task = stack.create_task(f"{prompt} [sim:no-callback]")
    callback_url = stack.simulator.task(task["provider_task_id"]).callback_url
    return task, callback_url.rsplit("/", 1)[1]


def success_body(stack, task: dict) -> dict:
    sim_task = stack.simulator.task(task["provider_task_id"])
    return apixo_status_body(task["provider_task_id"], "success", video_url=sim_task.video.url)


def test_the_sample_event_with_an_unknown_token_is_401(stack):
    # Given the sample callback event, whose token names no task here
    event = load_event("callback_apixo")

    # When the callback function handles it
    response = stack.invoke("CallbackFunction", event)

    # Then it is refused with the error shape, and nothing is queued
    assert response["statusCode"] == 401
    assert response_json(response)["error"]["code"] == "invalid_callback"
    assert stack.copy_messages() == []


@pytest.mark.parametrize(
    "tamper",
    [
        lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"),
        lambda token: token.split(".")[0] + ".",
        lambda token: token.split(".")[0],
        lambda token: "vid_000000000000000000000000." + token.split(".", 1)[1],
    ],
    ids=["last-char-changed", "empty-secret", "no-secret", "other-task-id"],
)
def test_a_wrong_token_is_401_and_changes_nothing(stack, tamper):
    # Given a task and a callback on a URL with a wrong token
    task, token = quiet_task(stack)
    before = stack.item(task["id"])
    event = callback_event(tamper(token), success_body(stack, task))

    # When the callback function handles it
    response = stack.invoke("CallbackFunction", event)

    # Then it is refused, the task is untouched and no copy is queued
    assert response["statusCode"] == 401, response
    assert set(response_json(response)["error"]) == {"code", "message"}
    assert stack.item(task["id"]) == before
    assert stack.copy_messages() == []


def test_the_right_token_on_another_providers_path_is_401(stack):
    # Given a valid apixo token sent to the kie callback path
    task, token = quiet_task(stack)
    event = callback_event(token, success_body(stack, task), provider="kie")

    # When the callback function handles it
    response = stack.invoke("CallbackFunction", event)

    # Then it is refused and nothing changes
    assert response["statusCode"] == 401
    assert "callback_received_at" not in stack.item(task["id"])
    assert stack.copy_messages() == []


def test_a_good_callback_records_it_and_queues_one_copy(stack):
    # Given a task and the provider's success callback on its own URL
    task, token = quiet_task(stack)
    event = callback_event(token, success_body(stack, task))

    # When the callback function handles it
    response = stack.invoke("CallbackFunction", event)

    # Then it answers 200 at once
    assert response["statusCode"] == 200
    assert response_json(response) == {"status": "queued"}
    # And the callback's arrival is recorded with the copy's lease, in one write, while the
    # outcome waits for the provider's status API
    item = stack.item(task["id"])
    assert item["callback_received_at"]["S"] >= task["created_at"]
    assert item["status"]["S"] == "storing"
    assert item["updated_at"]["S"] == item["callback_received_at"]["S"]
    assert "video" not in item
    # And the copy is queued for the task, holding that lease
    messages = stack.copy_messages()
    lease = item["updated_at"]["S"]
    assert stack.bodies(messages) == [{"task_id": task["id"], "reason": "callback", "lease": lease}]


def test_a_failure_callback_also_only_queues_the_copy(stack):
    # Given a failure callback (the status API, not the body, is the proof of an outcome)
    task, token = quiet_task(stack)
    body = apixo_status_body(task["provider_task_id"], "failed", fail_code="CONTENT_VIOLATION")

    # When it is handled
    response = stack.invoke("CallbackFunction", callback_event(token, body))

    # Then the copy worker is asked to confirm, and the task is not failed on the body's word
    assert response["statusCode"] == 200
    [body] = stack.bodies(stack.copy_messages())
    assert body["task_id"] == task["id"] and body["reason"] == "callback"
    assert stack.status(task["id"]) == "storing"
    assert "error" not in stack.item(task["id"])


def test_a_duplicate_callback_queues_nothing_more(stack):
    # Given a callback that was already accepted
    task, token = quiet_task(stack)
    event = callback_event(token, success_body(stack, task))
    assert stack.invoke("CallbackFunction", event)["statusCode"] == 200
    first_seen = stack.item(task["id"])["callback_received_at"]["S"]

    # When the provider sends it again
    response = stack.invoke("CallbackFunction", event)

    # Then it is acknowledged (so the provider stops retrying) but changes nothing
    assert response["statusCode"] == 200
    assert response_json(response) == {"status": "duplicate"}
    assert len(stack.copy_messages()) == 1
    assert stack.item(task["id"])["callback_received_at"]["S"] == first_seen


def test_a_callback_naming_another_provider_task_is_401(stack):
    # Given a callback on the task's URL whose body names some other provider task
    task, token = quiet_task(stack)
    body = apixo_status_body("task_someone_else", "success")

    # When it is handled
    response = stack.invoke("CallbackFunction", callback_event(token, body))

    # Then it is refused and nothing changes
    assert response["statusCode"] == 401
    assert "callback_received_at" not in stack.item(task["id"])
    assert stack.copy_messages() == []


def test_a_body_that_is_not_json_is_401(stack):
    # Given a callback with the right token but a body that is not JSON
    task, token = quiet_task(stack)

    # When it is handled
    response = stack.invoke("CallbackFunction", callback_event(token, "<html>oops</html>"))

    # Then it is refused and nothing changes
    assert response["statusCode"] == 401
    assert stack.copy_messages() == []


@pytest.mark.parametrize(
    "body",
    ["[" * 1000 + "]" * 1000, '{"data": ' * 1000 + "{}" + "}" * 1000, "[" * 60_000],
    ids=["arrays", "objects", "unclosed"],
)
def test_a_body_nested_too_deeply_is_401_not_a_crash(stack, body):
    # Given a callback with the right token and a 2 KB body nested 1,000 deep
    task, token = quiet_task(stack)

    # When it is handled
    response = stack.invoke("CallbackFunction", callback_event(token, body))

    # Then it is refused as a malformed body is, and nothing changes
    assert response["statusCode"] == 401, response
    assert response_json(response)["error"]["code"] == "invalid_callback"
    assert stack.copy_messages() == []


def test_huge_numbers_in_a_callback_do_not_stop_it(stack):
    # Given a good callback whose body also carries numbers out of any range
    task, token = quiet_task(stack)
    body = success_body(stack, task)
    raw = json.dumps(body)[:-1] + ', "seq": ' + "9" * 5000 + ', "ratio": 1e999}'

    # When it is handled, then it is taken as any good callback is
    response = stack.invoke("CallbackFunction", callback_event(token, raw))
    assert response["statusCode"] == 200, response
    assert response_json(response) == {"status": "queued"}


def test_a_callback_for_a_closed_task_is_acknowledged_and_ignored(stack):
    # Given a task that already ended
    task, token = quiet_task(stack)
    stack.simulator.wait_for(
        lambda: stack.simulator.task(task["provider_task_id"]).state == "succeeded"
    )
    stack.copy(task["id"])
    assert stack.status(task["id"]) == "completed"
    before = stack.item(task["id"])

    # When its callback arrives late
    response = stack.invoke("CallbackFunction", callback_event(token, success_body(stack, task)))

    # Then it is acknowledged, nothing is queued and the task is untouched
    assert response["statusCode"] == 200
    assert response_json(response) == {"status": "already_closed"}
    assert stack.copy_messages() == []
    assert stack.item(task["id"]) == before


def test_the_providers_duplicate_callbacks_over_http_queue_one_copy(stack):
    # Given a task whose provider calls back three times, through the HTTP API
    task = stack.create_task("a noisy fox [sim:duplicate-callback]")
    sim_id = task["provider_task_id"]

    # When all three callbacks have been delivered
    sim_task = stack.simulator.wait_for(
        lambda: len(stack.simulator.task(sim_id).callbacks) >= 3, timeout=10
    )
    del sim_task
    callbacks = stack.simulator.task(sim_id).callbacks

    # Then each got a 200, and exactly one copy was queued
    assert [c.status_code for c in callbacks] == [200, 200, 200]
    assert callbacks[0].url.startswith(f"{stack.api.url}/v1/callbacks/apixo/{task['id']}.")
    messages = wait_until(stack.copy_messages, timeout=5, what="the copy request")
    assert [(b["task_id"], b["reason"]) for b in stack.bodies(messages)] == [
        (task["id"], "callback")
    ]
    assert stack.copy_messages(wait=0.5) == []


def reads_by(stack, function: str, service: str) -> int:
    """How many calls `function` made to `service` (the offline stack's IAM decisions)."""
    return sum(
        r["calls"]
        for r in stack.iam_usage()
        if r["principal"] == function and r["action"].startswith(f"{service}:")
    )


MALFORMED = {
    "dot": ".",
    "empty": "",
    "very-long": "vid_" + "a" * 5000,
    "non-ascii": "vid_0123456789abcdef0123456\u00e9.1." + "A" * 43,
    "extra-dots": "vid_0123456789abcdef01234567.1." + "A" * 43 + ".",
    "only-dots": "...",
    # The form of the tokens handed out before they were derived: refused like any other
    "old-form": "vid_0123456789abcdef01234567.q9Xc2mB7tLw4ZpR1sV8nKe3YhJ6uFd0A",
}


@pytest.mark.parametrize("token", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_token_not_of_the_form_is_401_before_any_read(stack, token):
    # Given a callback whose token is not of the form the service hands out
    event = callback_event(token, {"code": 200, "data": {"taskId": "task_x"}})

    # When the callback function handles it
    response = stack.invoke("CallbackFunction", event)

    # Then it is refused with the one error body, having read neither the table nor the key
    assert response["statusCode"] == 401, response
    assert response_json(response) == {
        "error": {"code": "invalid_callback", "message": "unknown callback token"}
    }
    assert reads_by(stack, "CallbackFunction", "dynamodb") == 0
    assert reads_by(stack, "CallbackFunction", "secretsmanager") == 0
    assert stack.copy_messages() == []


def test_a_token_of_the_form_with_a_forged_mac_is_401_before_the_task_is_read(stack):
    # Given a real task, and a token for it of the right form but a made-up MAC
    task, token = quiet_task(stack)
    task_id, attempt, mac = token.split(".")
    forged = f"{task_id}.{attempt}.{'A' * 43 if mac != 'A' * 43 else 'B' * 43}"
    before = stack.item(task["id"])

    # When its callback comes
    response = stack.invoke("CallbackFunction", callback_event(forged, success_body(stack, task)))

    # Then it is refused: the key was read to check the MAC, the task never
    assert response["statusCode"] == 401
    assert reads_by(stack, "CallbackFunction", "secretsmanager") >= 1
    assert reads_by(stack, "CallbackFunction", "dynamodb") == 0
    assert stack.item(task["id"]) == before
    assert stack.copy_messages() == []


def test_the_token_is_the_tasks_first_attempt_and_derived_from_it(stack):
    # Given a task submitted at once (its first attempt)
    task, token = quiet_task(stack)

    # Then its token names the task and the attempt, and is the one the key derives for them
    assert token.startswith(f"{task['id']}.1.")
    tokens = stack.runtime("CallbackFunction").callback_tokens
    assert tokens.mint("apixo", task["id"], 1) == token
    # And the record keeps the attempt, no token or hash of one
    item = stack.item(task["id"])
    assert item["submit_attempt"]["N"] == "1"
    assert "callback_token_hash" not in item
    assert token.rsplit(".", 1)[1] not in str(item)
