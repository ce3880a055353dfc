"""Provider callbacks: check the task's token, note that the callback came and take the copy's
lease (one write), queue the copy.

The body is only a notification; the copy worker asks the provider's status API before anything
is recorded as a success or a failure.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from aws_lambda_powertools import Logger

from veo_relay.callback_tokens import CallbackTokens
from veo_relay.errors import InvalidCallback, TaskNotFound
from veo_relay.ports import CopyRequests, Providers, TaskRepository
from veo_relay.queues import DEFERRED_CALLBACK
from veo_relay.tasks import Task, parse_timestamp, utc_now

logger = Logger(child=True)


class CallbackOutcome(StrEnum):
    QUEUED = "queued"
    DUPLICATE = "duplicate"
    ALREADY_CLOSED = "already_closed"
    # Within the quiet time after a callback the provider's status did not confirm (a leaked token
    # must not buy a copy and a status call per request): the first queues one copy for the end
    # of that time, the others nothing. Also a callback that names no provider task for a task
    # whose submit's answer was lost: nothing could be asked of the provider.
    IGNORED = "ignored"


@dataclass(frozen=True)
class CallbackIntake:
    tasks: TaskRepository
    providers: Providers
    provider_names: Collection[str]
    callback_tokens: CallbackTokens
    copy_queue: CopyRequests

    def accept(
        self, provider: str, token: str, body: bytes, headers: Mapping[str, str]
    ) -> CallbackOutcome:
        """Refuses an unknown token (InvalidCallback) before anything is read: first its form and
        the
        provider's name, then its MAC under the key, and only then the task."""
        task = self._task_of_token(provider, token)
        if task.status.is_terminal:
            return CallbackOutcome.ALREADY_CLOSED
        notice = self.providers.get(provider).parse_callback(body, headers)
        if task.provider_task_id is None and notice.provider_task_id is None:
            # The submit's answer was lost and this callback does not name the provider's task: a
            # copy could not ask the provider anything. The callback that names it must still find
            # the task as it is (queued, no lease taken), or the paid video is never fetched.
            return CallbackOutcome.IGNORED
        if task.provider_task_id is None:
            # The submit's answer was lost (timeout or a failed write); the callback to this task's
            # own URL tells us the provider's task id. Recorded even while callbacks are quiet: no
            # later callback may name it.
            assert notice.provider_task_id is not None
            self.tasks.mark_submitted(task.id, notice.provider_task_id, None)
        elif (named := notice.provider_task_id) is not None and named != task.provider_task_id:
            self._check_upgrade_task(task, named)
        quiet_until = task.callbacks_quiet_until
        if quiet_until is not None and quiet_until > utc_now():
            self._defer_copy(task.id, quiet_until)
            return CallbackOutcome.IGNORED
        leased = self.tasks.record_callback(task.id)
        if leased is None:
            return CallbackOutcome.DUPLICATE
        self.copy_queue.request_copy(task.id, reason="callback", lease=leased.updated_at)
        logger.info("callback accepted", extra={"task_id": task.id})
        return CallbackOutcome.QUEUED

    def _check_upgrade_task(self, task: Task, named: str) -> None:
        """A callback naming another task than the generation may be its upgrade's (kie's 4K
        task calls the same URL back): the one the task knows, or, when the start's answer was
        lost, the one its callback names (recorded: no later callback may name it)."""
        if task.upgrade_started_at is None:
            raise InvalidCallback("callback names another provider task")
        if task.upgrade_task_id is None:
            self.tasks.record_upgrade_task(task.id, named)
        elif named != task.upgrade_task_id:
            raise InvalidCallback("callback names another provider task")

    def _task_of_token(self, provider: str, token: str) -> Task:
        """The task whose latest submit to `provider` was handed `token`; InvalidCallback for any
        other token."""
        verified = None
        if provider in self.provider_names:
            verified = self.callback_tokens.verify(provider, token)
        if verified is None:
            raise InvalidCallback("unknown callback token")
        try:
            task = self.tasks.get(verified.task_id)
        except TaskNotFound:
            raise InvalidCallback("unknown callback token") from None
        # The token of an earlier attempt (a provider that refused the task) is not this one's.
        if task.provider != provider or task.submit_attempt != verified.attempt:
            raise InvalidCallback("unknown callback token")
        return task

    def _defer_copy(self, task_id: str, quiet_until: str) -> None:
        """A callback within the quiet time may be the provider's genuine one, which it will not
        send
        again: the first of the window queues one copy for the window's end (one conditional write
        guards it; the others queue nothing). That copy takes the lease as a callback does."""
        if not self.tasks.defer_copy(task_id, quiet_until):
            return
        delay = math.ceil((parse_timestamp(quiet_until) - datetime.now(UTC)).total_seconds())
        self.copy_queue.request_copy(task_id, reason=DEFERRED_CALLBACK, delay_seconds=delay + 1)
        logger.info("callback within the quiet time; copy deferred", extra={"task_id": task_id})
