"""Sample S3 consumer: a manifest landed beside a video; check the video against it, announce it.

Triggered by the manifest's ObjectCreated event (EventBridge, through a queue). For `sam local
invoke -e` it also takes the EventBridge event itself or an S3 notification.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from veo_relay.wiring import video_consumer

logger = Logger()
processor = BatchProcessor(event_type=EventType.SQS)


def handle_stored_object_event(record: SQSRecord) -> list[str]:
    return [_verify(key) for key in _manifest_keys(json.loads(record.body))]


# No Tracer: importing the X-Ray SDK, and its patching of botocore, requests and PynamoDB, cost
# this function's cold start more than anything else it imports (`make bench`); Lambda's active
# tracing still records each invocation.
@logger.inject_lambda_context
def lambda_handler(
    event: dict[str, Any], context: LambdaContext
) -> PartialItemFailureResponse | dict[str, list[str]]:
    records = event.get("Records") or []
    if records and records[0].get("eventSource") == "aws:sqs":
        return process_partial_response(
            event=event,
            record_handler=handle_stored_object_event,
            processor=processor,
            context=context,
        )
    return {"outcomes": [_verify(key) for key in _manifest_keys(event)]}


def _verify(key: str) -> str:
    outcome = video_consumer().check.verify_and_announce(key)
    logger.info("stored object checked", extra={"key": key, "outcome": outcome.value})
    return outcome.value


def _manifest_keys(event: dict[str, Any]) -> Iterator[str]:
    """Manifest keys in our bucket, from an EventBridge S3 event or an S3 notification."""
    bucket = video_consumer().settings.video_bucket
    if event.get("source") == "aws.s3":
        objects = [(event["detail"]["bucket"]["name"], event["detail"]["object"]["key"])]
    else:  # S3 notification keys arrive URL-encoded
        objects = [
            (r["s3"]["bucket"]["name"], unquote_plus(r["s3"]["object"]["key"]))
            for r in event.get("Records", [])
            if "s3" in r
        ]
    for name, key in objects:
        if name == bucket and key.startswith("videos/") and key.endswith(".json"):
            yield key
