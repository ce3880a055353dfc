"""Hand-offs to the asynchronous parts: the copy queue and the fallback poller executions."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from veo_relay.settings import PollSettings


class CopyQueue:
    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs = sqs
        self._queue_url = queue_url

    def request_copy(self, task_id: str, reason: str) -> None:
        self._sqs.send_message(
            QueueUrl=self._queue_url,
            MessageBody=json.dumps({"task_id": task_id, "reason": reason}),
        )


def copy_request_task_id(body: str) -> str:
    message = json.loads(body)
    task_id = message.get("task_id") if isinstance(message, dict) else None
    if not isinstance(task_id, str) or not task_id:
        raise ValueError("copy request has no task_id")
    return task_id


class FallbackWorkflow:
    def __init__(self, stepfunctions: Any, state_machine_arn: str, poll: PollSettings) -> None:
        self._sfn = stepfunctions
        self._arn = state_machine_arn
        self._poll = poll

    def start(self, task_id: str) -> None:
        """One execution per task, named after it, so a second start for the task is harmless."""
        with contextlib.suppress(self._sfn.exceptions.ExecutionAlreadyExists):
            self._sfn.start_execution(
                stateMachineArn=self._arn,
                name=task_id,
                input=json.dumps(
                    {
                        "task_id": task_id,
                        "first_wait_seconds": self._poll.first_wait_seconds,
                        "poll": {"attempt": 0},
                    }
                ),
            )
