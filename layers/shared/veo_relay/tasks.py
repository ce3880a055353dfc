"""Video tasks: their states and the public task object (the transitions: veo_relay.task_states)."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Literal, cast

# From typing_extensions: pydantic, which generates docs/openapi.json from the TypedDicts below,
# reads a typing.TypedDict only on Python 3.12+, and the tools run 3.11. (Pydantic itself is the
# API function's alone; the other functions do not load it.)
from typing_extensions import TypedDict

from veo_relay.providers.capabilities import DEFAULT_RESOLUTION
from veo_relay.providers.registry import PROVIDER_NAMES


class TaskKind(StrEnum):
    GENERATE = "generate"
    EXTEND = "extend"


class TaskStatus(StrEnum):
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    STORING = "storing"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


# Failed tasks hold no video; their records expire after this (completed ones only under
# VideoRetentionDays, with their videos).
FAILED_TASK_RETENTION = timedelta(days=90)

TERMINAL_STATUSES = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED})
OPEN_STATUSES = frozenset(set(TaskStatus) - TERMINAL_STATUSES)


@dataclass(frozen=True)
class StoredVideo:
    """A video in our bucket, as the video store wrote it and the completed task records it."""

    bucket: str
    key: str
    size_bytes: int
    sha256: str
    content_type: str


@dataclass(frozen=True)
class TaskError:
    code: str
    message: str
    provider_code: str | None = None
    provider_message: str | None = None


@dataclass
class Task:
    id: str
    owner: str
    status: TaskStatus
    provider: str
    prompt: str
    mode: str
    generation_type: str
    aspect_ratio: str
    root_id: str
    created_at: str
    updated_at: str
    resolution: str = DEFAULT_RESOLUTION
    # 0-100 while in progress, where the provider reports it; None where it does not.
    progress: int | None = None
    image_urls: list[str] = field(default_factory=list)
    seed: int | None = None
    watermark: str | None = None
    parent_id: str | None = None
    # Providers `auto` may still try, in order, should `provider` refuse without creating a task.
    fallback_providers: list[str] = field(default_factory=list)
    provider_task_id: str | None = None
    provider_model: str | None = None
    # Set once a submit to the provider is under way; cleared only by a refusal that proves no task
    # was created. While set, nothing submits the task again: a repeat could pay twice.
    submit_claimed_at: str | None = None
    # How many submits were claimed: each one's callback URL has its own token
    # (veo_relay.callback_tokens), valid only while it is the task's latest.
    submit_attempt: int = 0
    # A random id of the request that created the task: a create whose answer was lost, and that
    # finds the id taken, knows by it whether the task is its own.
    creation_id: str | None = None
    callback_received_at: str | None = None
    # Where this task's callback URLs point (the API's public origin): an upgrade step started
    # after the submit (kie's 4K) hands its provider a URL too.
    callback_base_url: str | None = None
    # A resolution made by an upgrade after the generation (Capabilities.upgraded_resolutions):
    # when it was asked for (once: a 4K upgrade costs credits of its own), the provider's id of
    # the upgrade task if it has one, and the generation's own result, kept for audit.
    upgrade_started_at: str | None = None
    upgrade_task_id: str | None = None
    source_video_url: str | None = None
    # After a callback the provider's status did not confirm, further ones are ignored until then.
    callbacks_quiet_until: str | None = None
    # The end of the quiet time for which a copy is queued already (veo_relay.callbacks).
    deferred_copy_until: str | None = None
    completed_at: str | None = None
    video: StoredVideo | None = None
    error: TaskError | None = None
    # What the video costs, once the provider has (or may have) the task: the price table's
    # figure, or the provider's own where it reports one (`cost_source`). 0 for a refusal that
    # proves nothing was created.
    cost_usd: float | None = None
    cost_source: str | None = None
    # What the create reserved against its principal's monthly spending (veo_relay.spending),
    # in micro-dollars; settled once the task ends. None: nothing was reserved.
    reserved_micros: int | None = None
    # Where `video.completed` / `video.failed` are delivered. Not in the task object: the object
    # travels in events and manifests, and a client's endpoint is its own business.
    webhook_url: str | None = None
    # For a task created under an Idempotency-Key (its id derived from the key): the SHA-256 of
    # the request, which a repeat with the same key must match (veo_relay.idempotency).
    request_hash: str | None = None
    # When the table's TTL removes the record (failed tasks; completed ones under a retention):
    # DynamoDB does so within days, so a record past it is gone already to every reader.
    expires_at: datetime | None = None
    # DELETE /v1/videos/{id} (veo_relay.lifecycle): from its first write the task is gone to
    # every reader; `deleted_at` once its video, manifest and event are done. The record stays,
    # stripped, so that the id (and an Idempotency-Key bound to it) never names a new task.
    deletion_requested_at: str | None = None
    deleted_at: str | None = None

    def is_gone(self, now: datetime) -> bool:
        """Deleted, or expired: GET answers 404 and lists leave it out."""
        expired = self.expires_at is not None and self.expires_at <= now
        return expired or self.deletion_requested_at is not None

    def to_public(self, download_url: str | None = None) -> TaskObject:
        """The contract's task object."""
        video: TaskObjectVideo | None = None
        if self.video is not None and self.status is TaskStatus.COMPLETED:
            video = {
                "bucket": self.video.bucket,
                "key": self.video.key,
                "size_bytes": self.video.size_bytes,
                "sha256": self.video.sha256,
                "content_type": self.video.content_type,
                "download_url": download_url,
            }
        error: TaskObjectError | None = None
        if self.error is not None and self.status is TaskStatus.FAILED:
            error = {"code": self.error.code, "message": self.error.message}
        # The casts: a task holds what its create (or extend) body was validated as.
        return {
            "id": self.id,
            "status": self.status,
            "provider": self.provider,
            "provider_task_id": self.provider_task_id,
            "mode": cast(Mode, self.mode),
            "generation_type": cast(GenerationType, self.generation_type),
            "aspect_ratio": cast(AspectRatio, self.aspect_ratio),
            "prompt": self.prompt,
            "image_urls": list(self.image_urls),
            "seed": self.seed,
            "parent_id": self.parent_id,
            "root_id": self.root_id,
            "resolution": cast(Resolution, self.resolution),
            "progress": self.progress if self.status is TaskStatus.IN_PROGRESS else None,
            "cost": self.cost,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "completed_at": self.completed_at,
            "video": video,
            "error": error,
        }

    @property
    def cost(self) -> TaskObjectCost | None:
        """The task object's `cost`: known once the provider has (or may have) the task; 0 for a
        task that ended before any submit reached a provider (cancelled, refused, never sent)."""
        if self.cost_usd is not None:
            if self.cost_source == "provider":
                return {"usd": self.cost_usd, "source": "provider"}
            return {"usd": self.cost_usd, "source": "price_table"}
        if self.status is TaskStatus.FAILED and self.never_sent:
            return {"usd": 0.0, "source": "price_table"}
        return None

    @property
    def never_sent(self) -> bool:
        """No submit of this task was ever under way: no provider can have created it."""
        return self.submit_claimed_at is None and self.provider_task_id is None

    @property
    def kind(self) -> TaskKind:
        return TaskKind.EXTEND if self.parent_id else TaskKind.GENERATE

    @property
    def video_key(self) -> str:
        """Where the finished video lives: grouped by family, named by task."""
        return f"videos/{self.root_id}/{self.id}.mp4"


# The task object, declared once. Every producer (the API, webhooks, events, manifests) builds it
# as one of these, so mypy checks each one's keys and types; the OpenAPI document's schemas are
# generated from the same declarations (pydantic reads TypedDicts and Literals). A docstring is
# the schema's description, written for a client.

# The values a task's settings take: the create and extend bodies admit these (api_models).
if TYPE_CHECKING:
    Provider = str
else:
    # The registry's names: a type checker cannot see through it, pydantic documents it as if
    # it were written out.
    Provider = Literal[PROVIDER_NAMES]
Mode = Literal["fast", "quality", "lite"]
GenerationType = Literal["TEXT_2_VIDEO", "FIRST_AND_LAST_FRAMES_2_VIDEO", "REFERENCE_2_VIDEO"]
AspectRatio = Literal["16:9", "9:16"]
Resolution = Literal["720p", "1080p", "4k"]


class TaskObjectVideo(TypedDict):
    """The stored video in our bucket. `download_url` is presigned in API answers and webhooks,
    and null in events on the bus (events outlive a presigned URL)."""

    bucket: str
    key: str
    size_bytes: int
    sha256: str
    content_type: str
    download_url: str | None


class TaskObjectError(TypedDict):
    """Why the task failed: our code (e.g. `content_violation`, `timeout`, `provider_error`)
    and a message."""

    code: str
    message: str


class TaskObjectCost(TypedDict):
    """What the video costs in USD: `price_table` (veo-relay's configured prices) or `provider`
    (the provider's own figure, where its protocol reports one). Null until the provider has the
    task; 0 when it ended before any provider had it."""

    usd: float
    source: Literal["price_table", "provider"]


class TaskObject(TypedDict):
    """A video task. `video` is null until `completed` (the MP4 is in our bucket, not merely
    finished by the provider); `error` is null unless `failed`. `resolution` is the video's (an
    upgraded one is stored once it is made: the task stays `in_progress` until then); `progress`
    is 0-100 while `in_progress` where the provider reports it, else null."""

    id: str
    status: TaskStatus
    provider: Provider
    provider_task_id: str | None
    mode: Mode
    generation_type: GenerationType
    aspect_ratio: AspectRatio
    prompt: str
    image_urls: list[str]
    seed: int | None
    parent_id: str | None
    root_id: str
    resolution: Resolution
    progress: int | None
    cost: TaskObjectCost | None
    created_at: str
    updated_at: str
    completed_at: str | None
    video: TaskObjectVideo | None
    error: TaskObjectError | None


def manifest_key_for(video_key: str) -> str:
    """The manifest lies beside its video: `videos/{root_id}/{id}.json`."""
    return video_key.removesuffix(".mp4") + ".json"


def new_task_id() -> str:
    return f"vid_{secrets.token_hex(12)}"


# The form of every task id: new_task_id's, and idempotency.binding_for's (derived from the key).
# ASCII only, so that no other script's characters pass.
_TASK_ID_FORM = re.compile(r"vid_[0-9a-f]{24}", re.ASCII)


def is_task_id(value: str) -> bool:
    """Whether `value` has the form of the ids this service gives tasks: no other names a task."""
    return _TASK_ID_FORM.fullmatch(value) is not None


def utc_now() -> str:
    return format_timestamp(datetime.now(UTC))


def format_timestamp(moment: datetime) -> str:
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def parse_timestamp(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
