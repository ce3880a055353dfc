"""Verifying the service's webhook deliveries (Standard Webhooks signatures)."""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from typing import Any

import standardwebhooks
from standardwebhooks.webhooks import EmptyWebhookSecretError

from veo_relay_client.errors import WebhookVerificationError


def verify_webhook(secret: str, headers: Mapping[str, str], body: bytes | str) -> dict[str, Any]:
    """The delivery's payload, `{"type": "video.completed" | "video.failed", "timestamp",
    "data": <task object>}`, once its signature holds under `secret` (the caller's `whsec_...`,
    from `Client.webhook_secret()`) and its timestamp is within five minutes.

    Raises WebhookVerificationError otherwise. `webhook-id` is stable across retries of one
    delivery: a receiver drops the ids it has seen."""
    try:
        payload = standardwebhooks.Webhook(secret).verify(body, dict(headers))
    except (
        standardwebhooks.WebhookVerificationError,
        EmptyWebhookSecretError,
        ValueError,
        binascii.Error,
    ) as exc:
        # ValueError: a malformed signature list, a body that is not UTF-8 or not JSON.
        raise WebhookVerificationError(f"webhook not verified: {exc}") from exc
    if not isinstance(payload, dict):
        raise WebhookVerificationError("webhook not verified: the payload is not an object")
    return payload
