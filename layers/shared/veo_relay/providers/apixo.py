"""apixo: `message` envelope, real HTTP statuses, `resultJson` as a JSON string, callback body
shaped like the status body (reference/providers.md §1).

Generate and extend are two models on the same generic routes, `/generateTask/{model}` and
`/statusTask/{model}`: a task's status is read on the path of the model it was created on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import requests

from veo_relay.deadlines import Deadline
from veo_relay.errors import InvalidCallback, ProviderError
from veo_relay.json_input import parse_json
from veo_relay.providers.base import (
    Balance,
    CallbackNotice,
    ExtensionRequest,
    GenerationRequest,
    ProviderState,
    ProviderStatus,
    Submission,
    TaskKind,
)
from veo_relay.providers.http import ProviderHttp, json_body
from veo_relay.providers.specs.apixo import SPEC
from veo_relay.providers.taxonomy import code_for_failure, describe, error_for_status
from veo_relay.tasks import TaskError

GENERATE_MODEL = "veo-3-1"
EXTEND_MODEL = "veo-3-1-extend"
_MODEL_OF = {TaskKind.GENERATE: GENERATE_MODEL, TaskKind.EXTEND: EXTEND_MODEL}


class ApixoProvider:
    name = SPEC.name
    supports_callbacks = SPEC.supports_callbacks
    capabilities = SPEC.capabilities
    upgrades = None  # every resolution it offers is made by the generation itself
    balance: ApixoBalance

    def __init__(self, http: ProviderHttp) -> None:
        self._http = http
        self.balance = ApixoBalance(http)

    def submit_generation(
        self,
        request: GenerationRequest,
        callback_url: str | None,
        deadline: Deadline | None = None,
    ) -> Submission:
        task_input: dict[str, Any] = {
            "mode": request.mode,
            "prompt": request.prompt,
            "generationType": request.generation_type,
            "aspect_ratio": request.aspect_ratio,
        }
        if request.image_urls:
            task_input["image_urls"] = list(request.image_urls)
        _add_optional(task_input, request.seed, request.watermark)
        task_id = self._submit(GENERATE_MODEL, task_input, callback_url, deadline)
        return Submission(task_id, GENERATE_MODEL)

    def submit_extension(
        self,
        request: ExtensionRequest,
        callback_url: str | None,
        deadline: Deadline | None = None,
    ) -> Submission:
        # `taskId` is apixo's own id of a veo-3-1 task (not an upstream id, not an extend task).
        task_input: dict[str, Any] = {
            "taskId": request.parent_provider_task_id,
            "mode": request.mode,
            "prompt": request.prompt,
        }
        _add_optional(task_input, request.seed, request.watermark)
        task_id = self._submit(EXTEND_MODEL, task_input, callback_url, deadline)
        return Submission(task_id, EXTEND_MODEL)

    def read_status(self, provider_task_id: str, kind: TaskKind) -> ProviderStatus:
        path = f"/api/v1/statusTask/{_MODEL_OF[kind]}"
        response = self._http.get(path, {"taskId": provider_task_id})
        data = _envelope(response).get("data")
        if not isinstance(data, dict):
            raise ProviderError("provider_error", "apixo answered the status read without data")
        return _status_from_data(data)

    def parse_callback(self, body: bytes, headers: Mapping[str, str]) -> CallbackNotice:
        # apixo documents no signature; the callback is only a notification anyway.
        try:
            payload = parse_json(body or b"{}")
        except ValueError:
            raise InvalidCallback("callback body is not JSON") from None
        data = payload.get("data") if isinstance(payload, dict) else None
        task_id = data.get("taskId") if isinstance(data, dict) else None
        return CallbackNotice(provider_task_id=task_id if isinstance(task_id, str) else None)

    def _submit(
        self,
        model: str,
        task_input: dict[str, Any],
        callback_url: str | None,
        deadline: Deadline | None,
    ) -> str:
        body: dict[str, Any] = {"input": task_input}
        if callback_url:
            body.update(request_type="callback", callback_url=callback_url)
        else:
            body["request_type"] = "async"
        envelope = _envelope(self._http.post(f"/api/v1/generateTask/{model}", body, deadline))
        data = envelope.get("data")
        task_id = data.get("taskId") if isinstance(data, dict) else None
        if not isinstance(task_id, str) or not task_id:
            raise ProviderError("provider_error", "apixo accepted the task but sent no taskId")
        return task_id


class ApixoBalance:
    """`GET /api/v1/apikeys/current-balance` in apixo's `message` envelope. The route is known
    from a third-party client only, which passes the body on unread, so `data` is read as a
    number, or an object holding one under a balance-like name; anything else is refused."""

    _FIELDS = ("balance", "current_balance", "currentBalance", "remaining", "amount")

    def __init__(self, http: ProviderHttp) -> None:
        self._http = http

    def read_balance(self) -> Balance:
        data = _envelope(self._http.get("/api/v1/apikeys/current-balance")).get("data")
        unit = SPEC.balance_unit or "USD"
        found = Balance.of(data, unit)
        if found is None and isinstance(data, dict):
            found = next(
                (b for f in self._FIELDS if (b := Balance.of(data.get(f), unit)) is not None),
                None,
            )
        if found is None:
            raise ProviderError(
                "provider_error",
                "apixo answered the balance read without a balance",
                raw_message=json.dumps(data)[:200],
            )
        return found


def _add_optional(task_input: dict[str, Any], seed: int | None, watermark: str | None) -> None:
    if seed is not None:
        task_input["seed"] = seed
    if watermark:
        task_input["watermark"] = watermark


def _envelope(response: requests.Response) -> dict[str, Any]:
    """The body of a 200 whose envelope code is 200 too; anything else raises the refusal."""
    if response.status_code != 200:
        try:
            body: dict[str, Any] | None = json_body(response)
        except ProviderError:
            body = None  # e.g. a gateway's HTML page
        raise _refusal(response.status_code, body, response.text)
    body = json_body(response)
    code = body.get("code")
    if code in (200, "200", None):
        return body
    status = int(str(code)) if str(code).isdigit() else 400
    raise _refusal(status, body, "")


def _refusal(status: int, body: dict[str, Any] | None, text: str) -> ProviderError:
    message = _message(body) if body is not None else (text.strip()[:200] or None)
    raw_code = str(body["code"]) if body is not None and body.get("code") is not None else None
    # An invalid, expired or non-veo-3-1 parent is TASKID_ERROR; apixo does not say with which
    # status it comes, so the marker decides (the taxonomy also spots it in a 400's message).
    evidence = f"{raw_code or ''} {message or ''}".upper()
    code = "task_not_found" if "TASKID_ERROR" in evidence else None
    return error_for_status(status, message, raw_code, code=code)


def _message(body: dict[str, Any]) -> str | None:
    data = body.get("data")
    detail = data.get("error") if isinstance(data, dict) else None
    message = body.get("message")
    return f"{message}: {detail}" if detail else message


def _status_from_data(data: Mapping[str, Any]) -> ProviderStatus:
    state = data.get("state")
    if state == "success":
        return ProviderStatus(
            ProviderState.SUCCEEDED, video_urls=_result_urls(data.get("resultJson"))
        )
    if state == "failed":
        raw_code = data.get("failCode")
        raw_code = str(raw_code) if raw_code is not None else None
        fail_message = data.get("failMsg")
        fail_message = fail_message if isinstance(fail_message, str) and fail_message else None
        code = code_for_failure(raw_code, fail_message)
        error = TaskError(
            code=code,
            message=describe(code),
            provider_code=raw_code,
            provider_message=fail_message,
        )
        return ProviderStatus(ProviderState.FAILED, error=error)
    # pending, processing (and any state apixo adds later): not finished yet.
    return ProviderStatus(ProviderState.RUNNING)


def _result_urls(result_json: Any) -> tuple[str, ...]:
    try:
        result = parse_json(result_json) if isinstance(result_json, str) else result_json
        urls = result["resultUrls"]
    except (ValueError, TypeError, KeyError):
        raise ProviderError(
            "provider_error", "apixo reported success without resultJson.resultUrls"
        ) from None
    if isinstance(urls, str):
        urls = [urls]
    found = tuple(u for u in urls if isinstance(u, str) and u) if isinstance(urls, list) else ()
    if not found:
        raise ProviderError("provider_error", "apixo reported success with no result URL")
    return found
