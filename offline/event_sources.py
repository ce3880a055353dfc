"""Event source mappings, as Lambda's pollers run them: SQS queues (report-batch-item-failures
honoured, failed messages left for redelivery) and DynamoDB streams (filter criteria applied,
failed batches retried, then sent to the on-failure destination)."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from offline.aws import ACCOUNT, REGION
from offline.functions import LocalFunctions
from offline.isolation import acting_as
from offline.template import (
    PSEUDO_PARAMETERS,
    QueueTrigger,
    ScheduleTrigger,
    StreamTrigger,
    Template,
)

log = logging.getLogger("offline.event_sources")


class QueuePollers:
    def __init__(
        self,
        template: Template,
        functions: LocalFunctions,
        sqs: Any,
        pollers_per_queue: int = 10,
        retry_delay_seconds: int = 2,
    ) -> None:
        self._template = template
        self._functions = functions
        self._sqs = sqs
        self._pollers_per_queue = pollers_per_queue
        # Lambda would wait out the queue's visibility timeout (30 minutes here); locally a failed
        # copy comes back after a couple of seconds so faults can be watched.
        self._retry_delay = retry_delay_seconds
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for trigger in self._template.queue_triggers():
            for index in range(self._pollers_per_queue):
                thread = threading.Thread(
                    target=self._poll,
                    args=(trigger,),
                    name=f"sqs-{trigger.queue}-{index}",
                    daemon=True,
                )
                thread.start()
                self._threads.append(thread)

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def _poll(self, trigger: QueueTrigger) -> None:
        queue_url = self._template.names[trigger.queue]
        queue_arn = self._template.attributes[(trigger.queue, "Arn")]
        while not self._stopping.is_set():
            try:
                # Lambda's poller reads and deletes with the function's own role.
                with acting_as(trigger.function):
                    received = self._sqs.receive_message(
                        QueueUrl=queue_url,
                        MaxNumberOfMessages=trigger.batch_size,
                        WaitTimeSeconds=1,
                        MessageSystemAttributeNames=["All"],
                    )
            except Exception:  # the embedded AWS is stopping or briefly unavailable
                if not self._stopping.wait(0.5):
                    log.exception("receive from %s failed", trigger.queue)
                continue
            messages = received.get("Messages", [])
            if messages:
                self._deliver(trigger, queue_url, queue_arn, messages)

    def _deliver(
        self, trigger: QueueTrigger, queue_url: str, queue_arn: str, messages: list[dict[str, Any]]
    ) -> None:
        event = {"Records": [_record(m, queue_arn) for m in messages]}
        try:
            result = self._functions.invoke(trigger.function, event) or {}
            failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        except Exception:
            log.exception("%s failed on a batch from %s", trigger.function, trigger.queue)
            failed = {m["MessageId"] for m in messages}
        for message in messages:
            receipt = message["ReceiptHandle"]
            if message["MessageId"] in failed:
                # Lambda leaves a failed message to its visibility timeout; shortening it is this
                # stack's own doing (faults can be watched), not the function's.
                self._sqs.change_message_visibility(
                    QueueUrl=queue_url, ReceiptHandle=receipt, VisibilityTimeout=self._retry_delay
                )
            else:
                with acting_as(trigger.function):
                    self._sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=receipt)


def _record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(message["Body"].encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


class StreamPollers:
    """One thread per DynamoDB stream trigger, reading the table's stream from its start."""

    def __init__(
        self,
        template: Template,
        functions: LocalFunctions,
        session: Any,
        poll_interval_seconds: float = 0.2,
        retry_delay_seconds: float = 1.0,
    ) -> None:
        from moto.events.models import EventPattern

        self._template = template
        self._functions = functions
        self._dynamodb = session.client("dynamodb")
        self._streams = session.client("dynamodbstreams")
        self._sqs = session.client("sqs")
        self._interval = poll_interval_seconds
        self._retry_delay = retry_delay_seconds
        # Lambda's event filtering is EventBridge's pattern syntax; moto implements it.
        self._patterns = {
            trigger: [EventPattern.load(p) for p in trigger.filter_patterns]
            for trigger in template.stream_triggers()
        }
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for trigger in self._patterns:
            table = self._template.names[trigger.table]
            stream_arn = self._dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
            shards = self._streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]
            iterators = [
                self._streams.get_shard_iterator(
                    StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
                for shard in shards["Shards"]
            ]
            for iterator in iterators:
                thread = threading.Thread(
                    target=self._poll,
                    args=(trigger, stream_arn, iterator),
                    name=f"stream-{trigger.function}",
                    daemon=True,
                )
                thread.start()
                self._threads.append(thread)

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def _poll(self, trigger: StreamTrigger, stream_arn: str, iterator: str) -> None:
        while not self._stopping.is_set():
            try:
                page = self._streams.get_records(ShardIterator=iterator, Limit=trigger.batch_size)
            except Exception:  # the embedded AWS is stopping or briefly unavailable
                if not self._stopping.wait(0.5):
                    log.exception("reading the stream of %s failed", trigger.table)
                continue
            iterator = page.get("NextShardIterator") or iterator
            all_records = [_stream_record(r, stream_arn) for r in page.get("Records", [])]
            records = [r for r in all_records if self._selected(trigger, r)]
            if records:
                self._deliver(trigger, records)
            elif self._stopping.wait(self._interval):
                return

    def _selected(self, trigger: StreamTrigger, record: dict[str, Any]) -> bool:
        patterns = self._patterns[trigger]
        return not patterns or any(p.matches_event(record) for p in patterns)

    def _deliver(self, trigger: StreamTrigger, records: list[dict[str, Any]]) -> None:
        """Retries the batch until it succeeds or its attempts run out (-1: until it expires,
        which locally is never); then the on-failure destination gets a note of it."""
        attempt = 0
        while not self._stopping.is_set():
            try:
                result = self._functions.invoke(trigger.function, {"Records": records}) or {}
                if not result.get("batchItemFailures"):
                    return
            except Exception:
                log.exception("%s failed on a stream batch", trigger.function)
            attempt += 1
            if 0 <= trigger.maximum_retry_attempts < attempt:
                self._send_to_failure_destination(trigger, records)
                return
            time.sleep(self._retry_delay)

    def _send_to_failure_destination(
        self, trigger: StreamTrigger, records: list[dict[str, Any]]
    ) -> None:
        if trigger.on_failure_queue is None:
            log.error("%s dropped a stream batch after its retries", trigger.function)
            return
        sequence_numbers = [r["dynamodb"].get("SequenceNumber") for r in records]
        with acting_as(trigger.function):  # Lambda sends it with the function's role
            self._send_failure_note(trigger, sequence_numbers, len(records))

    def _send_failure_note(
        self, trigger: StreamTrigger, sequence_numbers: list[Any], batch_size: int
    ) -> None:
        assert trigger.on_failure_queue is not None
        self._sqs.send_message(
            QueueUrl=self._template.names[trigger.on_failure_queue],
            MessageBody=json.dumps(
                {
                    "requestContext": {"condition": "RetryAttemptsExhausted"},
                    "DDBStreamBatchInfo": {
                        "batchSize": batch_size,
                        "startSequenceNumber": sequence_numbers[0],
                        "endSequenceNumber": sequence_numbers[-1],
                    },
                }
            ),
        )


def _stream_record(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """The record as Lambda hands it over: JSON, with its source ARN (boto3 parsed the creation
    time into a datetime; Lambda gives epoch seconds)."""
    change = dict(record["dynamodb"])
    created = change.get("ApproximateCreationDateTime")
    if created is not None and hasattr(created, "timestamp"):
        change["ApproximateCreationDateTime"] = int(created.timestamp())
    return {**record, "dynamodb": change, "eventSourceARN": stream_arn}


class Schedules:
    """EventBridge's scheduled rules: each Schedule event's function is invoked a moment after
    the stack starts, then every period: its rate, or `period_seconds` for all when set (so that
    a five-minute schedule can be watched locally). A failed run is logged; the next one comes
    at its time, as the template's schedules are not retried."""

    def __init__(
        self,
        template: Template,
        functions: LocalFunctions,
        period_seconds: float | None = None,
        first_delay_seconds: float = 1.0,
    ) -> None:
        self._triggers = template.schedule_triggers()
        self._functions = functions
        self._period = period_seconds
        self._first_delay = first_delay_seconds
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for trigger in self._triggers:
            thread = threading.Thread(
                target=self._run, args=(trigger,), name=f"schedule-{trigger.function}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def _run(self, trigger: ScheduleTrigger) -> None:
        period = self._period or trigger.rate_seconds
        wait = self._first_delay
        while not self._stopping.wait(wait):
            started = time.monotonic()
            try:
                self._functions.invoke(trigger.function, scheduled_event(trigger))
            except Exception:
                log.exception("%s failed on its schedule", trigger.function)
            wait = max(0.0, period - (time.monotonic() - started))


def scheduled_event(trigger: ScheduleTrigger) -> dict[str, Any]:
    """The event EventBridge sends a scheduled rule's target (events/*_schedule.json)."""
    stack = PSEUDO_PARAMETERS["AWS::StackName"]
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [
            f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{stack}-{trigger.function}{trigger.event}"
        ],
        "detail": {},
    }
