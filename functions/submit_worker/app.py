"""Submit worker: each SQS message is a queued task whose submit slot has come."""

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

from veo_relay.queues import parse_submit_request
from veo_relay.wiring import submit_worker

logger = Logger()
processor = BatchProcessor(event_type=EventType.SQS)


def handle_submit_request(record: SQSRecord) -> str:
    ticket, slot_at = parse_submit_request(record.body)
    logger.set_correlation_id(ticket.task_id)
    try:
        outcome = submit_worker().submitter.submit_queued(ticket, slot_at)
    except Exception as exc:
        # The record goes back to the queue; say which task and why (the batch utility does not).
        logger.warning("submit attempt failed", extra={"task_id": ticket.task_id}, exc_info=exc)
        raise
    logger.info("submit request handled", extra={"outcome": outcome.value})
    return outcome.value


# No Tracer: importing the X-Ray SDK, and its patching of botocore, requests and PynamoDB, cost
# this function's cold start more than anything else it imports (`make bench`); Lambda's active
# tracing still records each invocation.
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=handle_submit_request, processor=processor, context=context
    )
