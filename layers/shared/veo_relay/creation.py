"""Creating a video task: record it, submit it in callback mode, start its fallback poller."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from aws_lambda_powertools import Logger

from veo_relay.errors import InvalidRequest, ProviderError
from veo_relay.providers.base import GenerationRequest
from veo_relay.rules import check_generation
from veo_relay.runtime import Runtime
from veo_relay.tasks import Task, TaskError, TaskStatus, new_task_id, utc_now

logger = Logger(child=True)


@dataclass(frozen=True)
class CreateVideo:
    owner: str
    provider: str | None
    request: GenerationRequest


def create_video(runtime: Runtime, command: CreateVideo, callback_base_url: str) -> Task:
    provider_name = _choose_provider(runtime, command.provider)
    check_generation(command.request)
    task_id = new_task_id()
    token = f"{task_id}.{secrets.token_urlsafe(24)}"
    now = utc_now()
    request = command.request
    task = Task(
        id=task_id,
        owner=command.owner,
        status=TaskStatus.QUEUED,
        provider=provider_name,
        prompt=request.prompt,
        mode=request.mode,
        generation_type=request.generation_type,
        aspect_ratio=request.aspect_ratio,
        image_urls=list(request.image_urls),
        seed=request.seed,
        watermark=request.watermark,
        root_id=task_id,
        created_at=now,
        updated_at=now,
        callback_token_hash=token_hash(token),
    )
    runtime.tasks.create(task)
    callback_url = f"{callback_base_url.rstrip('/')}/v1/callbacks/{provider_name}/{token}"
    try:
        provider_task_id = runtime.provider(provider_name).submit_generation(request, callback_url)
    except ProviderError as exc:
        runtime.tasks.mark_failed(
            task_id,
            TaskError(
                exc.code, str(exc), provider_code=exc.raw_code, provider_message=exc.raw_message
            ),
        )
        logger.warning("provider refused the task", extra={"task_id": task_id, "code": exc.code})
        raise
    submitted = runtime.tasks.mark_submitted(task_id, provider_task_id)
    runtime.workflow.start(task_id)
    # A callback may already have recorded the provider task id: read the stored truth then.
    return submitted or runtime.tasks.get(task_id)


def _choose_provider(runtime: Runtime, requested: str | None) -> str:
    name = requested if requested not in (None, "auto") else runtime.settings.default_provider
    if name is None or name not in runtime.settings.providers:
        raise InvalidRequest("provider", f"{name!r} is not available on this deployment")
    return name


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(token: str, expected_hash: str | None) -> bool:
    return expected_hash is not None and hmac.compare_digest(token_hash(token), expected_hash)
