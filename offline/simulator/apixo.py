"""The apixo protocol (reference/providers.md §1).

Envelope `{code, message, data}` with real HTTP statuses; `resultJson` is a JSON *string*;
states pending → processing → success | failed (a failed task still has envelope code 200);
the callback body is the status body, sent when `request_type` is `callback`.
"""

import json
import re
import uuid
from typing import Any

from . import validation as check
from .callbacks import CallbackPlan
from .protocol import ProviderProtocol
from .ratelimit import RateLimit
from .tasks import Phase, SimTask
from .validation import InvalidInput
from .web import Route, SimRequest, SimResponse, route

GENERATE_MODEL = "veo-3-1"
EXTEND_MODEL = "veo-3-1-extend"
# Generic `/generateTask/{model}` + `/statusTask/{model}`, with the same model id for both.
_CREATE_PATH = r"/api/v1/generateTask/(?P<model>[\w.-]+)"
_STATUS_PATH = r"/api/v1/statusTask/(?P<model>[\w.-]+)"
_GENERATION_TYPES = ("TEXT_2_VIDEO", "FIRST_AND_LAST_FRAMES_2_VIDEO", "REFERENCE_2_VIDEO")
_CALLBACK_MAX_ATTEMPTS = 4  # one try plus "up to 3" retries
_TASKID_ERROR = "TASKID_ERROR: TaskId not found, expired or not a veo-3-1 task."
_INJECTED_ERROR_MESSAGES = {500: "Internal server error", 503: "Service temporarily unavailable"}
_FAIL_MESSAGES = {
    "CONTENT_VIOLATION": "Content does not meet safety guidelines",
    "INVALID_IMAGE_URL": "Cannot access provided image URL",
    "TASKID_ERROR": "TaskId not found, expired, or wrong model type",
}


def _envelope(
    status: int, message: str, data: Any = None, task_id: str | None = None
) -> SimResponse:
    return SimResponse(status, {"code": status, "message": message, "data": data}, task_id)


def _ms(unix_seconds: float) -> int:
    return int(unix_seconds * 1000)


class ApixoProtocol(ProviderProtocol):
    name = "apixo"
    default_rate_limit = RateLimit(max_requests=10_000, window_seconds=60)
    default_max_concurrent_tasks = 1000
    default_balance = 100.0  # US dollars

    def routes(self) -> list[Route]:
        return [
            route("POST", _CREATE_PATH, self._create, creates_task=True),
            route("GET", _STATUS_PATH, self._status),
            route("GET", r"/api/v1/apikeys/current-balance", self._current_balance),
        ]

    def unauthorized(self) -> SimResponse:
        return _envelope(401, "Invalid or missing API Key")

    def not_found(self) -> SimResponse:
        return _envelope(404, "Not found")

    def server_error(self) -> SimResponse:
        return _envelope(500, _INJECTED_ERROR_MESSAGES[500])

    def prompt_of(self, body: dict[str, Any]) -> str | None:
        task_input = body.get("input")
        return super().prompt_of(task_input) if isinstance(task_input, dict) else None

    def admit_request(self) -> SimResponse | None:
        if self.limiter.try_acquire():
            return None
        return _envelope(429, "Rate limit exceeded")

    def _create(self, request: SimRequest, match: re.Match[str]) -> SimResponse:
        model = match["model"]
        if model not in (GENERATE_MODEL, EXTEND_MODEL):
            return _envelope(404, f"Model not found: {model}")
        body = request.json_object()
        if body is None:
            return _invalid("Request body must be a JSON object")
        try:
            callback_url = _callback_url(body)
            check.choice(body, "provider", "provider", ("auto", "value", "official"), "auto")
            task_input = body.get("input")
            if not isinstance(task_input, dict):
                raise InvalidInput("Missing required field: input")
            if model == GENERATE_MODEL:
                _check_generate_input(task_input)
            else:
                _check_extend_input(task_input)
        except InvalidInput as error:
            return _invalid(error.message)
        parent_id = task_input["taskId"] if model == EXTEND_MODEL else None
        if parent_id is not None and not self._extendable(parent_id):
            return _envelope(400, _TASKID_ERROR)
        if self.at_concurrency_limit():
            return _envelope(429, "Concurrent task limit exceeded")
        task = self.engine.create_task(
            task_id=f"{'extend_' if parent_id else ''}task_{uuid.uuid4().hex}",
            kind="extend" if parent_id else "generate",
            model=model,
            prompt=task_input["prompt"],
            request=body,
            fingerprint=request.fingerprint,
            parent_task_id=parent_id,
            callback=(
                CallbackPlan(callback_url, self._status_body, _CALLBACK_MAX_ATTEMPTS)
                if callback_url
                else None
            ),
        )
        return _envelope(200, "success", {"taskId": task.task_id}, task.task_id)

    def _current_balance(self, request: SimRequest, match: re.Match[str]) -> SimResponse:
        # The route is known from a third-party client that passes the body on unread; this
        # shape is our assumption (reference/providers.md §1.1).
        return _envelope(200, "success", {"balance": self.balance()})

    def _extendable(self, parent_id: str) -> bool:
        # Only finished, successful veo-3-1 tasks can be continued (an extend task cannot).
        parent = self.engine.store.get(parent_id)
        return (
            parent is not None
            and parent.model == GENERATE_MODEL
            and parent.phase() == Phase.SUCCEEDED
        )

    def _status(self, request: SimRequest, match: re.Match[str]) -> SimResponse:
        task_id = request.query.get("taskId")
        if not task_id:
            return _invalid("Missing required parameter: taskId")
        task = self.engine.store.get(task_id)
        # Status is read on the model path the task was created on.
        if task is None or task.model != match["model"]:
            return _envelope(404, "Task not found")
        if injected := self.injected_status_error(task):
            return _envelope(injected, _INJECTED_ERROR_MESSAGES[injected])
        return _envelope(200, "success", self._status_body(task)["data"])

    def _status_body(self, task: SimTask) -> dict[str, Any]:
        phase = task.phase()
        state = {Phase.SUCCEEDED: "success"}.get(phase, phase.value)
        data: dict[str, Any] = {
            "taskId": task.task_id,
            "state": state,
            "createTime": _ms(task.created_at),
        }
        if phase == Phase.SUCCEEDED:
            data |= {
                "resultJson": json.dumps({"resultUrls": [task.video.url]}),
                "costTime": _ms(task.delay_seconds),
                "completeTime": _ms(task.finishes_at),
            }
        elif phase == Phase.FAILED:
            code = task.fail_code or "GENERATION_FAILED"
            data |= {
                "failCode": code,
                "failMsg": _FAIL_MESSAGES.get(code, f"Generation failed: {code}"),
                "completeTime": _ms(task.finishes_at),
            }
        return {"code": 200, "message": "success", "data": data}


def _invalid(detail: str) -> SimResponse:
    return _envelope(400, "Invalid request", {"error": detail})


def _callback_url(body: dict[str, Any]) -> str | None:
    request_type = check.choice(
        body, "request_type", "request_type", ("async", "callback"), "async"
    )
    if request_type != "callback":
        return None  # a callback_url without request_type=callback is ignored
    callback_url = check.optional_url(body, "callback_url", "callback_url")
    if not callback_url:
        raise InvalidInput("Missing required field: callback_url (request_type=callback)")
    return callback_url


def _check_generate_input(task_input: dict[str, Any]) -> None:
    mode = check.choice(task_input, "mode", "input.mode", ("quality", "fast"), "quality")
    check.prompt(task_input, "prompt", "input.prompt")
    generation_type = check.choice(
        task_input, "generationType", "input.generationType", _GENERATION_TYPES, "TEXT_2_VIDEO"
    )
    aspect_ratio = check.choice(
        task_input, "aspect_ratio", "input.aspect_ratio", ("16:9", "9:16", "auto"), "16:9"
    )
    image_urls = check.url_list(task_input, "image_urls", "input.image_urls")
    check.optional_text(task_input, "watermark", "input.watermark")
    check.optional_integer(task_input, "seed", "input.seed")
    if generation_type == "FIRST_AND_LAST_FRAMES_2_VIDEO":
        check.count_between(image_urls, "input.image_urls", 1, 2, generation_type)
    elif generation_type == "REFERENCE_2_VIDEO":
        check.count_between(image_urls, "input.image_urls", 1, 3, generation_type)
        if mode != "fast" or aspect_ratio != "16:9":
            raise InvalidInput("REFERENCE_2_VIDEO requires input.mode=fast and aspect_ratio=16:9")


def _check_extend_input(task_input: dict[str, Any]) -> None:
    check.choice(task_input, "mode", "input.mode", ("fast", "quality"), "fast")
    check.prompt(task_input, "prompt", "input.prompt")
    check.optional_text(task_input, "watermark", "input.watermark")
    check.optional_integer(task_input, "seed", "input.seed")
    parent_id = task_input.get("taskId")
    if not isinstance(parent_id, str) or not parent_id:
        raise InvalidInput("Missing required field: input.taskId")
