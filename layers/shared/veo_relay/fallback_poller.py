"""Starting the fallback poller: the state machine that watches a task until it is closed."""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

from veo_relay.tasks import FAILED_TASK_RETENTION


class FallbackPollerExecutions:
    """The state machine's executions, one per task (veo_relay.ports.FallbackPoller)."""

    def __init__(
        self,
        stepfunctions: Any,
        state_machine_arn: str,
        deadline_seconds: int,
        copy_lease_seconds: int,
    ) -> None:
        self._sfn = stepfunctions
        self._arn = state_machine_arn
        self._deadline_seconds = deadline_seconds
        self._copy_lease_seconds = copy_lease_seconds

    def start(self, task_id: str, first_wait_seconds: int) -> None:
        """One execution per task, named after it, so a second start for the task is harmless.

        The input also carries what the definition cannot compute itself: the lease a copy holds
        and when a task the state machine closes should expire (as `TaskStore.mark_failed` sets).
        """
        expires = time.time() + self._deadline_seconds + FAILED_TASK_RETENTION.total_seconds()
        with contextlib.suppress(self._sfn.exceptions.ExecutionAlreadyExists):
            self._sfn.start_execution(
                stateMachineArn=self._arn,
                name=task_id,
                input=json.dumps(
                    {
                        "task_id": task_id,
                        "first_wait_seconds": first_wait_seconds,
                        "copy_lease_seconds": self._copy_lease_seconds,
                        "failed_expires_at": str(int(expires)),
                        "poll": {"attempt": 0},
                    }
                ),
            )
