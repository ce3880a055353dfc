"""APIMart: `{code, data}` bodies with real HTTP statuses and OpenAI-style error bodies, submit
answering `data` as an array, `/v1/tasks/{id}` as the status route for every task, and no
callbacks for veo3.1 (reference/providers.md §3).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import requests

from veo_relay.deadlines import Deadline
from veo_relay.errors import InvalidCallback, InvalidRequest, ProviderError
from veo_relay.providers.base import (
    CallbackNotice,
    ExtensionRequest,
    GenerationRequest,
    ProviderState,
    ProviderStatus,
    Submission,
    TaskKind,
)
from veo_relay.providers.http import ProviderHttp, json_body
from veo_relay.providers.specs.apimart import SPEC
from veo_relay.providers.taxonomy import code_for_failure, describe, error_for_status
from veo_relay.tasks import TaskError

_MODELS = {"fast": "veo3.1-fast", "quality": "veo3.1-quality"}
_GENERATION_TYPES = {"FIRST_AND_LAST_FRAMES_2_VIDEO": "frame", "REFERENCE_2_VIDEO": "reference"}
VIDEO_SECONDS = 8  # fixed for veo3.1, and it must be a number
# The poll value is "completed"; the remix page words it "success", so that is accepted too.
_SUCCEEDED = frozenset({"completed", "success", "succeeded"})
_FAILED = frozenset({"failed", "cancelled", "canceled"})


class ApimartProvider:
    name = SPEC.name
    supports_callbacks = SPEC.supports_callbacks
    capabilities = SPEC.capabilities
    upgrades = None  # every resolution it offers is made by the generation itself
    balance = None  # no balance route is documented

    def __init__(self, http: ProviderHttp) -> None:
        self._http = http

    def submit_generation(
        self,
        request: GenerationRequest,
        callback_url: str | None,
        deadline: Deadline | None = None,
    ) -> Submission:
        # `callback_url` is ignored: apimart has nowhere to send it. A watermark has no field
        # either, so it cannot be passed on.
        model = _model(request.mode)
        body: dict[str, Any] = {
            "model": model,
            "prompt": request.prompt,
            "duration": VIDEO_SECONDS,
            "aspect_ratio": request.aspect_ratio,
            "resolution": request.resolution,
        }
        if request.image_urls:
            body["image_urls"] = list(request.image_urls)
        # Sent explicitly: left out, apimart infers it from the image count (2 → frame, 3 → ref).
        if request.generation_type in _GENERATION_TYPES:
            body["generation_type"] = _GENERATION_TYPES[request.generation_type]
        response = self._http.post("/v1/videos/generations", body, deadline)
        return Submission(_submitted_task_id(_envelope(response)), model)

    def submit_extension(
        self,
        request: ExtensionRequest,
        callback_url: str | None,
        deadline: Deadline | None = None,
    ) -> Submission:
        # The remix model must be the original task's, whatever mode the extension asks for.
        model = request.parent_model or _model(request.mode)
        body: dict[str, Any] = {
            "model": model,
            "prompt": request.prompt,
            # Newer docs accept it; sent so that a 9:16 parent is not continued at the default.
            "aspect_ratio": request.aspect_ratio,
            # The parent's, which the child keeps (the remix's default would be 720p).
            "resolution": request.resolution,
            # The whole video (original + extension), not only the new segment.
            "raw": False,
        }
        path = f"/v1/videos/{_segment(request.parent_provider_task_id)}/remix"
        response = self._http.post(path, body, deadline)
        return Submission(_submitted_task_id(_envelope(response)), model)

    def read_status(self, provider_task_id: str, kind: TaskKind) -> ProviderStatus:
        # One route for generations and remixes alike.
        response = self._http.get(f"/v1/tasks/{_segment(provider_task_id)}", {"language": "en"})
        data = _envelope(response).get("data")
        if not isinstance(data, dict):
            raise ProviderError("provider_error", "apimart answered the task read without data")
        return _status_from_data(data)

    def parse_callback(self, body: bytes, headers: Mapping[str, str]) -> CallbackNotice:
        raise InvalidCallback("apimart sends no callbacks for veo3.1")


def _model(mode: str) -> str:
    try:
        return _MODELS[mode]
    except KeyError:
        raise InvalidRequest("mode", f"apimart has no {mode!r} mode") from None


def _segment(task_id: str) -> str:
    """A task id as one path segment: nothing in it can reach another route."""
    return quote(task_id, safe="")


def _envelope(response: requests.Response) -> dict[str, Any]:
    """The body of a successful answer; otherwise the refusal, from the HTTP status and the
    OpenAI-style `{"error": {code, message, type}}` body."""
    if response.status_code != 200:
        try:
            body: dict[str, Any] | None = json_body(response)
        except ProviderError:
            body = None  # e.g. a gateway's HTML page
        if body is None:
            raise error_for_status(response.status_code, response.text.strip()[:200] or None)
        message, raw_code = _error_fields(body)
        raise error_for_status(response.status_code, message, raw_code)
    body = json_body(response)
    code = body.get("code")
    error = body.get("error")
    if isinstance(code, int) and not isinstance(code, bool) and code != 200:
        message, raw_code = _error_fields(body)
        raise error_for_status(code, message, raw_code)
    if error:
        # An error body under HTTP 200 is not documented: the outcome is unknown.
        message, raw_code = _error_fields(body)
        raise error_for_status(500, message, raw_code)
    return body


def _error_fields(body: Mapping[str, Any]) -> tuple[str | None, str | None]:
    error = body.get("error")
    if isinstance(error, dict):
        message = error.get("message")
        raw_code = error.get("code", error.get("type"))
    else:
        message = body.get("message") or body.get("msg") or error
        raw_code = body.get("code")
    return (
        message if isinstance(message, str) and message else None,
        None if raw_code is None else str(raw_code),
    )


def _submitted_task_id(body: Mapping[str, Any]) -> str:
    data = body.get("data")
    # Current docs: data = [{"status": "submitted", "task_id": ...}]. An older version answered
    # one object, {"id": ..., "status": "pending", ...}.
    if isinstance(data, list):
        data = data[0] if data else None
    task_id = None
    if isinstance(data, dict):
        task_id = data.get("task_id") or data.get("id")
    if not isinstance(task_id, str) or not task_id:
        raise ProviderError("provider_error", "apimart accepted the task but sent no task_id")
    return task_id


def _status_from_data(data: Mapping[str, Any]) -> ProviderStatus:
    status = str(data.get("status") or "").lower()
    if status in _SUCCEEDED:
        return ProviderStatus(
            ProviderState.SUCCEEDED,
            video_urls=_video_urls(data.get("result")),
            cost_usd=_cost(data.get("cost")),
        )
    if status in _FAILED:
        error = data.get("error")
        details: Mapping[str, Any] = error if isinstance(error, dict) else {}
        raw_code = str(details["code"]) if details.get("code") is not None else status
        message = details.get("message") if isinstance(details.get("message"), str) else None
        code = code_for_failure(raw_code, message)
        task_error = TaskError(
            code=code,
            # `status` is one of _FAILED, our words; apimart's message is for audit only.
            message=f"{describe(code)} (apimart reports the task {status})",
            provider_code=raw_code,
            provider_message=message,
        )
        return ProviderStatus(ProviderState.FAILED, error=task_error)
    # submitted, pending, processing (and any status added later): not finished yet.
    return ProviderStatus(ProviderState.RUNNING, progress=_progress(data.get("progress")))


def _progress(value: Any) -> int | None:
    """`progress` 0-100; anything else (absent, not a number) is unknown."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return max(0, min(100, int(value)))


def _cost(value: Any) -> float | None:
    """`cost`, USD (seen in a third-party fixture, not in apimart's docs): a positive number, or
    unknown."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        return None
    return round(float(value), 6)


def _video_urls(result: Any) -> tuple[str, ...]:
    videos = result.get("videos") if isinstance(result, dict) else None
    urls: list[str] = []
    for video in videos if isinstance(videos, list) else ():
        url = video.get("url") if isinstance(video, dict) else None
        # Documented as an array of strings; older answers (and one client) give one string.
        for candidate in url if isinstance(url, list) else [url]:
            if isinstance(candidate, str) and candidate:
                urls.append(candidate)
    if not urls:
        raise ProviderError("provider_error", "apimart reported completion without a video URL")
    return tuple(urls)
