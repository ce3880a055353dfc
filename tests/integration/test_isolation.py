"""The offline stack refuses what AWS refuses: each function sees only its own environment, calls
AWS as its own role, and is stopped at its Timeout; the HTTP API gives up after 30 s."""

from __future__ import annotations

import copy
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from botocore.exceptions import ClientError

from offline.api_gateway import LocalHttpApi
from offline.isolation import FunctionTimedOut, acting_as
from offline.template import Template
from tests.helpers import response_json, wait_until
from veo_relay.errors import ConfigurationError
from veo_relay.polling import Poller
from veo_relay.queries import TaskQueries

pytestmark = pytest.mark.stack_env(POLL_FIRST_WAIT_SECONDS=600)


@pytest.fixture(autouse=True)
def deliberate_denials_stay_out_of_the_report() -> Iterator[None]:
    """These tests provoke refusals on purpose; the least-privilege report is about the rest."""
    from offline.iam import USAGE

    before = Counter(USAGE)
    yield
    USAGE.clear()
    USAGE.update(before)


def changed_template(stack: Any, change: Any) -> Template:
    """The provisioned template with `change(body)` applied, as a new version to deploy."""
    body = copy.deepcopy(stack.template.body)
    change(body)
    return Template(body, dict(stack.template.names), dict(stack.template.attributes))


def function_props(body: dict[str, Any], function: str) -> dict[str, Any]:
    return body["Resources"][function]["Properties"]


# ------------------------------------------------------------------------------- environment


def test_each_function_sees_its_own_variables_and_no_other_functions(stack):
    # Given every function's variables as the template declares them
    parameters = stack.template.parameter_defaults()
    declared = {
        name: set(stack.template.function_environment(name, parameters))
        for name in stack.template.of_type("AWS::Serverless::Function")
    }
    for function, own in declared.items():
        # When code runs as that function
        with acting_as(function):
            seen = dict(os.environ)
        # Then it sees each of its own variables, with Lambda's name for it (as deployed)
        assert own <= set(seen), function
        assert seen["AWS_LAMBDA_FUNCTION_NAME"] == stack.template.names[function]
        # And none that only other functions have
        others = set().union(*(v for k, v in declared.items() if k != function)) - own
        assert not others & set(seen), (function, others & set(seen))


def test_concurrent_invocations_of_a_function_do_not_share_its_modules_state(
    stack, tmp_path, monkeypatch
):
    # Given a function whose handler keeps the event in a module global and waits for a second
    # invocation to have done the same (a Powertools resolver keeps its current event so)
    (tmp_path / "app.py").write_text(
        "import veo_relay_probe\n"
        "seen = {}\n"
        "def lambda_handler(event, context):\n"
        "    seen['n'] = event['n']\n"
        "    veo_relay_probe.both_in.wait(timeout=10)\n"
        "    return seen['n']\n"
    )
    probe = type(os)("veo_relay_probe")
    probe.both_in = threading.Barrier(2)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "veo_relay_probe", probe)

    def probe_code(body: dict[str, Any]) -> None:
        function_props(body, "VideoConsumerFunction")["CodeUri"] = str(tmp_path)

    stack.functions.redeploy(changed_template(stack, probe_code))

    # When two invocations run at once
    answers: dict[int, Any] = {}

    def invoke(n: int) -> None:
        answers[n] = stack.invoke("VideoConsumerFunction", {"n": n})

    threads = [threading.Thread(target=invoke, args=(n,)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)

    # Then each saw its own event, as each has an execution environment of its own in Lambda
    assert answers == {1: 1, 2: 2}


def test_a_variable_removed_from_the_template_fails_the_function_naming_it(stack):
    # Given a template whose callback function lost COPY_QUEUE_URL
    def drop(body: dict[str, Any]) -> None:
        del function_props(body, "CallbackFunction")["Environment"]["Variables"]["COPY_QUEUE_URL"]

    stack.functions.redeploy(changed_template(stack, drop))

    # When a video is made and the provider calls back
    task = stack.create_task("a fox")
    sim = stack.simulator
    wait_until(lambda: sim.task(task["provider_task_id"]).callbacks, timeout=10, what="callback")

    # Then the callback function failed (a 500 to the provider); the task is left to its lease
    # and the fallback poller
    assert sim.task(task["provider_task_id"]).callbacks[0].status_code == 500
    assert stack.status(task["id"]) != "completed"
    # And what fails names the variable
    with pytest.raises(ConfigurationError, match="COPY_QUEUE_URL"):
        stack.runtime("CallbackFunction")


# ------------------------------------------------------------------------------------ roles


def test_a_call_the_role_does_not_allow_is_access_denied_naming_role_action_and_resource(stack):
    # Given the callback function, which may send to the copy queue only
    submit_queue = stack.template.names["SubmitQueue"]
    with acting_as("CallbackFunction"):
        sqs = boto3.client("sqs")
        # When it sends to the submit queue
        with pytest.raises(ClientError) as refused:
            sqs.send_message(QueueUrl=submit_queue, MessageBody="{}")
        # But its own queue takes the message
        sqs.send_message(QueueUrl=stack.copy_queue_url, MessageBody="{}")

    # Then AWS's refusal, naming the role's session, the action and the queue's ARN
    error = refused.value.response["Error"]
    assert error["Code"] == "AccessDenied"
    assert "assumed-role/CallbackFunctionRole/CallbackFunction" in error["Message"]
    assert "sqs:SendMessage" in error["Message"]
    assert stack.template.attributes[("SubmitQueue", "Arn")] in error["Message"]


def test_clients_made_by_a_function_keep_its_role_on_other_threads(stack):
    # Given a client the callback function made (as s3transfer's threads use the copy's client)
    with acting_as("CallbackFunction"):
        sqs = boto3.client("sqs")
    errors: list[Exception] = []

    def send() -> None:
        try:
            sqs.send_message(QueueUrl=stack.template.names["SubmitQueue"], MessageBody="{}")
        except ClientError as exc:
            errors.append(exc)

    # When it is used on a thread of its own
    worker = threading.Thread(target=send)
    worker.start()
    worker.join()

    # Then the call was still the callback function's, and refused
    assert len(errors) == 1
    assert "CallbackFunction" in str(errors[0])


def test_reading_a_missing_key_without_list_bucket_is_403_as_in_s3(stack):
    # Given the copy worker's role, which has s3:GetObject on videos/* but no s3:ListBucket
    with acting_as("CopyWorkerFunction"):
        s3 = boto3.client("s3")
        # When it reads a key that does not exist
        with pytest.raises(ClientError) as head:
            s3.head_object(Bucket=stack.bucket, Key="videos/absent.mp4")
        with pytest.raises(ClientError) as get:
            s3.get_object(Bucket=stack.bucket, Key="videos/absent.mp4")
    # Then S3's answer to such a caller: 403, not 404
    assert head.value.response["Error"]["Code"] == "403"
    assert get.value.response["Error"]["Code"] == "AccessDenied"
    # And for the test's own (unrestricted) client it is the 404 moto gives
    with pytest.raises(ClientError) as unrestricted:
        stack.client("s3").head_object(Bucket=stack.bucket, Key="videos/absent.mp4")
    assert unrestricted.value.response["Error"]["Code"] == "404"


def without_action(function: str, sid: str, action: str) -> Any:
    def drop(body: dict[str, Any]) -> None:
        for policy in function_props(body, function)["Policies"]:
            for statement in policy.get("Statement", []):
                if statement.get("Sid") == sid:
                    statement["Action"] = [a for a in statement["Action"] if a != action]

    return drop


def denials(stack: Any, function: str) -> list[str]:
    return [
        r["action"] for r in stack.iam_usage() if r["principal"] == function and not r["allowed"]
    ]


def test_without_s3_put_object_the_copy_fails_and_says_so(stack):
    # Given a template whose copy worker lost s3:PutObject
    stack.functions.redeploy(
        changed_template(stack, without_action("CopyWorkerFunction", "StoreVideos", "s3:PutObject"))
    )
    task = stack.create_task("a fox")
    stack.wait_for_status(task["id"], "storing")  # called back

    # When its copy is handled
    # Then the copy failed (the message goes back to the queue), the task is not completed,
    # and the refusal was the copy worker's s3:PutObject
    with pytest.raises(BatchProcessingError, match="AccessDenied"):
        stack.copy(task["id"])
    assert stack.status(task["id"]) != "completed"
    assert "s3:PutObject" in denials(stack, "CopyWorkerFunction")


def test_without_dynamodb_put_item_the_api_cannot_create_and_says_so(stack):
    # Given a template whose API function lost dynamodb:PutItem on the tasks table
    stack.functions.redeploy(
        changed_template(
            stack, without_action("ApiFunction", "TasksReadCreateTransition", "dynamodb:PutItem")
        )
    )
    # When a video is requested
    prompt = f"a fox {time.monotonic()}"
    response = stack.create_video({"prompt": prompt})
    # Then nothing is created or submitted, and the refusal was the API's dynamodb:PutItem
    assert response["statusCode"] >= 500, response
    assert stack.task_items() == []
    assert all(s.prompt != prompt for s in stack.simulator.submissions())
    assert "dynamodb:PutItem" in denials(stack, "ApiFunction")


# ---------------------------------------------------------------------------------- timeout


def test_an_invocation_past_its_timeout_is_stopped_and_makes_no_more_calls(stack, monkeypatch):
    # Given a poller whose Timeout is 1 s and whose work takes 2 s, then writes
    def one_second(body: dict[str, Any]) -> None:
        function_props(body, "PollerFunction")["Timeout"] = 1

    stack.functions.redeploy(changed_template(stack, one_second))
    task = stack.create_task("a fox [sim:no-callback]")
    late_write: list[Any] = []

    def slow_poll(poller: Poller, task_id: str, attempt: int, now: Any = None) -> Any:
        time.sleep(2)
        try:
            poller.tasks.get(task_id)
        except Exception as exc:
            late_write.append(exc)
        raise AssertionError("unreachable: the invocation is over")

    monkeypatch.setattr(Poller, "poll_task", slow_poll)

    # When it is invoked
    started = time.monotonic()
    with pytest.raises(FunctionTimedOut, match="Task timed out after 1.00 seconds"):
        stack.invoke("PollerFunction", {"task_id": task["id"], "attempt": 0})

    # Then the caller heard of the timeout at the timeout
    assert time.monotonic() - started < 1.8
    # And the handler's later AWS call failed: the sandbox is gone
    wait_until(lambda: late_write, timeout=5, what="the late call")
    assert isinstance(late_write[0], FunctionTimedOut)


def test_the_http_api_gives_up_on_an_integration_after_its_timeout(stack, monkeypatch):
    # Given an HTTP API (integration timeout shortened to 1 s) and a read that takes 3 s
    api = LocalHttpApi(stack.template.routes(), stack.functions, "127.0.0.1", 0, 1.0)
    api.start()
    try:
        real = TaskQueries.get_video
        released = threading.Event()

        def slow_get_video(*args: Any) -> Any:
            released.wait(3)
            return real(*args)

        monkeypatch.setattr(TaskQueries, "get_video", slow_get_video)
        # When it is called
        started = time.monotonic()
        response = requests.get(f"{api.url}/v1/videos/vid_0", timeout=10)
        # Then API Gateway's answer: 503, after the integration timeout
        assert response.status_code == 503
        assert response.json() == {"message": "Service Unavailable"}
        assert time.monotonic() - started < 2.5
    finally:
        released.set()  # the function runs on; let it end while this test's AWS is up
        time.sleep(0.3)
        api.stop()


# ---------------------------------------------------------------------------------- secrets


@pytest.mark.stack_env(POLL_FIRST_WAIT_SECONDS=600, SECRETS_CACHE_SECONDS=1)
def test_a_provider_key_put_after_the_first_request_is_used_within_the_cache_ttl(stack):
    # Given a provider keys secret with a wrong key, and a first create that it fails
    stack.put_provider_keys(apixo="not-the-key")
    refused = stack.create_video({"prompt": "a fox"})
    assert refused["statusCode"] == 502, refused

    # When the right key is put into the secret (as after `aws secretsmanager put-secret-value`)
    from tests.integration.conftest import SIM_API_KEY

    stack.put_provider_keys(apixo=SIM_API_KEY)
    time.sleep(1.2)

    # Then the same warm function uses it: the next create is accepted
    accepted = stack.create_video({"prompt": "a fox"})
    assert accepted["statusCode"] == 202, response_json(accepted)


# ------------------------------------------------------------------------------------- logs


def test_concurrent_invocations_log_each_with_its_own_functions_context(stack, monkeypatch):
    # Given a poller invocation that logs a line while a callback invocation runs beside it
    import json
    import logging

    task = stack.create_task("a fox [sim:no-callback]")
    service = logging.getLogger("veo-relay")
    written = service.handlers[0]  # the handler (and formatter) every line goes out through
    lines: list[dict[str, Any]] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(json.loads(written.format(record)))

    collect = Collect()
    service.addHandler(collect)
    callback_done = threading.Event()
    real_poll = Poller.poll_task

    def poll_after_the_callback(poller: Poller, task_id: str, attempt: int, now: Any = None) -> Any:
        from veo_relay.copying import logger as layer_logger

        callback_done.wait(5)
        layer_logger.warning("the layer's line")  # a child logger, as the domain's modules use
        return real_poll(poller, task_id, attempt)

    monkeypatch.setattr(Poller, "poll_task", poll_after_the_callback)
    polling = threading.Thread(
        target=stack.invoke, args=("PollerFunction", {"task_id": task["id"], "attempt": 0})
    )
    polling.start()
    # When the callback function is invoked meanwhile (a refused callback logs a line)
    stack.invoke(
        "CallbackFunction", {"pathParameters": {"provider": "apixo", "token": "nope"}, "body": "{}"}
    )
    callback_done.set()
    polling.join(10)
    service.removeHandler(collect)

    # Then each line names the function that logged it
    line = next(line for line in lines if line["message"] == "the layer's line")
    assert line.get("function_name") == "PollerFunction", line
    assert line.get("correlation_id") == task["id"], line
    callback_line = next(line for line in lines if line["message"] == "callback refused")
    assert callback_line["function_name"] == "CallbackFunction"


def test_a_download_url_is_signed_only_by_a_role_that_may_read_the_video(stack):
    # Given the API function's role (s3:GetObject on videos/*) and the callback's (none)
    key = "videos/vid_x/vid_x.mp4"
    with acting_as("ApiFunction"):
        url = boto3.client("s3").generate_presigned_url(
            "get_object", Params={"Bucket": stack.bucket, "Key": key}
        )
    assert key in url
    # When the callback function signs one / Then it is refused, as its URL would be when used
    with acting_as("CallbackFunction"), pytest.raises(ClientError, match="s3:GetObject"):
        boto3.client("s3").generate_presigned_url(
            "get_object", Params={"Bucket": stack.bucket, "Key": key}
        )


def test_without_its_provider_keys_secret_the_api_submits_nothing_and_names_the_variable(
    stack, caplog
):
    # Given a template whose API function lost PROVIDER_KEYS_SECRET_ARN
    def drop(body: dict[str, Any]) -> None:
        del function_props(body, "ApiFunction")["Environment"]["Variables"][
            "PROVIDER_KEYS_SECRET_ARN"
        ]

    stack.functions.redeploy(changed_template(stack, drop))

    # When a video is requested
    prompt = f"a fox {time.monotonic()}"
    response = stack.create_video({"prompt": prompt})

    # Then nothing reached the provider, and what failed names the variable
    assert all(s.prompt != prompt for s in stack.simulator.submissions())
    said = response.get("body", "") + caplog.text
    assert "PROVIDER_KEYS_SECRET_ARN" in said, (response, caplog.text[-2000:])
