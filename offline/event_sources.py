"""SQS event source mappings: poll the template's queues and hand batches to their functions, as
Lambda's pollers do (report-batch-item-failures honoured, failed messages left for redelivery)."""

from __future__ import annotations

import hashlib
import logging
import threading
from typing import Any

from offline.aws import REGION
from offline.functions import LocalFunctions
from offline.template import QueueTrigger, Template

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
            if message["MessageId"] in failed:
                self._sqs.change_message_visibility(
                    QueueUrl=queue_url,
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=self._retry_delay,
                )
            else:
                self._sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


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
