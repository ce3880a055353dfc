"""Client webhooks: `video.completed` / `video.failed`, signed the Standard Webhooks way,
delivered with the downloader's SSRF defences and retried with backoff through the webhook queue.

One delivery attempt, in steps of their own: the queue's message (`webhook_messages`), the
receiver URL's policy (`webhook_urls`), the POST (`webhook_transport`) and, when it fails, the
retry schedule (`webhook_retries`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import urllib3
from aws_lambda_powertools import Logger

from veo_relay.errors import TaskNotFound
from veo_relay.ports import Metrics, TaskRepository
from veo_relay.queries import TaskQueries
from veo_relay.safe_urls import RefusedUrl, UnresolvableHost
from veo_relay.settings import WebhookDelivery
from veo_relay.tasks import Task, utc_now
from veo_relay.webhook_messages import Delivery, WebhookQueue
from veo_relay.webhook_retries import next_attempt
from veo_relay.webhook_signing import signatures
from veo_relay.webhook_transport import post

if TYPE_CHECKING:
    from veo_relay.webhook_secrets import WebhookSecrets  # PynamoDB: with the first delivery

logger = Logger(child=True)

_USER_AGENT = "veo-relay-webhooks/1"


class WebhookOutcome(StrEnum):
    DELIVERED = "delivered"
    NO_WEBHOOK = "no_webhook"
    REFUSED = "refused"  # the URL is not one we may call (it can only get worse)
    GONE = "gone"  # 410: the receiver asked us to stop
    RETRY_SCHEDULED = "retry_scheduled"
    DEFERRED = "deferred"  # a retry whose time has not come (SQS delays are 15 minutes at most)


@dataclass(frozen=True)
class WebhookSender:
    tasks: TaskRepository
    # The task object a webhook carries is the API's (with a presigned download_url).
    queries: TaskQueries
    webhook_secrets: WebhookSecrets
    webhook_queue: WebhookQueue
    metrics: Metrics
    delivery: WebhookDelivery
    allow_loopback: bool

    def deliver(self, delivery: Delivery) -> WebhookOutcome:
        if delivery.not_before > time.time():
            self.webhook_queue.send(delivery)
            return WebhookOutcome.DEFERRED
        try:
            task = self.tasks.get(delivery.task_id)
        except TaskNotFound:
            return WebhookOutcome.NO_WEBHOOK
        if not task.webhook_url:
            return WebhookOutcome.NO_WEBHOOK
        logger.append_keys(task_id=task.id)
        body = json.dumps(
            {
                "type": delivery.event_type,
                "timestamp": utc_now(),
                "data": self.queries.public_task(task),
            }
        ).encode()
        headers = self._signed_headers(task, delivery, body)
        outcome = self._attempt(delivery, task.webhook_url, headers, body)
        self.metrics.webhook_outcome(outcome.value)
        return outcome

    def _signed_headers(self, task: Task, delivery: Delivery, body: bytes) -> dict[str, str]:
        timestamp = int(time.time())
        return {
            "Content-Type": "application/json",
            "User-Agent": _USER_AGENT,
            "webhook-id": delivery.message_id,
            "webhook-timestamp": str(timestamp),
            # The task owner's own secret (and, after a rotation, the one it replaced): no other
            # principal's receiver accepts it. The task, not the message, names the owner, so a
            # message queued before the owner rotated is signed as the owner's receiver expects now.
            "webhook-signature": signatures(
                self.webhook_secrets.signing(task.owner), delivery.message_id, timestamp, body
            ),
        }

    def _attempt(
        self, delivery: Delivery, url: str, headers: dict[str, str], body: bytes
    ) -> WebhookOutcome:
        extra: dict[str, Any] = {"attempt": delivery.attempt, "event_type": delivery.event_type}
        try:
            status = post(url, headers, body, self.allow_loopback, self.delivery.timeout_seconds)
        except RefusedUrl as exc:
            logger.warning("webhook URL refused", extra={**extra, "reason": str(exc)})
            return WebhookOutcome.REFUSED
        except (UnresolvableHost, urllib3.exceptions.HTTPError, OSError) as exc:
            status, extra["error"] = None, f"{type(exc).__name__}: {exc}"
        if status is not None and 200 <= status < 300:
            logger.info("webhook delivered", extra={**extra, "status": status})
            return WebhookOutcome.DELIVERED
        if status == 410:
            logger.info("webhook receiver is gone (410)", extra=extra)
            return WebhookOutcome.GONE
        retry, delay = next_attempt(
            delivery, self.delivery.retry_delays, status or extra.get("error")
        )
        logger.warning(
            "webhook attempt failed; retrying", extra={**extra, "status": status, "in": delay}
        )
        self.webhook_queue.send(retry)
        return WebhookOutcome.RETRY_SCHEDULED
