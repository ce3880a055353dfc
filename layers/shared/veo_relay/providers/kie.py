"""kie.ai: `msg` envelope whose body `code` carries the outcome even in an HTTP 200, record-info
as the one status route for generate and extend tasks, and optionally signed callbacks
(reference/providers.md §2).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests

from veo_relay.deadlines import Deadline
from veo_relay.errors import InvalidCallback, InvalidRequest, ProviderError
from veo_relay.json_input import parse_json
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
from veo_relay.providers.specs.kie import SPEC
from veo_relay.providers.taxonomy import code_for_failure, describe, error_for_status
from veo_relay.tasks import TaskError

_GENERATE_MODELS = {"fast": "veo3_fast", "quality": "veo3", "lite": "veo3_lite"}
# The extend route names its models differently from generate (newer spec; default "fast").
_EXTEND_MODELS = {"fast": "fast", "quality": "quality"}
SIGNATURE_TOLERANCE_SECONDS = 300
_TIMESTAMP_HEADER = "X-Webhook-Timestamp"
_TIMESTAMP_DIGITS = 13  # as many as milliseconds have; seconds are then outside the window anyway
_SIGNATURE_HEADER = "X-Webhook-Signature"


class KieProvider:
    name = SPEC.name
    supports_callbacks = SPEC.supports_callbacks
    capabilities = SPEC.capabilities

    def __init__(
        self,
        http: ProviderHttp,
        webhook_hmac_key: str | Callable[[], str | None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._http = http
        self._webhook_hmac_key = webhook_hmac_key
        self._clock = clock

    def submit_generation(
        self,
        request: GenerationRequest,
        callback_url: str | None,
        deadline: Deadline | None = None,
    ) -> Submission:
        model = _model(_GENERATE_MODELS, request.mode)
        # enableTranslation is left to kie's default; the deprecated enableFallback is not sent.
        body: dict[str, Any] = {
            "prompt": request.prompt,
            "model": model,
            "generationType": request.generation_type,
            "aspect_ratio": request.aspect_ratio,
        }
        if request.image_urls:
            body["imageUrls"] = list(request.image_urls)
        _add_optional(body, request.seed, request.watermark, callback_url)
        return Submission(self._submit("/api/v1/veo/generate", body, deadline), model)

    def submit_extension(
        self,
        request: ExtensionRequest,
        callback_url: str | None,
        deadline: Deadline | None = None,
    ) -> Submission:
        model = _model(_EXTEND_MODELS, request.mode)
        body: dict[str, Any] = {
            "taskId": request.parent_provider_task_id,
            "prompt": request.prompt,
            "model": model,
        }
        _add_optional(body, request.seed, request.watermark, callback_url)
        return Submission(self._submit("/api/v1/veo/extend", body, deadline), model)

    def read_status(self, provider_task_id: str, kind: TaskKind) -> ProviderStatus:
        # One route for every task kind. An unknown task is a body 422 "record is null", which
        # the taxonomy maps to task_not_found.
        response = self._http.get("/api/v1/veo/record-info", {"taskId": provider_task_id})
        data = _envelope(response).get("data")
        if not isinstance(data, dict):
            raise ProviderError("provider_error", "kie answered record-info without data")
        return _status_from_record(data, kind)

    def parse_callback(self, body: bytes, headers: Mapping[str, str]) -> CallbackNotice:
        try:
            payload = parse_json(body or b"{}")
        except ValueError:
            raise InvalidCallback("callback body is not JSON") from None
        data = payload.get("data") if isinstance(payload, dict) else None
        task_id = None
        if isinstance(data, dict):
            # `taskId` for generate and extend; the 4K schema and the signing sample use task_id.
            task_id = data.get("taskId") or data.get("task_id")
        task_id = task_id if isinstance(task_id, str) and task_id else None
        key = self._webhook_hmac_key
        key = key() if callable(key) else key
        if key:
            self._verify_signature(key, task_id, headers)
        # The result URLs in data.info are not read: record-info is the proof of a result.
        return CallbackNotice(provider_task_id=task_id)

    def _verify_signature(self, key: str, task_id: str | None, headers: Mapping[str, str]) -> None:
        """X-Webhook-Signature = base64(HMAC-SHA256(key, f"{taskId}.{X-Webhook-Timestamp}"))."""
        timestamp = (_header(headers, _TIMESTAMP_HEADER) or "").strip()
        signature = (_header(headers, _SIGNATURE_HEADER) or "").strip()
        if not timestamp or not signature:
            raise InvalidCallback("kie callback is not signed")
        if task_id is None:
            raise InvalidCallback("signed kie callback names no task")
        # Unix seconds have 10 digits until 2286; a longer string is refused before int(), which
        # raises ValueError past 4,300 digits.
        if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > _TIMESTAMP_DIGITS:
            raise InvalidCallback("kie callback timestamp is not Unix seconds")
        if abs(self._clock() - int(timestamp)) > SIGNATURE_TOLERANCE_SECONDS:
            raise InvalidCallback("kie callback timestamp is outside the allowed window")
        digest = hmac.new(key.encode(), f"{task_id}.{timestamp}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(base64.b64encode(digest), signature.encode()):
            raise InvalidCallback("kie callback signature does not match")

    def _submit(self, path: str, body: dict[str, Any], deadline: Deadline | None) -> str:
        data = _envelope(self._http.post(path, body, deadline)).get("data")
        task_id = data.get("taskId") if isinstance(data, dict) else None
        if not isinstance(task_id, str) or not task_id:
            raise ProviderError("provider_error", "kie accepted the task but sent no taskId")
        return task_id


def _model(models: Mapping[str, str], mode: str) -> str:
    try:
        return models[mode]
    except KeyError:
        raise InvalidRequest("mode", f"kie has no {mode!r} mode") from None


def _add_optional(
    body: dict[str, Any], seed: int | None, watermark: str | None, callback_url: str | None
) -> None:
    if seed is not None:
        body["seeds"] = seed  # kie's name is plural; the value is one integer
    if watermark:
        body["watermark"] = watermark
    if callback_url:
        body["callBackUrl"] = callback_url


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), None)


def _envelope(response: requests.Response) -> dict[str, Any]:
    """The body when both the HTTP status and the body `code` are 200; otherwise the refusal.

    kie reports errors as HTTP 200 with the code in the body; a real non-200 status still
    happens (a 404 route, a gateway error, Cloudflare's bare-text 403 "error code: 1010").
    """
    if response.status_code != 200:
        try:
            body: dict[str, Any] | None = json_body(response)
        except ProviderError:
            body = None
        if body is not None:
            raise error_for_status(response.status_code, _text(body.get("msg")), _code(body))
        text = response.text.strip()[:200]
        if response.status_code == 403 and text.lower().startswith("error code"):
            text = f"Cloudflare refused the request ({text})"
        raise error_for_status(response.status_code, text or None)
    body = json_body(response)
    code = _int(body.get("code"))
    if code == 200:
        return body
    if code is None:
        raise ProviderError("provider_error", "kie answered without an envelope code")
    raise error_for_status(code, _text(body.get("msg")))


def _status_from_record(data: Mapping[str, Any], kind: TaskKind) -> ProviderStatus:
    flag = _int(data.get("successFlag"))
    if flag == 1:
        return ProviderStatus(ProviderState.SUCCEEDED, video_urls=_result_urls(data, kind))
    if flag in (2, 3):
        # errorCode is documented as int or null; live answers also send the string "null".
        raw_code = _error_code(data.get("errorCode"))
        message = _text(data.get("errorMessage"))
        code = code_for_failure(raw_code, message)
        error = TaskError(
            code=code,
            message=describe(code),
            provider_code=raw_code,
            provider_message=message,
        )
        return ProviderStatus(ProviderState.FAILED, error=error)
    # 0: generating. kie has no separate pending state.
    return ProviderStatus(ProviderState.RUNNING)


def _result_urls(data: Mapping[str, Any], kind: TaskKind) -> tuple[str, ...]:
    response = data.get("response")
    response = response if isinstance(response, dict) else {}
    if kind is TaskKind.EXTEND:
        # Undocumented, but third-party clients read it for extend tasks: the stitched full video
        # (original + extension). The full video is what an extension's task must hold, as with
        # apimart's remix (whole video by default); resultUrls stays the fallback.
        full = _url_list(response.get("fullResultUrls"))
        if full:
            return full
    # originUrls (the pre-crop render when not 16:9) is never the result.
    urls = _url_list(response.get("resultUrls"))
    if not urls:
        # The quickstart's stale pattern put them at data.resultUrls (as a JSON string).
        urls = _url_list(data.get("resultUrls"))
    if not urls:
        raise ProviderError("provider_error", "kie reported success without response.resultUrls")
    return urls


def _url_list(value: Any) -> tuple[str, ...]:
    """An array of URLs, or the same array as a JSON string (the callback schema's type), or a
    bare URL."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = parse_json(text)
            except ValueError:
                return ()
        else:
            value = [text] if text.startswith(("https://", "http://")) else []
    if not isinstance(value, list):
        return ()
    return tuple(url for url in value if isinstance(url, str) and url)


def _error_code(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    return None if text.lower() in ("", "null", "none") else text


def _code(body: Mapping[str, Any]) -> str | None:
    code = body.get("code")
    return None if code is None else str(code)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
