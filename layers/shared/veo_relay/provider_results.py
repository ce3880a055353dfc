"""A task's result as its provider has it, for the copy and the poller alike: the generation's
status and, for a resolution made by an upgrade (kie's 1080p and 4K), the upgrade's, which is
asked for here, once, the first time the generation is found succeeded."""

from __future__ import annotations

from dataclasses import dataclass

from aws_lambda_powertools import Logger

from veo_relay.errors import ProviderError
from veo_relay.ports import CallbackTokenMint, Providers, TaskRepository
from veo_relay.providers.base import (
    Provider,
    ProviderState,
    ProviderStatus,
    ResolutionUpgrades,
)
from veo_relay.queues import SubmitTicket
from veo_relay.tasks import Task

logger = Logger(child=True)


@dataclass(frozen=True)
class ProviderResults:
    tasks: TaskRepository
    providers: Providers
    callback_tokens: CallbackTokenMint

    def read(self, task: Task) -> ProviderStatus:
        """The task's status at its provider: SUCCEEDED only once its own resolution is made,
        UPGRADING while the generation that succeeded is being upgraded to it. Raises the
        provider's error (ProviderError) as a status read does."""
        assert task.provider_task_id is not None  # only a submitted task has a result to read
        provider = self.providers.get(task.provider)
        upgrades = provider.upgrades
        if upgrades is None or not provider.capabilities.upgrades_to(task.resolution):
            return provider.read_status(task.provider_task_id, task.kind)
        if task.upgrade_started_at is not None:
            status = upgrades.read_upgrade(
                task.provider_task_id, task.resolution, task.upgrade_task_id
            )
            return _upgrading(status)
        generated = provider.read_status(task.provider_task_id, task.kind)
        if generated.state is not ProviderState.SUCCEEDED:
            return generated
        return self._start_upgrade(task, provider, upgrades, generated)

    def _start_upgrade(
        self,
        task: Task,
        provider: Provider,
        upgrades: ResolutionUpgrades,
        generated: ProviderStatus,
    ) -> ProviderStatus:
        assert task.provider_task_id is not None
        source = generated.video_urls[0] if generated.video_urls else None
        if self.tasks.start_upgrade(task.id, source) is None:
            # Another copy or poll asked for it a moment ago: its status is the next read's.
            return ProviderStatus(ProviderState.UPGRADING)
        try:
            started = upgrades.start_upgrade(
                task.provider_task_id, task.resolution, self._callback_url(task, provider)
            )
        except ProviderError as exc:
            if exc.created_nothing:
                self.tasks.release_upgrade(task.id)  # asked for again at the next read
            raise
        if started.upgrade_task_id is not None:
            self.tasks.record_upgrade_task(task.id, started.upgrade_task_id)
        logger.info(
            "upgrade started",
            extra={
                "task_id": task.id,
                "resolution": task.resolution,
                "upgrade_task_id": started.upgrade_task_id,
            },
        )
        return _upgrading(started.status)

    def _callback_url(self, task: Task, provider: Provider) -> str | None:
        """The URL of the task's latest submit, whose token stays valid while the task is open:
        the upgrade's callback comes to the task's own route."""
        if not provider.supports_callbacks or task.callback_base_url is None:
            return None
        token = self.callback_tokens.mint(task.provider, task.id, task.submit_attempt)
        return SubmitTicket(task.id, task.callback_base_url).callback_url(task.provider, token)


def _upgrading(status: ProviderStatus) -> ProviderStatus:
    """An upgrade's status as the task's: running means the generation is being upgraded."""
    if status.state is ProviderState.RUNNING:
        return ProviderStatus(ProviderState.UPGRADING, progress=status.progress)
    return status
