"""The APIMart protocol (reference/providers.md §3).

Success bodies are `{code: 200, data}`; errors use a real HTTP status and an OpenAI-style body
`{"error": {code, message, type}}`. Submit answers `data` as an *array* with status
"submitted"; /v1/tasks reports pending → processing → completed | failed with progress and
`result.videos[].url` as an array. No callbacks exist for veo3.1.
"""

import math
import os
import re
import time
from typing import Any

from . import validation as check
from .protocol import ProviderProtocol
from .ratelimit import RateLimit
from .tasks import Phase, Resolution, SimTask, TaskKind
from .validation import InvalidInput
from .web import Route, SimRequest, SimResponse, route

_MODELS = ("veo3.1-fast", "veo3.1-quality", "veo3.1-lite")
_ASPECT_RATIOS = ("16:9", "9:16")
_RESOLUTIONS: tuple[Resolution, ...] = ("720p", "1080p", "4k")
_GENERATION_TYPES = ("frame", "reference")
_VIDEO_SECONDS = 8
_URL_LIFETIME_SECONDS = 24 * 3600
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    503: "service_unavailable",
}
_INJECTED_ERROR_MESSAGES = {500: "Internal server error", 503: "Service temporarily unavailable"}


def _error(status: int, message: str) -> SimResponse:
    return SimResponse(
        status, {"error": {"code": status, "message": message, "type": _ERROR_TYPES[status]}}
    )


def _ulid() -> str:
    """A ULID (48-bit ms timestamp + 80 random bits, Crockford base32), as in `task_01K8...`."""
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


class ApimartProtocol(ProviderProtocol):
    name = "apimart"
    # Undocumented upstream; a moderate default that tests and benchmarks can override.
    default_rate_limit = RateLimit(max_requests=60, window_seconds=10)

    def routes(self) -> list[Route]:
        return [
            route("POST", r"/v1/videos/generations", self._generate, creates_task=True),
            route("POST", r"/v1/videos/(?P<task_id>[^/]+)/remix", self._remix, creates_task=True),
            route("GET", r"/v1/tasks/(?P<task_id>[^/]+)", self._task),
        ]

    def unauthorized(self) -> SimResponse:
        return _error(401, "Invalid API key")

    def not_found(self) -> SimResponse:
        return _error(404, "Not found")

    def server_error(self) -> SimResponse:
        return _error(500, _INJECTED_ERROR_MESSAGES[500])

    def _generate(self, request: SimRequest, _match: re.Match[str]) -> SimResponse:
        body = request.json_object()
        if body is None:
            return _error(400, "Request body must be a JSON object")
        try:
            model, resolution = _check_generate(body)
        except InvalidInput as error:
            return _error(400, error.message)
        return self._create(
            request, body, model=model, resolution=resolution, kind="generate", parent_id=None
        )

    def _remix(self, request: SimRequest, match: re.Match[str]) -> SimResponse:
        source = self.engine.store.get(match["task_id"])
        if source is None:
            return _error(404, "Task not found")
        body = request.json_object()
        if body is None:
            return _error(400, "Request body must be a JSON object")
        try:
            model, resolution = _check_remix(body)
        except InvalidInput as error:
            return _error(400, error.message)
        if model != source.model:
            return _error(400, f"model must match the original task's model ({source.model})")
        if source.phase() != Phase.SUCCEEDED:
            return _error(400, "The original video task status must be success")
        return self._create(
            request,
            body,
            model=model,
            resolution=resolution,
            kind="extend",
            parent_id=source.task_id,
        )

    def _create(
        self,
        request: SimRequest,
        body: dict[str, Any],
        *,
        model: str,
        resolution: Resolution,
        kind: TaskKind,
        parent_id: str | None,
    ) -> SimResponse:
        if not self.limiter.try_acquire():
            return _error(429, "Rate limit exceeded, please retry later")
        task = self.engine.create_task(
            task_id=f"task_{_ulid()}",
            kind=kind,
            model=model,
            prompt=body["prompt"],
            request=body,
            fingerprint=request.fingerprint,
            parent_task_id=parent_id,
            resolution=resolution,
        )
        submitted = [{"status": "submitted", "task_id": task.task_id}]
        return SimResponse(200, {"code": 200, "data": submitted}, task.task_id)

    def _task(self, request: SimRequest, match: re.Match[str]) -> SimResponse:
        task = self.engine.store.get(match["task_id"])
        if task is None:
            return _error(404, "Task not found")
        if injected := self.injected_status_error(task):
            return _error(injected, _INJECTED_ERROR_MESSAGES[injected])
        return SimResponse(200, {"code": 200, "data": _task_data(task)})


SIMULATED_COST_USD = 0.123


def _task_data(task: SimTask) -> dict[str, Any]:
    phase = task.phase()
    data: dict[str, Any] = {
        "id": task.task_id,
        "status": {Phase.SUCCEEDED: "completed"}.get(phase, phase.value),
        "progress": task.progress_percent(),
        "created": int(task.created_at),
        "estimated_time": math.ceil(task.delay_seconds),
    }
    if phase == Phase.SUCCEEDED:
        completed = int(task.finishes_at)
        video = {"url": [task.video.url], "expires_at": completed + _URL_LIFETIME_SECONDS}
        data |= {
            "result": {"videos": [video]},
            "completed": completed,
            "actual_time": math.ceil(task.delay_seconds),
            # What the task cost, as a third-party fixture shows apimart reporting it: a figure
            # of the simulator's own, unlike any price table's, so that its source can be told.
            "cost": SIMULATED_COST_USD,
        }
    elif phase == Phase.FAILED:
        message = f"Video generation failed: {task.fail_code}"
        data["error"] = {"code": task.fail_code, "message": message}
    return data


def _check_generate(body: dict[str, Any]) -> tuple[str, Resolution]:
    """Returns the model and the video's resolution."""
    model = check.choice(body, "model", "model", _MODELS, "veo3.1-fast")
    check.prompt(body, "prompt", "prompt")
    duration = body.get("duration", _VIDEO_SECONDS)
    if duration != _VIDEO_SECONDS or not isinstance(duration, int) or isinstance(duration, bool):
        raise InvalidInput(f"duration must be the number {_VIDEO_SECONDS}")
    check.choice(body, "aspect_ratio", "aspect_ratio", _ASPECT_RATIOS, "16:9")
    resolution = check.choice(body, "resolution", "resolution", _RESOLUTIONS, "720p")
    if check.optional_boolean(body, "enable_gif", "enable_gif") and resolution != "720p":
        raise InvalidInput("enable_gif cannot be combined with 1080p or 4k")
    check.optional_boolean(body, "official_fallback", "official_fallback")
    image_urls = check.url_list(body, "image_urls", "image_urls")
    inferred = "reference" if len(image_urls) > 2 else "frame"
    generation_type = check.choice(
        body, "generation_type", "generation_type", _GENERATION_TYPES, inferred
    )
    if generation_type == "reference":
        check.count_between(image_urls, "image_urls", 1, 3, "reference")
        if model == "veo3.1-quality":
            raise InvalidInput("veo3.1-quality does not support generation_type reference")
    elif "generation_type" in body or image_urls:
        check.count_between(image_urls, "image_urls", 1, 2, "frame")
    return model, resolution


def _check_remix(body: dict[str, Any]) -> tuple[str, Resolution]:
    """Returns the model and the video's resolution."""
    if "model" not in body:
        raise InvalidInput("Missing required field: model")
    model = check.choice(body, "model", "model", _MODELS, "")
    check.prompt(body, "prompt", "prompt")
    check.optional_boolean(body, "raw", "raw")
    check.choice(body, "aspect_ratio", "aspect_ratio", _ASPECT_RATIOS, "16:9")
    resolution = check.choice(body, "resolution", "resolution", _RESOLUTIONS, "720p")
    return model, resolution
