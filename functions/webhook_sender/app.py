"""Webhook sender: each message is a `Video Completed` / `Video Failed` event from our bus, or a
queued retry; the task's webhook, if it has one, is delivered signed."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from veo_relay.webhook_messages import delivery_from_message
from veo_relay.wiring import webhook_sender

logger = Logger()
processor = BatchProcessor(event_type=EventType.SQS)


def handle_delivery(record: SQSRecord) -> str:
    delivery = delivery_from_message(record.body)
    logger.set_correlation_id(delivery.task_id)
    outcome = webhook_sender().sender.deliver(delivery)
    logger.info("webhook handled", extra={"outcome": outcome.value, "attempt": delivery.attempt})
    return outcome.value


# No Tracer: importing the X-Ray SDK, and its patching of botocore, requests and PynamoDB, cost
# this function's cold start more than anything else it imports (`make bench`); Lambda's active
# tracing still records each invocation.
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=handle_delivery, processor=processor, context=context
    )
