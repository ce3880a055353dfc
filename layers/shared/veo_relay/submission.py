"""Submitting a task to its provider: paced to the provider's rate, never twice.

A submit first claims the task (a conditional write). The claim is released only by a refusal that
proves the provider created nothing (e.g. 402, 429, 455, 503): then the task is offered to the
next provider `auto` may use, or stays `queued` for a later slot. After an ambiguous failure (a
timeout, a 500) the provider may have created the task and charged for it, so it is never
submitted again: the callback to the task's own URL, or the deadline, settles it. Each claim is a
new attempt, whose callback URL has a token of its own (veo_relay.callback_tokens): the URL of an
attempt that may have reached its provider stays the task's as long as the task is open.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from aws_lambda_powertools import Logger

from veo_relay.deadlines import Deadline, leaves_time_to_submit, submit_deadline
from veo_relay.errors import ProviderError
from veo_relay.ports import (
    CallbackTokenMint,
    FallbackPoller,
    Metrics,
    Providers,
    SubmitRequests,
    SubmitSchedule,
    TaskRepository,
)
from veo_relay.pricing import PriceTable, to_usd
from veo_relay.providers.base import ExtensionRequest, GenerationRequest, Submission
from veo_relay.queues import SubmitTicket
from veo_relay.settings import ProviderSettings
from veo_relay.tasks import Task, TaskError, TaskKind

logger = Logger(child=True)

# A slot this close is waited for in the request; a later one is left to the submit queue, whose
# messages arrive a little early (SubmitQueue.EARLY_SECONDS) and wait for their slot here.
INLINE_WAIT_SECONDS = 1.0
QUEUED_WAIT_SECONDS = 3.0
# Refusals after which `auto` tries the next provider: this one cannot take the task now.
_FALL_THROUGH_CODES = frozenset(
    {"insufficient_credits", "rate_limited", "provider_unavailable", "unauthorized"}
)


class SubmitOutcome(StrEnum):
    SUBMITTED = "submitted"
    QUEUED = "queued"
    FAILED = "failed"
    OUTCOME_UNKNOWN = "outcome_unknown"
    NOT_MINE = "not_mine"  # another submit holds the claim, or the task is no longer queued


def wait_for_slot(slot_at: float, longest: float = INLINE_WAIT_SECONDS) -> bool:
    """Sleeps until a near slot; False when the slot is further than `longest` seconds."""
    delay = slot_at - time.time()
    if delay > longest:
        return False
    if delay > 0:
        time.sleep(delay)
    return True


def submits_inline(slot_at: float, deadline: Deadline | None) -> bool:
    """Whether a caller makes the submit in `slot_at` itself: the slot is at most
    INLINE_WAIT_SECONDS away and, for a caller waiting with a `deadline` (the API), the provider
    still has its time once the slot has come. Otherwise the submit queue makes it."""
    wait = slot_at - time.time()
    return wait <= INLINE_WAIT_SECONDS and leaves_time_to_submit(deadline, wait)


@dataclass(frozen=True)
class Submitter:
    """Submits tasks in their providers' slots (the API's inline submits, the submit queue's)."""

    tasks: TaskRepository
    providers: Providers
    provider_settings: Mapping[str, ProviderSettings]
    slots: SubmitSchedule
    submit_queue: SubmitRequests
    fallback_poller: FallbackPoller
    callback_tokens: CallbackTokenMint
    metrics: Metrics
    prices: PriceTable

    def reserve_slot(self, provider: str) -> float:
        return self.slots.reserve(provider, self.provider_settings[provider].rate_limit)

    def start_fallback_poller(self, task: Task) -> None:
        provider = self.provider_settings[task.provider]
        self.fallback_poller.start(task.id, provider.first_wait_seconds)

    def queue_for_later(self, task: Task, ticket: SubmitTicket, slot_at: float) -> None:
        """Leaves the task `queued` until `slot_at`. Its fallback poller runs meanwhile (a
        second start is a no-op), so the deadline covers a task that never leaves the queue; it is
        started first, so that it does even when the queue's message could not be sent."""
        self.start_fallback_poller(task)
        self.submit_queue.request_submit(ticket, slot_at)

    def submit_queued(self, ticket: SubmitTicket, slot_at: float) -> SubmitOutcome:
        """The submit queue's consumer: the slot was reserved when the ticket was queued.

        The claim is taken before the slot is waited for, as the API's is: a claim's write slowed
        by load would otherwise make the submit late, and a late one takes a fresh slot at the end
        of the schedule, so that under a burst every ticket could go round the queue without
        end."""
        if slot_at - time.time() > QUEUED_WAIT_SECONDS:
            self.submit_queue.request_submit(ticket, slot_at)
            return SubmitOutcome.QUEUED
        task = self.tasks.claim_submit(ticket.task_id)
        if task is None:
            return SubmitOutcome.NOT_MINE
        wait_for_slot(slot_at, QUEUED_WAIT_SECONDS)
        try:
            return self.submit_claimed(task, ticket, slot_at)
        except ProviderError:
            return SubmitOutcome.FAILED  # recorded on the task; nobody waits for the error here

    def submit_claimed(
        self,
        task: Task,
        ticket: SubmitTicket,
        slot_at: float,
        deadline: Deadline | None = None,
    ) -> SubmitOutcome:
        """Submits a task whose claim this caller holds, in its slot; with a `deadline` (a client
        waits), only if the provider's answer can come in time, else the submit queue makes it.
        Raises the provider's error only when the task is failed for good by it."""
        # The callback URL first (its key is a read of the secrets cache, slow when cold), so that
        # the lateness checked below is the lateness the provider sees.
        provider = self.providers.get(task.provider)
        try:
            callback_url = self._callback_url(task, ticket) if provider.supports_callbacks else None
        except Exception:
            # The key could not be read (Secrets Manager failing): nothing was sent, so the claim
            # is given back and the submit queue tries again in a fresh slot (a new attempt).
            logger.exception(
                "callback URL could not be made; the task goes back to the submit queue",
                extra={"task_id": task.id, "provider": task.provider},
            )
            return self._requeue(task, ticket, self.reserve_slot(task.provider))
        # Later than its provider's tolerance, a submit could crowd a window past the limit: it
        # takes a fresh slot, here and now, and goes in it when that slot is near. Requeueing
        # instead would never catch up on a busy system, where every trip through the queue
        # arrives late again.
        late_tolerance = self.provider_settings[task.provider].rate_limit.late_tolerance
        if time.time() - slot_at > late_tolerance:
            slot_at = self.reserve_slot(task.provider)
            if not submits_inline(slot_at, deadline):
                return self._requeue(task, ticket, slot_at)
            wait_for_slot(slot_at)
        if not leaves_time_to_submit(deadline):
            # The slot's wait and the writes before it used the caller's time up: the queue's
            # worker submits now, with the full timeouts, and the client gets the task queued.
            return self._requeue(task, ticket, slot_at)
        try:
            submission = self._submit(
                task, callback_url, None if deadline is None else submit_deadline(deadline)
            )
        except ProviderError as exc:
            return self._after_refusal(task, ticket, exc)
        try:
            self.tasks.mark_submitted(
                task.id, submission.provider_task_id, submission.model, self._price(task)
            )
        finally:
            # The provider has the task: whatever happens to this write, the poller must watch it.
            self.start_fallback_poller(task)
        logger.info(
            "task submitted",
            extra={"task_id": task.id, "provider": task.provider, "kind": task.kind.value},
        )
        return SubmitOutcome.SUBMITTED

    def _callback_url(self, task: Task, ticket: SubmitTicket) -> str:
        """The URL of this attempt (the claim this caller holds): its token is minted here, never
        stored or queued."""
        token = self.callback_tokens.mint(task.provider, task.id, task.submit_attempt)
        return ticket.callback_url(task.provider, token)

    def _requeue(self, task: Task, ticket: SubmitTicket, slot_at: float) -> SubmitOutcome:
        """Gives the claim back (nothing was sent) and leaves the submit to the queue, in
        `slot_at`."""
        self.tasks.release_submit(task.id, task.provider, task.fallback_providers)
        self.queue_for_later(task, ticket, slot_at)
        return SubmitOutcome.QUEUED

    def _submit(
        self, task: Task, callback_url: str | None, deadline: Deadline | None
    ) -> Submission:
        provider = self.providers.get(task.provider)
        if task.kind is TaskKind.GENERATE:
            return provider.submit_generation(
                GenerationRequest(
                    prompt=task.prompt,
                    mode=task.mode,
                    generation_type=task.generation_type,
                    aspect_ratio=task.aspect_ratio,
                    resolution=task.resolution,
                    image_urls=tuple(task.image_urls),
                    seed=task.seed,
                    watermark=task.watermark,
                ),
                callback_url,
                deadline,
            )
        assert task.parent_id is not None
        parent = self.tasks.get(task.parent_id)
        assert parent.provider_task_id is not None  # a completed task always has one
        return provider.submit_extension(
            ExtensionRequest(
                parent_provider_task_id=parent.provider_task_id,
                parent_model=parent.provider_model,
                prompt=task.prompt,
                mode=task.mode,
                aspect_ratio=task.aspect_ratio,
                seed=task.seed,
                watermark=task.watermark,
                resolution=task.resolution,
            ),
            callback_url,
            deadline,
        )

    def _after_refusal(self, task: Task, ticket: SubmitTicket, exc: ProviderError) -> SubmitOutcome:
        extra = {"task_id": task.id, "provider": task.provider, "code": exc.code}
        self.metrics.provider_error(task.provider, exc.code)
        if not exc.created_nothing:
            return self._outcome_unknown(task, exc)
        if exc.code in _FALL_THROUGH_CODES and task.fallback_providers:
            provider, *rest = task.fallback_providers
            logger.info("provider refused; trying the next", extra={**extra, "next": provider})
            self.tasks.release_submit(task.id, provider, rest)
            self.queue_for_later(task, ticket, self.reserve_slot(provider))
            return SubmitOutcome.QUEUED
        if exc.retryable:
            # No capacity now (rate limit, maintenance): the task waits for a later slot.
            logger.info("provider busy; task stays queued", extra=extra)
            self.tasks.release_submit(task.id, task.provider, task.fallback_providers)
            self.queue_for_later(task, ticket, self.reserve_slot(task.provider))
            return SubmitOutcome.QUEUED
        logger.warning("provider refused the task", extra=extra)
        self.tasks.mark_failed(task.id, _task_error(exc), cost_usd=0.0)
        raise exc

    def _outcome_unknown(self, task: Task, exc: ProviderError) -> SubmitOutcome:
        provider = self.providers.get(task.provider)
        logger.warning(
            "submit outcome unknown; not repeating it",
            extra={"task_id": task.id, "provider": task.provider, "code": exc.code},
        )
        # The provider may have created the task, and charged for it.
        cost = self._price(task)
        if provider.supports_callbacks:
            # The provider calls the task's own URL if it did create the task; the poller's
            # deadline ends the task otherwise.
            self.tasks.note_cost(task.id, cost)
            self.start_fallback_poller(task)
            return SubmitOutcome.OUTCOME_UNKNOWN
        self.tasks.mark_failed(
            task.id,
            TaskError(
                "timeout",
                f"the provider's answer to the submit was lost ({exc}); whether it created the "
                "task is unknown, and it is not submitted again so as not to pay twice",
                provider_code=exc.raw_code,
                provider_message=exc.raw_message,
            ),
            cost_usd=cost,
        )
        return SubmitOutcome.FAILED

    def _price(self, task: Task) -> float:
        """The price table's figure for the task on its current provider."""
        return to_usd(self.prices.price(task.provider, task.mode, task.resolution))


def _task_error(exc: ProviderError) -> TaskError:
    return TaskError(
        exc.code, str(exc), provider_code=exc.raw_code, provider_message=exc.raw_message
    )
