"""kie.ai's upgrades of a generated 720p video (reference/providers.md §2.6, §2.7): 1080p by
asking `get-1080p-video` until it answers the video, 4K as a task of its own started by
`get-4k-video` (with a callback, like a generation's) whose truth is its record-info."""

from __future__ import annotations

import re
from typing import Any

from veo_relay.providers.base import (
    ProviderState,
    ProviderStatus,
    TaskKind,
    UpgradeStarted,
)
from veo_relay.providers.http import ProviderHttp, json_body
from veo_relay.providers.kie_protocol import (
    envelope_body,
    int_value,
    status_from_record,
    text_value,
    url_list,
)
from veo_relay.providers.taxonomy import error_for_status

_RUNNING = ProviderStatus(ProviderState.RUNNING)
# Body codes of get-1080p-video that are answers, not "not ready yet": the key is refused, or
# the account cannot pay. Every other non-200 code means "retry in 20-30 s" (§2.6).
_1080P_REFUSALS = frozenset({401, 402})
# get-4k-video answers a repeated request with 422 and, in its msg, where that 4K stands ("4k is
# processing..." or "The video has been generated successfully"); another 422 is a refusal.
_4K_REPEATED = 422
_REPEATED_MESSAGE = re.compile(r"\b(processing|generated successfully)\b", re.IGNORECASE)


class KieUpgrades:
    def __init__(self, http: ProviderHttp) -> None:
        self._http = http

    def start_upgrade(
        self, provider_task_id: str, resolution: str, callback_url: str | None
    ) -> UpgradeStarted:
        if resolution == "1080p":
            return UpgradeStarted(None, self._read_1080p(provider_task_id))
        body: dict[str, Any] = {"taskId": provider_task_id, "index": 0}
        if callback_url:
            body["callBackUrl"] = callback_url
        response = self._http.post("/api/v1/veo/get-4k-video", body)
        answer = json_body(response) if response.status_code == 200 else {}
        message = text_value(answer.get("msg")) or ""
        if int_value(answer.get("code")) == _4K_REPEATED and _REPEATED_MESSAGE.search(message):
            # A 4K of this video was asked for already (a start whose answer was lost): it is
            # running, or done and answered with its result; its own callback names its task.
            return UpgradeStarted(None, _status_of_4k(answer.get("data")))
        data = envelope_body(response).get("data")
        data = data if isinstance(data, dict) else {}
        task_id = data.get("taskId")
        return UpgradeStarted(
            task_id if isinstance(task_id, str) and task_id else None, _status_of_4k(data)
        )

    def read_upgrade(
        self, provider_task_id: str, resolution: str, upgrade_task_id: str | None
    ) -> ProviderStatus:
        if resolution == "1080p":
            return self._read_1080p(provider_task_id)
        if upgrade_task_id is None:
            return _RUNNING
        response = self._http.get("/api/v1/veo/record-info", {"taskId": upgrade_task_id})
        data = envelope_body(response).get("data")
        if not isinstance(data, dict):
            raise error_for_status(500, "kie answered the 4K task's record-info without data")
        return status_from_record(data, TaskKind.GENERATE)

    def _read_1080p(self, provider_task_id: str) -> ProviderStatus:
        response = self._http.get(
            "/api/v1/veo/get-1080p-video", {"taskId": provider_task_id, "index": "0"}
        )
        if response.status_code == 200:
            code = int_value(json_body(response).get("code"))
            if code not in (200, *_1080P_REFUSALS):
                return _RUNNING  # "1080P is processing": asked again at the next poll
        data = envelope_body(response).get("data")
        url = data.get("resultUrl") if isinstance(data, dict) else None
        urls = url_list(url)
        if not urls:
            raise error_for_status(500, "kie answered the 1080p video without a resultUrl")
        return ProviderStatus(ProviderState.SUCCEEDED, video_urls=urls)


def _status_of_4k(data: Any) -> ProviderStatus:
    urls = url_list(data.get("resultUrls")) if isinstance(data, dict) else ()
    if urls:
        return ProviderStatus(ProviderState.SUCCEEDED, video_urls=urls)
    return _RUNNING
