"""verify_webhook: what the webhook sender signs (veo_relay.webhook_signing), verified with the
standardwebhooks package as a receiver would."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime

import pytest
import standardwebhooks

from tests.client_fakes import task_body
from veo_relay.webhook_signing import signatures
from veo_relay_client import verify_webhook
from veo_relay_client.errors import WebhookVerificationError

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"o" * 32).decode()
BODY = json.dumps(
    {"type": "video.completed", "timestamp": "2026-12-02T10:00:09Z", "data": task_body("completed")}
).encode()


def _headers(
    secrets: list[str], timestamp: int | None = None, body: bytes = BODY
) -> dict[str, str]:
    timestamp = int(time.time()) if timestamp is None else timestamp
    message_id = "msg_vid_0123456789abcdef01234567_completed"
    return {
        "Webhook-Id": message_id,
        "Webhook-Timestamp": str(timestamp),
        "Webhook-Signature": signatures(secrets, message_id, timestamp, body),
    }


def test_a_delivery_signed_by_the_service_verifies_and_gives_its_payload() -> None:
    # Given a delivery as the webhook sender signs it, mid-rotation (two signatures)
    headers = _headers([SECRET, OLD_SECRET])
    # When the receiver verifies it with either secret / Then it gets the payload
    for secret in (SECRET, OLD_SECRET):
        payload = verify_webhook(secret, headers, BODY)
        assert payload["type"] == "video.completed"
        assert payload["data"]["id"] == task_body()["id"]


def test_a_delivery_signed_by_standardwebhooks_itself_verifies() -> None:
    # Given a signature made by the standardwebhooks package
    now = datetime.now(tz=UTC)
    signature = standardwebhooks.Webhook(SECRET).sign("msg_1", now, BODY.decode())
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
    # When verified / Then it holds
    assert verify_webhook(SECRET, headers, BODY.decode())["type"] == "video.completed"


@pytest.mark.parametrize(
    ("secret", "headers", "body"),
    [
        # another principal's secret
        (OLD_SECRET, _headers([SECRET]), BODY),
        # the body changed after signing
        (SECRET, _headers([SECRET]), BODY.replace(b"completed", b"failed", 1)),
        # a replay of a delivery older than five minutes
        (SECRET, _headers([SECRET], timestamp=int(time.time()) - 600), BODY),
        # a header missing
        (SECRET, {k: v for k, v in _headers([SECRET]).items() if k != "Webhook-Id"}, BODY),
        # a malformed signature list
        (SECRET, {**_headers([SECRET]), "Webhook-Signature": "garbage"}, BODY),
        # a body that is not UTF-8
        (SECRET, _headers([SECRET], body=b"\xff\xfe"), b"\xff\xfe"),
        # an empty secret
        ("whsec_", _headers([SECRET]), BODY),
    ],
)
def test_a_delivery_that_does_not_hold_is_refused(
    secret: str, headers: dict[str, str], body: bytes
) -> None:
    with pytest.raises(WebhookVerificationError):
        verify_webhook(secret, headers, body)
