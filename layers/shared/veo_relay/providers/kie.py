"""kie.ai: `msg` envelope whose body `code` carries the outcome even in an HTTP 200, record-info
as the one status route for generate and extend tasks, and optionally signed callbacks
(reference/providers.md §2).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from veo_relay.deadlines import Deadline
from veo_relay.errors import InvalidCallback, InvalidRequest, ProviderError
from veo_relay.json_input import parse_json
from veo_relay.providers.base import (
    Balance,
    CallbackNotice,
    ExtensionRequest,
    GenerationRequest,
    ProviderStatus,
    Submission,
    TaskKind,
)
from veo_relay.providers.http import ProviderHttp
from veo_relay.providers.kie_protocol import envelope_body, status_from_record
from veo_relay.providers.kie_upgrades import KieUpgrades
from veo_relay.providers.specs.kie import SPEC

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
    upgrades: KieUpgrades
    balance: KieCredits

    def __init__(
        self,
        http: ProviderHttp,
        webhook_hmac_key: str | Callable[[], str | None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._http = http
        self.upgrades = KieUpgrades(http)
        self.balance = KieCredits(http)
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
        data = envelope_body(response).get("data")
        if not isinstance(data, dict):
            raise ProviderError("provider_error", "kie answered record-info without data")
        return status_from_record(data, kind)

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
        data = envelope_body(self._http.post(path, body, deadline)).get("data")
        task_id = data.get("taskId") if isinstance(data, dict) else None
        if not isinstance(task_id, str) or not task_id:
            raise ProviderError("provider_error", "kie accepted the task but sent no taskId")
        return task_id


class KieCredits:
    """`GET /api/v1/chat/credit`: the account's credits as the envelope's `data`, a number."""

    def __init__(self, http: ProviderHttp) -> None:
        self._http = http

    def read_balance(self) -> Balance:
        data = envelope_body(self._http.get("/api/v1/chat/credit")).get("data")
        found = Balance.of(data, SPEC.balance_unit or "credits")
        if found is None:
            raise ProviderError(
                "provider_error",
                "kie answered the credit read without a number of credits",
                raw_message=json.dumps(data)[:200],
            )
        return found


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
