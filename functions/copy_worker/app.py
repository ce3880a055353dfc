"""Copy worker: each SQS message names a task whose video should be confirmed and stored."""

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

from veo_relay.deadlines import copy_deadline
from veo_relay.queues import parse_copy_request
from veo_relay.wiring import copy_worker

logger = Logger()
processor = BatchProcessor(event_type=EventType.SQS)


def handle_copy_request(record: SQSRecord, lambda_context: LambdaContext) -> str:
    # The batch utility passes the invocation's context to a handler that names it.
    request = parse_copy_request(record.body)
    logger.set_correlation_id(request.task_id)
    deadline = copy_deadline(lambda_context.get_remaining_time_in_millis())
    try:
        outcome = copy_worker().copier.copy(
            request.task_id, request.lease, deadline, deferred=request.deferred
        )
    except Exception as exc:
        # The record goes back to the queue; say which task and why (the batch utility does not).
        logger.warning("copy attempt failed", extra={"task_id": request.task_id}, exc_info=exc)
        raise
    logger.info("copy request handled", extra={"outcome": outcome.value})
    return outcome.value


# No Tracer: importing the X-Ray SDK, and its patching of botocore, requests and PynamoDB, cost
# this function's cold start more than anything else it imports (`make bench`); Lambda's active
# tracing still records each invocation.
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    # A failed record goes back to the queue and, after maxReceiveCount, to the dead-letter queue.
    return process_partial_response(
        event=event, record_handler=handle_copy_request, processor=processor, context=context
    )
