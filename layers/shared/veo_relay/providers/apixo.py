"""apixo: `message` envelope, real HTTP statuses, `resultJson` as a JSON string, callback body
shaped like the status body."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from veo_relay.errors import InvalidCallback, ProviderError
from veo_relay.providers.base import (
    CallbackNotice,
    GenerationRequest,
    ProviderState,
    ProviderStatus,
)
from veo_relay.providers.http import ProviderHttp, json_body
from veo_relay.providers.taxonomy import code_for_failure, error_for_status
from veo_relay.tasks import TaskError

MODEL = "veo-3-1"


class ApixoProvider:
    name = "apixo"

    def __init__(self, http: ProviderHttp) -> None:
        self._http = http

    def submit_generation(self, request: GenerationRequest, callback_url: str | None) -> str:
        task_input: dict[str, Any] = {
            "mode": request.mode,
            "prompt": request.prompt,
            "generationType": request.generation_type,
            "aspect_ratio": request.aspect_ratio,
        }
        if request.image_urls:
            task_input["image_urls"] = list(request.image_urls)
        if request.seed is not None:
            task_input["seed"] = request.seed
        if request.watermark:
            task_input["watermark"] = request.watermark
        body: dict[str, Any] = {"input": task_input}
        if callback_url:
            body.update(request_type="callback", callback_url=callback_url)
        else:
            body["request_type"] = "async"
        envelope = self._envelope(self._http.post(f"/api/v1/generateTask/{MODEL}", body))
        task_id = (envelope.get("data") or {}).get("taskId")
        if not isinstance(task_id, str) or not task_id:
            raise ProviderError("provider_error", "apixo accepted the task but sent no taskId")
        return task_id

    def read_status(self, provider_task_id: str) -> ProviderStatus:
        response = self._http.get(f"/api/v1/statusTask/{MODEL}", {"taskId": provider_task_id})
        data = self._envelope(response).get("data") or {}
        return _status_from_data(data)

    def parse_callback(self, body: bytes, headers: Mapping[str, str]) -> CallbackNotice:
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            raise InvalidCallback("callback body is not JSON") from None
        data = payload.get("data") if isinstance(payload, dict) else None
        task_id = data.get("taskId") if isinstance(data, dict) else None
        return CallbackNotice(provider_task_id=task_id if isinstance(task_id, str) else None)

    @staticmethod
    def _envelope(response: Any) -> dict[str, Any]:
        body = json_body(response)
        if response.status_code != 200 or body.get("code") not in (200, None):
            status = response.status_code if response.status_code != 200 else int(body["code"])
            raise error_for_status(status, _message(body))
        return body


def _message(body: dict[str, Any]) -> str | None:
    data = body.get("data")
    detail = data.get("error") if isinstance(data, dict) else None
    message = body.get("message")
    return f"{message}: {detail}" if detail else message


def _status_from_data(data: Mapping[str, Any]) -> ProviderStatus:
    state = data.get("state")
    if state == "success":
        return ProviderStatus(
            ProviderState.SUCCEEDED, video_urls=_result_urls(data.get("resultJson")), raw=data
        )
    if state == "failed":
        raw_code = data.get("failCode")
        error = TaskError(
            code=code_for_failure(raw_code),
            message=data.get("failMsg") or "apixo reported the task failed",
            provider_code=raw_code,
            provider_message=data.get("failMsg"),
        )
        return ProviderStatus(ProviderState.FAILED, error=error, raw=data)
    return ProviderStatus(ProviderState.RUNNING, raw=data)


def _result_urls(result_json: Any) -> tuple[str, ...]:
    try:
        result = json.loads(result_json) if isinstance(result_json, str) else result_json
        urls = result["resultUrls"]
    except (ValueError, TypeError, KeyError):
        raise ProviderError(
            "provider_error", "apixo reported success without resultJson.resultUrls"
        ) from None
    if isinstance(urls, str):
        urls = [urls]
    return tuple(u for u in urls if isinstance(u, str))
