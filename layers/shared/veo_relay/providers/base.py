"""The small interface every provider adapter implements, and the values it speaks in."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from veo_relay.deadlines import Deadline
from veo_relay.errors import InvalidCallback
from veo_relay.providers.capabilities import DEFAULT_RESOLUTION, Capabilities
from veo_relay.tasks import TaskError, TaskKind

__all__ = ["Capabilities", "TaskKind"]  # re-exported: adapters speak of these too


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    mode: str
    generation_type: str
    aspect_ratio: str
    image_urls: tuple[str, ...] = ()
    seed: int | None = None
    watermark: str | None = None
    resolution: str = DEFAULT_RESOLUTION


@dataclass(frozen=True)
class ExtensionRequest:
    """Continue the parent's video. `parent_model` is the provider-side model the parent ran on,
    when known (a task recovered through its callback never learnt it)."""

    parent_provider_task_id: str
    parent_model: str | None
    prompt: str
    mode: str
    aspect_ratio: str
    seed: int | None = None
    watermark: str | None = None
    resolution: str = DEFAULT_RESOLUTION  # the parent's: a child is made at its parent's


@dataclass(frozen=True)
class Submission:
    provider_task_id: str
    model: str  # the provider-side model name, e.g. "veo3_fast"; an extension may need it


class ProviderState(StrEnum):
    RUNNING = "running"
    # The generation succeeded and the upgrade to the task's resolution runs (set by
    # veo_relay.provider_results, never by an adapter): the provider has confirmed the task.
    UPGRADING = "upgrading"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class ProviderStatus:
    state: ProviderState
    video_urls: tuple[str, ...] = ()
    error: TaskError | None = None
    # 0-100 while running, where the provider reports it (apimart); None where it does not.
    progress: int | None = None
    # What the provider says the task cost, in USD, where its status reports it (apimart).
    cost_usd: float | None = None


@dataclass(frozen=True)
class UpgradeStarted:
    """A provider's answer to an upgrade request: the upgrade's own task id, where it has one
    (kie's 4K), and the upgrade's status now."""

    upgrade_task_id: str | None
    status: ProviderStatus


@dataclass(frozen=True)
class Balance:
    """What the provider's account holds now, in the provider's own unit (its spec's
    balance_unit): kie counts credits, apixo US dollars."""

    amount: float
    unit: str

    @classmethod
    def of(cls, value: Any, unit: str) -> Balance | None:
        """A JSON number, or a number in a string (as some answers carry amounts); None for
        anything else (a boolean, text, NaN or an infinity)."""
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            return None
        try:
            amount = float(value)
        except ValueError:
            return None
        return cls(amount, unit) if math.isfinite(amount) else None


class BalanceRoute(Protocol):
    def read_balance(self) -> Balance:
        """Raises ProviderError when the provider refuses or answers an unexpected body."""
        ...


class ResolutionUpgrades(Protocol):
    """How a provider makes the resolutions of its Capabilities.upgraded_resolutions from a
    generation that succeeded."""

    def start_upgrade(
        self, provider_task_id: str, resolution: str, callback_url: str | None
    ) -> UpgradeStarted: ...

    def read_upgrade(
        self, provider_task_id: str, resolution: str, upgrade_task_id: str | None
    ) -> ProviderStatus:
        """`upgrade_task_id` None: the start's answer was lost (only its callback can name it)."""
        ...


# A provider task id a callback may name: visible ASCII, as every provider's ids are, and short
# enough to store on the task and to send back in a status read.
_PROVIDER_TASK_ID_FORM = re.compile(r"[!-~]{1,256}", re.ASCII)


@dataclass(frozen=True)
class CallbackNotice:
    """What a callback body claims. A notification only: the status API is the proof.

    Every adapter's notice is built here, so the provider task id a body names is checked once:
    anything but a plausible id is InvalidCallback (it would be stored on the task)."""

    provider_task_id: str | None

    def __post_init__(self) -> None:
        task_id = self.provider_task_id
        if task_id is not None and not _PROVIDER_TASK_ID_FORM.fullmatch(task_id):
            raise InvalidCallback("callback names no provider task id of a valid form")


class Provider(Protocol):
    name: str
    supports_callbacks: bool
    capabilities: Capabilities

    @property
    def upgrades(self) -> ResolutionUpgrades | None:
        """None for a provider without upgraded resolutions."""
        ...

    @property
    def balance(self) -> BalanceRoute | None:
        """None for a provider that documents no balance route (its spec's balance_unit)."""
        ...

    # `deadline`: when a caller waiting for the submit (the API) needs the provider's answer by;
    # None: the full timeouts (providers.http.SUBMIT_TIMEOUT).
    def submit_generation(
        self,
        request: GenerationRequest,
        callback_url: str | None,
        deadline: Deadline | None = None,
    ) -> Submission: ...

    def submit_extension(
        self,
        request: ExtensionRequest,
        callback_url: str | None,
        deadline: Deadline | None = None,
    ) -> Submission: ...

    def read_status(self, provider_task_id: str, kind: TaskKind) -> ProviderStatus: ...

    def parse_callback(self, body: bytes, headers: Mapping[str, str]) -> CallbackNotice:
        """Raises InvalidCallback when the body, or a signature the provider sends, is wrong."""
        ...
