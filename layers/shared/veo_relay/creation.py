"""Creating video tasks, generations and extensions: checked, recorded, then submitted or queued."""

from __future__ import annotations

import secrets
from collections.abc import Collection
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from aws_lambda_powertools import Logger

from veo_relay.deadlines import Deadline
from veo_relay.errors import InvalidRequest, ProviderError, TaskConflict, TaskNotFound
from veo_relay.idempotency import KeyBinding, binding_for, bound_task, repeated_by
from veo_relay.ports import Metrics, Providers, TaskRepository
from veo_relay.providers.base import GenerationRequest
from veo_relay.queues import SubmitTicket
from veo_relay.rules import check_extension, check_generation, check_prompt_and_seed
from veo_relay.spending import Spending, month_of
from veo_relay.submission import Submitter, submits_inline, wait_for_slot
from veo_relay.tasks import Task, TaskStatus, new_task_id, utc_now

logger = Logger(child=True)


@dataclass(frozen=True)
class CreateVideo:
    owner: str
    provider: str | None  # a provider's name, "auto" or None (the configured default)
    request: GenerationRequest
    webhook_url: str | None = None
    # A repeat with the same key (and body) gets the task the first request created.
    idempotency_key: str | None = None


@dataclass(frozen=True)
class ExtendVideo:
    owner: str
    parent_id: str
    prompt: str
    mode: str | None  # None: the parent's
    seed: int | None = None
    watermark: str | None = None
    webhook_url: str | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class TaskCreation:
    """The API's creates and extends: checked, recorded, then submitted in their slot or
    queued."""

    tasks: TaskRepository
    providers: Providers
    submitter: Submitter
    metrics: Metrics
    spending: Spending
    provider_names: Collection[str]
    default_provider: str
    provider_preference: tuple[str, ...]
    webhook_allow_loopback: bool

    def create(
        self,
        command: CreateVideo,
        callback_base_url: str,
        deadline: Deadline | None = None,
    ) -> Task:
        """A new generation task, submitted or queued; `deadline`: when the caller's answer is due
        (veo_relay.deadlines)."""
        binding = _binding("create", command)
        if binding is not None and (bound := bound_task(self.tasks, command.owner, binding)):
            return self._repeated(bound)
        self._check_webhook_url(command.webhook_url)
        candidates = self._candidates(command.provider)
        violations = {}
        for name in candidates:
            try:
                check_generation(name, self.providers.get(name).capabilities, command.request)
            except InvalidRequest as exc:
                violations[name] = exc
        usable = [name for name in candidates if name not in violations]
        if not usable:
            raise violations[candidates[0]]
        request = command.request
        task = _new_task(
            owner=command.owner,
            provider=usable[0],
            prompt=request.prompt,
            mode=request.mode,
            generation_type=request.generation_type,
            aspect_ratio=request.aspect_ratio,
            binding=binding,
        )
        task.fallback_providers = usable[1:]
        task.resolution = request.resolution
        task.image_urls = list(request.image_urls)
        task.seed = request.seed
        task.watermark = request.watermark
        task.webhook_url = command.webhook_url
        hold = self.spending.hold_for(usable, request.mode, request.resolution)
        return self._record_and_submit(task, callback_base_url, deadline, hold)

    def extend(
        self,
        command: ExtendVideo,
        callback_base_url: str,
        deadline: Deadline | None = None,
    ) -> Task:
        """A child of a completed video, on its parent's provider, at its parent's resolution
        (and, where that provider's capabilities keep it, in the parent's mode)."""
        binding = _binding("extend", command)
        if binding is not None and (bound := bound_task(self.tasks, command.owner, binding)):
            return self._repeated(bound)
        self._check_webhook_url(command.webhook_url)
        parent = self.tasks.get(command.parent_id)
        if parent.owner != command.owner or parent.is_gone(datetime.now(UTC)):
            raise TaskNotFound(command.parent_id)
        if parent.status is not TaskStatus.COMPLETED:
            raise TaskConflict(
                f"id: video {parent.id} is {parent.status.value}; "
                "only a completed video can be extended"
            )
        capabilities = self.providers.get(parent.provider).capabilities
        mode = command.mode or parent.mode
        check_extension(capabilities, parent, mode)
        check_prompt_and_seed(
            parent.provider, capabilities, command.prompt, command.seed, command.watermark
        )
        task = _new_task(
            owner=command.owner,
            provider=parent.provider,
            prompt=command.prompt,
            mode=mode,
            generation_type=parent.generation_type,
            aspect_ratio=parent.aspect_ratio,
            binding=binding,
        )
        task.parent_id = parent.id
        task.root_id = parent.root_id
        task.resolution = parent.resolution
        task.seed = command.seed
        task.watermark = command.watermark
        task.webhook_url = command.webhook_url
        hold = self.spending.hold_for([task.provider], task.mode, task.resolution)
        return self._record_and_submit(task, callback_base_url, deadline, hold)

    def _check_webhook_url(self, url: str | None) -> None:
        if url is not None:
            from veo_relay.webhook_urls import check_webhook_url

            check_webhook_url(url, self.webhook_allow_loopback)

    def _candidates(self, requested: str | None) -> list[str]:
        if requested == "auto":
            return list(self.provider_preference)
        name = requested or self.default_provider
        if name not in self.provider_names:
            raise InvalidRequest("provider", f"{name!r} is not available on this deployment")
        return [name]

    def _repeated(self, task: Task) -> Task:
        """A repeat under a task's Idempotency-Key gets the task as it is, and changes nothing. A
        task still queued may be one whose first request died midway (before its fallback poller
        started): starting it again is a no-op when it runs, and otherwise gives the task its
        deadline."""
        if task.status is TaskStatus.QUEUED:
            self.submitter.start_fallback_poller(task)
        return task

    def _record_and_submit(
        self, task: Task, callback_base_url: str, deadline: Deadline | None, hold: int
    ) -> Task:
        """Counts the create against its caller's minute and reserves `hold` (micro-dollars) of
        its month's budget, before anything is recorded or sent (veo_relay.spending). Then
        submits at once when the provider has a slot within a second and, for a caller with a
        `deadline`, can answer in time (the task is created already claimed: one write); otherwise
        leaves the task `queued` for the submit queue.

        Once the task is recorded the answer is the task, never an error that would have the client
        create it again: a fault after that write (a state write throttled after the provider
        accepted, a hand-off that failed) is logged, and the task returned as this request recorded
        it, its fallback poller running. Only a refusal that failed the task for good is raised."""
        self.spending.admit(task.owner)
        month = month_of(task.created_at)
        self.spending.reserve(task.owner, month, hold)
        task.reserved_micros = hold
        task.creation_id = secrets.token_hex(8)
        task.callback_base_url = callback_base_url
        ticket = SubmitTicket(task.id, callback_base_url)
        slot_at = self.submitter.reserve_slot(task.provider)
        inline = submits_inline(slot_at, deadline)
        if inline:
            task.submit_claimed_at = utc_now()
            task.submit_attempt = 1
        # A write that fails here keeps its reservation: the task may exist (its answer lost), and
        # a reservation given back for a task that then settles would let the month overspend.
        if not self.tasks.create(task):
            # The id is taken: by a request with the same Idempotency-Key a moment earlier, or by
            # this very write (its answer lost, the SDK's retry found the item; creation_id tells).
            stored = self.tasks.get(task.id)
            if stored.creation_id != task.creation_id:
                # Not this request's task: its own reservation has no task to settle it.
                self.spending.release(task.owner, month, hold)
                return self._repeated(repeated_by(stored, task.owner, task.request_hash))
        try:
            if not inline:
                self.submitter.queue_for_later(task, ticket, slot_at)
                return task
            wait_for_slot(slot_at)
            self.submitter.submit_claimed(task, ticket, slot_at, deadline)
            return self.tasks.get(task.id)
        except ProviderError:
            raise  # refused for good: the task is failed, and nothing was created at the provider
        except Exception:
            logger.exception(
                "a step after the task was recorded failed", extra={"task_id": task.id}
            )
            self._keep_watched(task)
            return task
        finally:
            # Counted after the submit: nothing may stand between a slot and its submit.
            self.metrics.task_created(task.provider)

    def _keep_watched(self, task: Task) -> None:
        """Makes sure the fallback poller watches a task whose creation was cut short, so that its
        callback or its deadline settles it (already running: a no-op)."""
        try:
            self.submitter.start_fallback_poller(task)
        except Exception:
            logger.exception(
                "the task's fallback poller could not be started", extra={"task_id": task.id}
            )


def _binding(kind: str, command: CreateVideo | ExtendVideo) -> KeyBinding | None:
    """The command's Idempotency-Key bound to a task id, with the hash of what it asks for."""
    request = {"kind": kind, **asdict(command)}
    del request["owner"], request["idempotency_key"]
    return binding_for(command.owner, command.idempotency_key, request)


def _new_task(
    *,
    owner: str,
    provider: str,
    prompt: str,
    mode: str,
    generation_type: str,
    aspect_ratio: str,
    binding: KeyBinding | None,
) -> Task:
    task_id = binding.task_id if binding is not None else new_task_id()
    now = utc_now()
    return Task(
        id=task_id,
        owner=owner,
        status=TaskStatus.QUEUED,
        provider=provider,
        prompt=prompt,
        mode=mode,
        generation_type=generation_type,
        aspect_ratio=aspect_ratio,
        root_id=task_id,
        created_at=now,
        updated_at=now,
        request_hash=binding.request_hash if binding is not None else None,
    )
