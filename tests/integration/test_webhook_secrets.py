"""Each principal's own webhook signing secret, through the real handlers against moto: the API's
GET /v1/webhook-secret and POST /v1/webhook-secret/rotate, and the webhook sender signing each
delivery with its task owner's secret (and, for 24 hours after a rotation, the one it replaced).
The 24 hours pass on the sender's clock, which the test moves."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers import ALICE, BOB, api_event, load_event, response_json
from tests.integration.test_downstream import Receiver, verify_signature
from veo_relay.webhook_secrets import ROTATION_OVERLAP_SECONDS

pytestmark = pytest.mark.stack_env(
    WEBHOOK_ALLOW_LOOPBACK="true",
    POLL_FIRST_WAIT_SECONDS="600",  # only the test drives anything
)


def get_secret(stack: Any, principal: str) -> str:
    response = stack.invoke("ApiFunction", api_event("api_get_webhook_secret", principal=principal))
    assert response["statusCode"] == 200, response
    assert response["headers"]["Cache-Control"] == "no-store"
    body = response_json(response)
    assert set(body) == {"secret"}
    return str(body["secret"])


def rotate_secret(stack: Any, principal: str) -> str:
    event = api_event("api_rotate_webhook_secret", principal=principal)
    response = stack.invoke("ApiFunction", event)
    assert response["statusCode"] == 200, response
    return str(response_json(response)["secret"])


def deliver(stack: Any, task_id: str) -> None:
    """The webhook sender on the task's Video Completed."""
    event = load_event("webhook_video_completed")
    body = json.loads(event["Records"][0]["body"])
    body["detail"]["id"] = task_id
    event["Records"][0]["body"] = json.dumps(body)
    assert stack.invoke("WebhookSenderFunction", event) == {"batchItemFailures": []}


def verifies(secret: str, request: Any) -> bool:
    try:
        verify_signature(secret, request.headers, request.body)
    except AssertionError:
        return False
    return True


def master_secret(stack: Any) -> str:
    """The master key, as a receiver would hold it were it handed out as a secret."""
    arn = stack.template.names["WebhookSecretsMasterKey"]
    value = stack.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
    return "whsec_" + base64.b64encode(str(value).encode()).decode()


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def sender_clock(stack: Any, monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The webhook sender's clock for its secrets, which the test moves."""
    clock = Clock()
    # The one its deliveries are signed with
    monkeypatch.setattr(stack.runtime("WebhookSenderFunction").webhook_secrets, "_clock", clock)
    return clock


def test_each_principal_reads_its_own_secret_and_the_same_one_each_time(stack):
    # When two principals each ask for their webhook secret, twice
    alice, bob = get_secret(stack, ALICE), get_secret(stack, BOB)

    # Then each gets a whsec_ secret of its own, the same each time, and neither is the master
    assert alice.startswith("whsec_") and bob.startswith("whsec_")
    assert alice != bob
    assert get_secret(stack, ALICE) == alice
    assert master_secret(stack) not in (alice, bob)


def test_the_sessions_of_one_role_share_its_secret(stack):
    # Given two sessions of one role (one owner, veo_relay.principals)
    session = "arn:aws:sts::123456789012:assumed-role/Renderer/{}"

    # Then they read one secret
    assert get_secret(stack, session.format("job-1")) == get_secret(stack, session.format("job-2"))


def test_without_an_identity_there_is_no_secret(stack):
    response = stack.invoke("ApiFunction", api_event("api_get_webhook_secret", principal=None))
    assert response["statusCode"] == 401
    assert response_json(response)["error"]["code"] == "unauthorized"


def test_the_sender_signs_with_the_task_owners_secret_only(stack, receiver):
    # Given a task of Alice's with a webhook, and the secrets Alice and Bob were given
    task = stack.create_task("a fox", principal=ALICE, webhook_url=receiver.url)
    alice, bob = get_secret(stack, ALICE), get_secret(stack, BOB)

    # When the webhook sender delivers it
    deliver(stack, task["id"])

    # Then Alice's secret verifies the delivery; Bob's (who could otherwise forge one to Alice's
    # receiver) and the master key do not
    (request,) = receiver.wait_for(1)
    assert request.json["data"]["id"] == task["id"]
    assert verifies(alice, request)
    assert not verifies(bob, request)
    assert not verifies(master_secret(stack), request)
    assert len(request.headers["webhook-signature"].split(" ")) == 1


def test_a_rotation_keeps_the_old_secret_signing_for_24_hours_and_then_stops(
    stack, receiver, sender_clock
):
    # Given a task of Alice's with a webhook, and the secret she has
    task = stack.create_task("a fox", principal=ALICE, webhook_url=receiver.url)
    old = get_secret(stack, ALICE)

    # When she rotates it
    before = time.time()
    new = rotate_secret(stack, ALICE)
    after = time.time()

    # Then she is shown the new one from now on
    assert new != old and new.startswith("whsec_")
    assert get_secret(stack, ALICE) == new
    # And a delivery now verifies with either secret
    deliver(stack, task["id"])
    (during,) = receiver.wait_for(1)
    assert verifies(new, during) and verifies(old, during)
    # And still just before 24 hours have passed
    sender_clock.now = before + ROTATION_OVERLAP_SECONDS - 1
    deliver(stack, task["id"])
    assert verifies(old, receiver.wait_for(2)[1])

    # When 24 hours have passed
    sender_clock.now = after + ROTATION_OVERLAP_SECONDS
    deliver(stack, task["id"])

    # Then only the new secret verifies a delivery
    after = receiver.wait_for(3)[2]
    assert verifies(new, after)
    assert not verifies(old, after)
    assert len(after.headers["webhook-signature"].split(" ")) == 1


def test_rotating_again_within_24_hours_ends_the_oldest_secret(stack, receiver):
    # Given a task of Alice's, and a rotation an instant ago
    task = stack.create_task("a fox", principal=ALICE, webhook_url=receiver.url)
    first = get_secret(stack, ALICE)
    second = rotate_secret(stack, ALICE)

    # When she rotates again
    third = rotate_secret(stack, ALICE)

    # Then deliveries verify with the new secret and the one it replaced, not the first
    deliver(stack, task["id"])
    (request,) = receiver.wait_for(1)
    assert len({first, second, third}) == 3
    assert verifies(third, request) and verifies(second, request)
    assert not verifies(first, request)


def test_a_rotation_is_the_callers_own(stack):
    # Given Bob's secret
    bob = get_secret(stack, BOB)

    # When Alice rotates hers
    rotate_secret(stack, ALICE)

    # Then Bob's is unchanged
    assert get_secret(stack, BOB) == bob


def test_the_principals_table_holds_no_secret(stack):
    # When a principal reads and rotates its secret
    shown = [get_secret(stack, ALICE), rotate_secret(stack, ALICE)]

    # Then its one record holds generations only: nothing it was shown is stored
    items = stack.client("dynamodb").scan(TableName=stack.template.names["PrincipalsTable"])
    (item,) = items["Items"]
    assert item["owner"] == {"S": ALICE}
    assert item["webhook_secret_generation"] == {"N": "2"}
    assert set(item) == {"owner", "webhook_secret_generation", "webhook_previous_signs_until"}
    stored = json.dumps(items)
    assert not any(secret.removeprefix("whsec_") in stored for secret in shown)


def test_a_delivery_queued_before_a_rotation_is_signed_with_the_secrets_of_now(stack, receiver):
    # Given a retry of Alice's delivery, queued (in the message format of before this change:
    # it names the task, not its owner) before she rotated
    task = stack.create_task("a fox", principal=ALICE, webhook_url=receiver.url)
    message = load_event("webhook_video_completed")
    message["Records"][0]["body"] = json.dumps(
        {
            "retry": {
                "event_type": "video.completed",
                "task_id": task["id"],
                "attempt": 2,
                "not_before": 0,
            }
        }
    )
    new = rotate_secret(stack, ALICE)

    # When the sender handles it
    assert stack.invoke("WebhookSenderFunction", message) == {"batchItemFailures": []}

    # Then it is signed with the owner's secrets as they are now
    (request,) = receiver.wait_for(1)
    assert verifies(new, request)
