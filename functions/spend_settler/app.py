"""Spend settler: the tasks table's stream, filtered to tasks entering `completed` or `failed`,
settles each task's budget reservation (veo_relay.spending)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from veo_relay.wiring import spend_settler

logger = Logger()
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def handle_task_change(record: DynamoDBRecord) -> bool:
    change = record.raw_event.get("dynamodb", {})
    new_image = change.get("NewImage") or {}
    logger.set_correlation_id(new_image.get("id", {}).get("S"))
    return spend_settler().settler.settle(new_image, change.get("OldImage") or {})


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    # A failed record is retried and, after the mapping's attempts, sent to its dead-letter queue.
    return process_partial_response(
        event=event, record_handler=handle_task_change, processor=processor, context=context
    )
