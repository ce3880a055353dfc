"""The API's objects, typed. Fields are exactly docs/openapi.json's (a unit test compares them),
in its order, so `as_dict()` gives back what the API sent."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

TaskStatus = Literal["queued", "in_progress", "storing", "completed", "failed"]
TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed"})
_T = TypeVar("_T")


@dataclass(frozen=True)
class Cost:
    usd: float
    source: str  # price_table | provider


@dataclass(frozen=True)
class Video:
    bucket: str
    key: str
    size_bytes: int
    sha256: str
    content_type: str
    download_url: str | None  # presigned in API answers and webhooks


@dataclass(frozen=True)
class TaskError:
    code: str
    message: str


@dataclass(frozen=True)
class Task:
    id: str
    status: TaskStatus
    provider: str
    provider_task_id: str | None
    mode: str
    generation_type: str
    aspect_ratio: str
    prompt: str
    image_urls: list[str]
    seed: int | None
    parent_id: str | None
    root_id: str
    resolution: str
    progress: int | None
    cost: Cost | None
    created_at: str
    updated_at: str
    completed_at: str | None
    video: Video | None
    error: TaskError | None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Task:
        fields: dict[str, Any] = {f.name: data.get(f.name) for f in dataclasses.fields(cls)}
        fields["image_urls"] = list(fields["image_urls"] or [])
        for name, kind in (("cost", Cost), ("video", Video), ("error", TaskError)):
            if fields[name] is not None:
                fields[name] = _nested(kind, fields[name])
        return cls(**fields)

    @property
    def done(self) -> bool:
        """Completed or failed: terminal, it changes no more."""
        return self.status in TERMINAL_STATUSES

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class TaskPage:
    items: list[Task]
    next_cursor: str | None


@dataclass(frozen=True)
class Usage:
    month: str
    spent_usd: float
    reserved_usd: float
    budget_usd: float | None
    tasks: dict[str, int]  # by status

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Usage:
        return _nested(cls, data)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _nested(kind: type[_T], data: dict[str, Any]) -> _T:
    """A flat dataclass from the API's object; fields it does not know yet are left out."""
    names = {f.name for f in dataclasses.fields(kind)}  # type: ignore[arg-type]
    return kind(**{k: v for k, v in data.items() if k in names})
