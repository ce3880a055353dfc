"""What the people downstream see through `make run`: the manifest beside each video, our bus's
events, and signed client webhooks, over HTTP and the embedded AWS endpoint only."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.e2e.targets import OfflineStack, RunningStack


class Receiver:
    """A client's webhook endpoint on loopback: records each delivery, answers 200."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.deliveries.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks/veo"

    def wait_for(self, task_id: str, timeout: float = 60) -> tuple[dict[str, str], bytes]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for headers, body in self.deliveries:
                if json.loads(body)["data"]["id"] == task_id:
                    return headers, body
            time.sleep(0.2)
        raise AssertionError(f"no webhook for {task_id} within {timeout} s")

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.close()


@pytest.fixture
def bus_events(stack: RunningStack) -> Iterator[Any]:
    """Every event on our bus, copied to a queue of this test's own (as a subscriber would)."""
    events, sqs = stack.aws("events"), stack.aws("sqs")
    bus = stack.event_bus_name()
    name = f"e2e-subscriber-{uuid.uuid4().hex[:12]}"  # a deployed account may hold an old one
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    rule_arn = events.put_rule(
        Name=name, EventBusName=bus, EventPattern=json.dumps({"source": ["veo-relay"]})
    )["RuleArn"]
    # In AWS the rule may deliver only where the queue's policy lets EventBridge send.
    sqs.set_queue_attributes(
        QueueUrl=queue_url, Attributes={"Policy": _events_may_send(queue_arn, rule_arn)}
    )
    events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "q", "Arn": queue_arn}])

    def received(task_id: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            ).get("Messages", []):
                event = json.loads(message["Body"])
                if event["detail"]["id"] == task_id:
                    return event  # type: ignore[no-any-return]
        raise AssertionError(f"no event for {task_id} on {bus}")

    yield received
    events.remove_targets(Rule=name, EventBusName=bus, Ids=["q"])
    events.delete_rule(Name=name, EventBusName=bus)
    sqs.delete_queue(QueueUrl=queue_url)


def _events_may_send(queue_arn: str, rule_arn: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
                }
            ],
        }
    )


def _webhook_url(stack: RunningStack, receiver: Receiver) -> dict[str, str]:
    """The receiver listens on this machine's loopback, which only the offline stack reaches."""
    return {} if stack.deployed else {"webhook_url": receiver.url}


def _signing_secret(stack: RunningStack, principal: str = "e2e-user") -> str:
    """What the README tells a receiver's owner to do: ask for its own secret."""
    response = stack.request("GET", "/v1/webhook-secret", principal)
    assert response.status_code == 200, response.text
    return str(response.json()["secret"])


def _verifies(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """What the README tells a receiver to do: one of the v1 signatures is its secret's."""
    msg_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
    assert abs(time.time() - int(timestamp)) < 300
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(s, expected) for s in headers["webhook-signature"].split())


def _verify(secret: str, headers: dict[str, str], body: bytes) -> None:
    assert _verifies(secret, headers, body), "bad signature"


def test_a_completed_video_has_its_manifest_an_event_and_a_signed_webhook(
    stack: RunningStack, receiver: Receiver, bus_events: Any
) -> None:
    # Given a task created with a webhook
    response = stack.create(
        prompt="a kite over the dunes [sim:size=200000]", **_webhook_url(stack, receiver)
    )
    assert response.status_code == 202, response.text
    task = stack.wait_for_status(response.json()["id"], {"completed", "failed"})
    assert task["status"] == "completed", task

    # Then the manifest beside the video describes it, with nothing else needed
    video = task["video"]
    s3 = stack.s3()
    manifest_key = video["key"].removesuffix(".mp4") + ".json"
    manifest_object = s3.get_object(Bucket=video["bucket"], Key=manifest_key)
    manifest = json.loads(manifest_object["Body"].read())
    assert manifest["task_id"] == task["id"] and manifest["root_id"] == task["root_id"]
    assert manifest["video"]["sha256"] == video["sha256"]
    assert manifest["video"]["size_bytes"] == 200000
    assert manifest_object["Metadata"]["task-id"] == task["id"]
    stored = s3.head_object(Bucket=video["bucket"], Key=video["key"])
    assert stored["ContentType"] == "video/mp4"
    assert stored["Metadata"]["provider-task-id"] == task["provider_task_id"]

    # And our bus announced it, the task object as detail
    event = bus_events(task["id"])
    assert event["detail-type"] == "Video Completed"
    assert event["detail"]["video"]["sha256"] == video["sha256"]

    # And the client's webhook got a delivery signed with the task owner's secret
    if stack.deployed:
        pytest.skip("the webhook receiver is on this machine's loopback (the rest passed)")
    headers, body = receiver.wait_for(task["id"])
    _verify(_signing_secret(stack), headers, body)
    delivery = json.loads(body)
    assert delivery["type"] == "video.completed"
    assert headers["webhook-id"] == f"msg_{task['id']}_completed"
    assert delivery["data"]["video"]["download_url"].startswith("http")


def test_a_failed_video_is_announced_and_its_webhook_called(
    stack: RunningStack, receiver: Receiver, bus_events: Any
) -> None:
    # Given a task the provider fails
    response = stack.create(
        prompt="a forbidden thing [sim:fail=content_violation]", **_webhook_url(stack, receiver)
    )
    assert response.status_code == 202, response.text
    task = stack.wait_for_status(response.json()["id"], {"completed", "failed"})
    assert task["status"] == "failed"

    # Then our bus says so, and so does the signed webhook
    event = bus_events(task["id"])
    assert event["detail-type"] == "Video Failed"
    assert event["detail"]["error"]["code"] == task["error"]["code"]
    if stack.deployed:
        pytest.skip("the webhook receiver is on this machine's loopback (the rest passed)")
    headers, body = receiver.wait_for(task["id"])
    _verify(_signing_secret(stack), headers, body)
    assert json.loads(body)["type"] == "video.failed"


def test_a_webhook_to_a_private_address_is_refused_naming_the_field(stack: RunningStack) -> None:
    response = stack.create(prompt="a cat", webhook_url="https://10.0.0.7/hook")
    assert response.status_code == 422
    assert "webhook_url" in response.json()["error"]["message"]


def test_a_principal_reads_and_rotates_its_own_webhook_secret(
    stack: RunningStack, receiver: Receiver
) -> None:
    # Given a principal of its own (offline; deployed, the caller), and its secret
    principal = f"e2e-secrets-{uuid.uuid4().hex[:8]}"
    old = _signing_secret(stack, principal)
    assert old.startswith("whsec_")
    assert _signing_secret(stack, principal) == old

    # When it rotates it
    response = stack.request("POST", "/v1/webhook-secret/rotate", principal)

    # Then it is given a new secret, which is its secret from now on
    assert response.status_code == 200, response.text
    new = response.json()["secret"]
    assert new.startswith("whsec_") and new != old
    assert _signing_secret(stack, principal) == new
    if stack.deployed:
        pytest.skip("one principal deployed, and the receiver is on this machine's loopback")
    # And no other principal has either
    assert _signing_secret(stack, "e2e-user") not in (old, new)

    # And its next delivery verifies with the new secret and, for 24 hours, the old one
    created = stack.create(principal, prompt="a lighthouse at dusk", webhook_url=receiver.url)
    assert created.status_code == 202, created.text
    headers, body = receiver.wait_for(created.json()["id"])
    assert _verifies(new, headers, body)
    assert _verifies(old, headers, body)
    assert not _verifies(_signing_secret(stack, "e2e-user"), headers, body)


def test_make_run_prints_the_local_principals_own_secret(stack: RunningStack) -> None:
    # Given the offline stack, as `make run` starts it
    if stack.deployed or not isinstance(stack, OfflineStack) or stack.log_path is None:
        pytest.skip("only `make run` prints a secret")
    log_path = stack.log_path
    deadline = time.monotonic() + 30
    while "Ctrl-C stops everything" not in log_path.read_text():
        assert time.monotonic() < deadline, "no banner"
        time.sleep(0.2)

    # Then its banner shows local-user's secret (the default X-Local-Principal's), as
    # GET /v1/webhook-secret gives it to local-user
    secret = _signing_secret(stack, "local-user")
    assert f"webhook secret:   {secret}\n" in log_path.read_text()
