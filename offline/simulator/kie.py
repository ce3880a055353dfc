"""The kie.ai protocol (reference/providers.md §2).

Envelope `{code, msg, data}`; every answer is HTTP 200 and errors live in the body `code`.
record-info reports `successFlag` 0 (generating) / 1 (success) / 2 or 3 (failed) with
`response.resultUrls` as a real array; callbacks go to `callBackUrl`, success ones carry
`data.info.resultUrls`, failure ones only `data.taskId` (+ `fallbackFlag`).

Upgrades (§2.6, §2.7) are tasks of their own, children of the task they upgrade, with its tags
and delay: get-1080p-video starts one on its first call and answers body code 400 ("1080P is
processing") until its `resultUrl` is ready; get-4k-video creates a 4K task (a task id record-info
reports) on its first call, answers later calls with body code 422 and its state, and calls back
when it finishes, in the callbacks page's shape or, with `[sim:4k-callback=snake]`, the OpenAPI
schema's. Lite has no 4K and no extend; a video upgraded to 1080p cannot be extended.
"""

import json
import re
import time
import uuid
from dataclasses import replace
from typing import Any

from . import validation as check
from .callbacks import CallbackPlan
from .protocol import ProviderProtocol
from .ratelimit import RateLimit
from .tasks import (
    Phase,
    Resolution,
    SimTask,
    TaskKind,
    UpgradeRequest,
    UpgradeResolution,
)
from .validation import InvalidInput
from .web import Route, SimRequest, SimResponse, route

_LITE = "veo3_lite"
_MODELS = ("veo3", "veo3_fast", _LITE)
_EXTEND_MODELS = ("fast", "quality")
_GENERATION_TYPES = ("TEXT_2_VIDEO", "FIRST_AND_LAST_FRAMES_2_VIDEO", "REFERENCE_2_VIDEO")
_ASPECT_RATIOS = ("16:9", "9:16", "Auto")
_RESOLUTIONS: tuple[Resolution, ...] = ("720p", "1080p", "4k")
_SEEDS_RANGE = (10_000, 99_999)
_CALLBACK_MAX_ATTEMPTS = 3  # "after 3 consecutive retry failures, the system will stop"
_UPGRADABLE_KINDS = ("generate", "extend")
_NEVER_SECONDS = 100 * 365 * 24 * 3600.0  # [sim:upgrade-never]: longer than anyone waits
_UPGRADE_FAIL_CODE = "500"  # [sim:4k-fail]
_PROCESSING_1080P = (
    "1080P is processing. It should be ready in 1-2 minutes. Please check back shortly."
)
_PROCESSING_4K = "4k is processing. It should be ready in 5-10 minutes. Please check back shortly."
_DONE_4K = "The video has been generated successfully"
_SUCCESS_4K = "4K Video generated successfully."
_UNAVAILABLE_4K = "The 4K version of this video is unavailable."
_VALIDATION_ERROR = 422
_SUCCESS_MESSAGES = {
    "generate": "Veo3.1 video generated successfully.",
    "extend": "Veo3.1 video extension successful.",
}
_FAILURE_MESSAGES = {
    400: "Your prompt was flagged by Website as violating content policies.",
    422: "Your request was rejected by Flow. Please try again later.",
    500: "Internal Error, Please try again later.",
    501: "Video generation failed.",
}
_INJECTED_ERROR_MESSAGES = {
    500: "Internal Error, Please try again later.",
    455: "Service unavailable - System is under maintenance",
}


def _envelope(code: int, msg: str, data: Any = None, task_id: str | None = None) -> SimResponse:
    return SimResponse(200, {"code": code, "msg": msg, "data": data}, task_id)


def _clock_text(unix_seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(unix_seconds))


def failure_code_and_message(fail_code: str) -> tuple[int, str]:
    """Maps a `[sim:fail=CODE]` value to kie's numeric code and message.

    A numeric error CODE (400, 500, 501, ...) is kie's own code; anything else is reported as a
    400 (content/input error) whose message starts with CODE.
    """
    if fail_code.isdigit() and int(fail_code) >= 400:
        code = int(fail_code)
        return code, _FAILURE_MESSAGES.get(code, _FAILURE_MESSAGES[501])
    return 400, f"{fail_code}: {_FAILURE_MESSAGES[400]}"


class KieProtocol(ProviderProtocol):
    name = "kie"
    default_rate_limit = RateLimit(max_requests=20, window_seconds=10)
    default_balance = 10_000.0  # credits

    def routes(self) -> list[Route]:
        return [
            route("POST", r"/api/v1/veo/generate", self._generate, creates_task=True),
            route("POST", r"/api/v1/veo/extend", self._extend, creates_task=True),
            route("GET", r"/api/v1/veo/record-info", self._record_info),
            route("GET", r"/api/v1/veo/get-1080p-video", self._get_1080p),
            route("POST", r"/api/v1/veo/get-4k-video", self._get_4k),
            route("GET", r"/api/v1/chat/credit", self._credit),
        ]

    def _credit(self, request: SimRequest, match: re.Match[str]) -> SimResponse:
        return _envelope(200, "success", self.balance())  # data: the credits, a number

    def unauthorized(self) -> SimResponse:
        return _envelope(401, "You do not have access permissions")

    def not_found(self) -> SimResponse:
        return SimResponse(404, {"code": 404, "msg": "Not Found", "data": None})

    def server_error(self) -> SimResponse:
        return _envelope(500, _INJECTED_ERROR_MESSAGES[500])

    def _generate(self, request: SimRequest, _match: re.Match[str]) -> SimResponse:
        body = request.json_object()
        if body is None:
            return _envelope(_VALIDATION_ERROR, "Request body must be a JSON object")
        try:
            model, aspect_ratio, resolution, callback_url = _check_generate(body)
        except InvalidInput as error:
            return _envelope(_VALIDATION_ERROR, error.message)
        return self._create(
            request,
            body,
            callback_url,
            model=model,
            kind="generate",
            parent_id=None,
            with_origin_video=aspect_ratio != "16:9",
            resolution=resolution,
        )

    def _extend(self, request: SimRequest, _match: re.Match[str]) -> SimResponse:
        body = request.json_object()
        if body is None:
            return _envelope(_VALIDATION_ERROR, "Request body must be a JSON object")
        try:
            model, callback_url = _check_extend(body)
        except InvalidInput as error:
            return _envelope(_VALIDATION_ERROR, error.message)
        parent = self.engine.store.get(body["taskId"])
        if parent is None or parent.kind not in _UPGRADABLE_KINDS:
            return _envelope(404, "Original video or task does not exist")
        if parent.model == _LITE:
            return _envelope(_VALIDATION_ERROR, "veo3_lite videos cannot be extended")
        if parent.phase() != Phase.SUCCEEDED:
            return _envelope(_VALIDATION_ERROR, "record status is not success")
        if _served_1080p(parent):
            return _envelope(_VALIDATION_ERROR, "a video upgraded to 1080p cannot be extended")
        return self._create(
            request,
            body,
            callback_url,
            model=model,
            kind="extend",
            parent_id=parent.task_id,
            with_origin_video=parent.origin_video is not None,
        )

    def _create(
        self,
        request: SimRequest,
        body: dict[str, Any],
        callback_url: str | None,
        *,
        model: str,
        kind: TaskKind,
        parent_id: str | None,
        with_origin_video: bool,
        resolution: Resolution = "720p",
    ) -> SimResponse:
        # Counted only when a task would be created: "excess → 429, not queued".
        if not self.limiter.try_acquire():
            return _envelope(429, "Rate limited: too many new generation requests, retry later")
        prefix = "veo_extend_task" if kind == "extend" else "veo_task"
        task = self.engine.create_task(
            task_id=f"{prefix}_{uuid.uuid4().hex}",
            kind=kind,
            model=model,
            prompt=body["prompt"],
            request=body,
            fingerprint=request.fingerprint,
            parent_task_id=parent_id,
            callback=(
                CallbackPlan(callback_url, self._callback_body, _CALLBACK_MAX_ATTEMPTS)
                if callback_url
                else None
            ),
            with_origin_video=with_origin_video,
            resolution=resolution,
        )
        return _envelope(200, "success", {"taskId": task.task_id}, task.task_id)

    def _record_info(self, request: SimRequest, _match: re.Match[str]) -> SimResponse:
        task_id = request.query.get("taskId")
        if not task_id:
            return _envelope(_VALIDATION_ERROR, "taskId is required")
        task = self.engine.store.get(task_id)
        if task is None:
            return _envelope(_VALIDATION_ERROR, "record is null")
        if injected := self.injected_status_error(task):
            code = 500 if injected == 500 else 455  # kie's "maintenance" stands in for a 503
            return _envelope(code, _INJECTED_ERROR_MESSAGES[code])
        return _envelope(200, "success", _record(task))

    def _get_1080p(self, request: SimRequest, _match: re.Match[str]) -> SimResponse:
        query = request.query
        original = self._upgradable(query.get("taskId"), query.get("index", "0"))
        if isinstance(original, SimResponse):
            return original
        upgrade = self._upgrade(original, "1080p")
        if upgrade is None:
            upgrade = self._start_upgrade(
                original,
                request,
                task_id=f"{original.task_id}-1080p",
                resolution="1080p",
                callback_url=None,
            )
        if upgrade.phase() == Phase.SUCCEEDED:
            response = _envelope(200, "success", {"resultUrl": upgrade.video.url})
        else:
            response = _envelope(400, _PROCESSING_1080P)
        self._note_upgrade_request(original, "1080p", response, upgrade)
        return response

    def _get_4k(self, request: SimRequest, _match: re.Match[str]) -> SimResponse:
        body = request.json_object()
        if body is None:
            return _envelope(_VALIDATION_ERROR, "Request body must be a JSON object")
        try:
            callback_url = check.optional_url(body, "callBackUrl", "callBackUrl")
        except InvalidInput as error:
            return _envelope(_VALIDATION_ERROR, error.message)
        original = self._upgradable(body.get("taskId"), body.get("index", 0))
        if isinstance(original, SimResponse):
            return original
        if original.model == _LITE:
            return _envelope(_VALIDATION_ERROR, "veo3_lite videos have no 4K version")
        upgrade = self._upgrade(original, "4k")
        if upgrade is None:  # the first request: the one that starts (and pays for) the 4K task
            upgrade = self._start_upgrade(
                original,
                request,
                task_id=f"veo_4k_task_{uuid.uuid4().hex}",
                resolution="4k",
                callback_url=callback_url,
            )
            response = _envelope(200, "success", _data_4k(upgrade))
        else:
            message = {Phase.SUCCEEDED: _DONE_4K, Phase.FAILED: _UNAVAILABLE_4K}
            text = message.get(upgrade.phase(), _PROCESSING_4K)
            response = _envelope(_VALIDATION_ERROR, text, _data_4k(upgrade))
        self._note_upgrade_request(original, "4k", response, upgrade)
        return response

    def _upgradable(self, task_id: object, index: object) -> SimTask | SimResponse:
        """The finished task an upgrade request names, or the refusal to answer."""
        if not isinstance(task_id, str) or not task_id:
            return _envelope(_VALIDATION_ERROR, "taskId is required")
        if index not in (0, "0"):
            return _envelope(_VALIDATION_ERROR, "index must be 0: a task has one video")
        task = self.engine.store.get(task_id)
        if task is None or task.kind not in _UPGRADABLE_KINDS:
            return _envelope(_VALIDATION_ERROR, "record is null")
        if task.phase() != Phase.SUCCEEDED:
            return _envelope(_VALIDATION_ERROR, "record status is not success")
        return task

    def _upgrade(self, original: SimTask, resolution: UpgradeResolution) -> SimTask | None:
        """The task upgrading `original` to `resolution`, once a request has started it."""
        for upgrade_request in original.upgrade_requests:
            if upgrade_request.resolution == resolution and upgrade_request.task_id:
                return self.engine.store.get(upgrade_request.task_id)
        return None

    def _start_upgrade(
        self,
        original: SimTask,
        request: SimRequest,
        *,
        task_id: str,
        resolution: UpgradeResolution,
        callback_url: str | None,
    ) -> SimTask:
        # The original's tags and delay; [sim:upgrade-never] and [sim:4k-fail] take effect here.
        tags = original.tags
        if tags.upgrade_never:
            tags = replace(tags, delay_seconds=_NEVER_SECONDS)
            callback_url = None
        if resolution == "4k" and tags.fail_4k:
            tags = replace(tags, fail_code=_UPGRADE_FAIL_CODE)
        return self.engine.create_task(
            task_id=task_id,
            kind="upgrade_4k" if resolution == "4k" else "upgrade_1080p",
            model=original.model,
            prompt=original.prompt,
            request=request.json_object() or dict(request.query),
            fingerprint=request.fingerprint,
            parent_task_id=original.task_id,
            callback=(
                CallbackPlan(callback_url, self._callback_body_4k, _CALLBACK_MAX_ATTEMPTS)
                if callback_url
                else None
            ),
            resolution=resolution,
            tags=tags,
        )

    def _note_upgrade_request(
        self,
        original: SimTask,
        resolution: UpgradeResolution,
        response: SimResponse,
        upgrade: SimTask,
    ) -> None:
        noted = UpgradeRequest(
            resolution=resolution,
            response_code=response.body["code"],
            task_id=upgrade.task_id,
            received_at=time.time(),
        )
        self.engine.store.note_upgrade_request(original, noted)

    def _callback_body_4k(self, task: SimTask) -> dict[str, Any]:
        if task.phase() == Phase.FAILED:
            return {"code": 500, "msg": _UNAVAILABLE_4K, "data": {"taskId": task.task_id}}
        # The two documented shapes disagree (§2.7); a tag picks the OpenAPI schema's.
        if task.tags.snake_case_4k_callback:
            data: dict[str, Any] = {
                "task_id": task.task_id,
                "result_urls": [task.video.url],
                "media_ids": _media_ids(task),
                "image_urls": [],
            }
        else:
            data = {
                "taskId": task.task_id,
                "info": {"resultUrls": [task.video.url], "imageUrls": []},
            }
        return {"code": 200, "msg": _SUCCESS_4K, "data": data}

    def _callback_body(self, task: SimTask) -> dict[str, Any]:
        if task.phase() == Phase.FAILED and task.fail_code:
            code, message = failure_code_and_message(task.fail_code)
            failure_data = {"taskId": task.task_id, "fallbackFlag": False}
            return {"code": code, "msg": message, "data": failure_data}
        return {
            "code": 200,
            "msg": _SUCCESS_MESSAGES[task.kind],
            "data": {
                "taskId": task.task_id,
                "info": _result_urls(task),
                "promptJson": json.dumps(task.request),
                "fallbackFlag": False,
            },
        }


def _served_1080p(task: SimTask) -> bool:
    """Whether a get-1080p-video request for `task` was answered with its result."""
    return any(
        request.resolution == "1080p" and request.response_code == 200
        for request in task.upgrade_requests
    )


def _media_ids(task: SimTask) -> list[str]:
    return [f"media_{task.task_id}"]


def _data_4k(task: SimTask) -> dict[str, Any]:
    """get-4k-video's `data`: the 4K task, with its URLs once it has succeeded."""
    done = task.phase() == Phase.SUCCEEDED
    return {
        "taskId": task.task_id,
        "resultUrls": [task.video.url] if done else None,
        "imageUrls": [] if done else None,
    }


def _result_urls(task: SimTask) -> dict[str, Any]:
    return {
        "resultUrls": [task.video.url],
        "originUrls": [task.origin_video.url] if task.origin_video else [],
        "resolution": task.video.resolution,
    }


def _record(task: SimTask) -> dict[str, Any]:
    phase = task.phase()
    finished = phase in (Phase.SUCCEEDED, Phase.FAILED)
    record: dict[str, Any] = {
        "taskId": task.task_id,
        "paramJson": json.dumps(task.request),
        "createTime": _clock_text(task.created_at),
        "completeTime": _clock_text(task.finishes_at) if finished else None,
        "successFlag": 0,
        "response": None,
        "errorCode": None,
        "errorMessage": "",
        "fallbackFlag": False,
    }
    if task.kind == "upgrade_4k":
        record["mediaIds"] = _media_ids(task)
    if phase == Phase.SUCCEEDED:
        record |= {"successFlag": 1, "response": {"taskId": task.task_id, **_result_urls(task)}}
    elif phase == Phase.FAILED and task.fail_code:
        code, message = failure_code_and_message(task.fail_code)
        # 3 = "generation failed" (kie's 501); other failures report 2.
        success_flag = 3 if code == 501 else 2
        record |= {"successFlag": success_flag, "errorCode": code, "errorMessage": message}
    return record


def _check_common(body: dict[str, Any]) -> str | None:
    """Checks shared by generate and extend; returns the callback URL."""
    check.prompt(body, "prompt", "prompt")
    check.optional_integer(body, "seeds", "seeds", low=_SEEDS_RANGE[0], high=_SEEDS_RANGE[1])
    check.optional_text(body, "watermark", "watermark")
    return check.optional_url(body, "callBackUrl", "callBackUrl")


def _check_generate(body: dict[str, Any]) -> tuple[str, str, Resolution, str | None]:
    """Returns (model, aspect ratio, resolution, callback URL)."""
    callback_url = _check_common(body)
    model = check.choice(body, "model", "model", _MODELS, "veo3_fast")
    image_urls = check.url_list(body, "imageUrls", "imageUrls")
    generation_type = check.choice(
        body,
        "generationType",
        "generationType",
        _GENERATION_TYPES,
        _inferred_generation_type(image_urls),
    )
    resolution = check.choice(body, "resolution", "resolution", _RESOLUTIONS, "720p")
    check.optional_boolean(body, "enableTranslation", "enableTranslation")
    # Current docs say aspect_ratio; older ones (and promptJson echoes) aspectRatio.
    aspect_ratio = body.get("aspect_ratio", body.get("aspectRatio", "16:9"))
    if aspect_ratio not in _ASPECT_RATIOS:
        raise InvalidInput("Ratio error")
    if generation_type == "FIRST_AND_LAST_FRAMES_2_VIDEO":
        check.count_between(image_urls, "imageUrls", 1, 2, generation_type)
    elif generation_type == "REFERENCE_2_VIDEO":
        check.count_between(image_urls, "imageUrls", 1, 3, generation_type)
        if model != "veo3_fast" or aspect_ratio != "16:9":
            raise InvalidInput("REFERENCE_2_VIDEO supports only veo3_fast and 16:9")
    if model == _LITE and resolution == "4k":
        raise InvalidInput("veo3_lite has no 4k resolution")
    return model, aspect_ratio, resolution, callback_url


def _check_extend(body: dict[str, Any]) -> tuple[str, str | None]:
    """Returns (model, callback URL)."""
    if not isinstance(body.get("taskId"), str) or not body["taskId"]:
        raise InvalidInput("taskId is required")
    callback_url = _check_common(body)
    model = check.choice(body, "model", "model", _EXTEND_MODELS, "fast")
    return model, callback_url


def _inferred_generation_type(image_urls: list[str]) -> str:
    if not image_urls:
        return "TEXT_2_VIDEO"
    return "REFERENCE_2_VIDEO" if len(image_urls) > 2 else "FIRST_AND_LAST_FRAMES_2_VIDEO"
