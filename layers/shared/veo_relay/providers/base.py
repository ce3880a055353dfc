"""The small interface every provider adapter implements, and the values it speaks in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from veo_relay.tasks import TaskError


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    mode: str
    generation_type: str
    aspect_ratio: str
    image_urls: tuple[str, ...] = ()
    seed: int | None = None
    watermark: str | None = None


class ProviderState(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class ProviderStatus:
    state: ProviderState
    video_urls: tuple[str, ...] = ()
    error: TaskError | None = None
    raw: Mapping[str, object] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class CallbackNotice:
    """What a callback body claims. A notification only: the status API is the proof."""

    provider_task_id: str | None


class Provider(Protocol):
    name: str

    def submit_generation(self, request: GenerationRequest, callback_url: str | None) -> str:
        """Creates the provider task; returns the provider's task id."""
        ...

    def read_status(self, provider_task_id: str) -> ProviderStatus: ...

    def parse_callback(self, body: bytes, headers: Mapping[str, str]) -> CallbackNotice: ...
