"""The veo-relay API from Python: typed tasks and errors, retries that never pay twice."""

from __future__ import annotations

import hashlib
import os
import queue
import random
import time
import uuid
from collections.abc import Callable, Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, BinaryIO

import requests
from requests.auth import AuthBase

from veo_relay_client.auth import LocalPrincipal, is_local, sigv4_for
from veo_relay_client.errors import (
    ChecksumMismatch,
    ConnectionFailed,
    DownloadFailed,
    TaskNotCompleted,
    WaitTimeout,
    error_for,
)
from veo_relay_client.models import Task, TaskPage, Usage

DEFAULT_API_URL = "http://127.0.0.1:3000"  # `make run`
_RETRIED_STATUSES = frozenset({429, 503})
_CHUNK_BYTES = 1024 * 1024

# (bytes so far, total bytes or None)
ProgressCallback = Callable[[int, int | None], None]


class Client:
    """A client of one veo-relay API.

    `api_url` defaults to $VEO_RELAY_API, else the local stack. On this machine (`make run`) the
    caller is `principal` (the `X-Local-Principal` header; the stack's default `local-user` if
    None); anywhere else requests are signed (SigV4) with the caller's AWS credentials, and the
    principal is whoever they name. `auth` replaces either.

    Every request is retried on 429 and 503 (after the answer's `Retry-After`, else a growing
    jittered wait; a `Retry-After` over `max_retry_wait` is not waited for) and on connection
    errors, at most `max_retries` times: every route is safe to repeat, a create or extend
    because it carries one `Idempotency-Key` through its retries.
    """

    def __init__(
        self,
        api_url: str | None = None,
        *,
        principal: str | None = None,
        region: str | None = None,
        auth: AuthBase | None = None,
        timeout: float = 35.0,
        max_retries: int = 4,
        max_retry_wait: float = 60.0,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api_url = (api_url or os.environ.get("VEO_RELAY_API") or DEFAULT_API_URL).rstrip("/")
        if auth is None:
            if is_local(self.api_url):
                auth = LocalPrincipal(principal) if principal else None
            elif principal:
                raise ValueError("a deployed stack takes the principal from the signature only")
            else:
                auth = sigv4_for(self.api_url, region)
        self._auth = auth
        # API Gateway answers within 30 s (the offline stack too): a little more, then retry.
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait
        self._http = session or requests.Session()
        self._sleep = sleep
        self._clock = clock

    # Tasks -------------------------------------------------------------------------------------

    def create(
        self,
        prompt: str,
        *,
        provider: str | None = None,
        mode: str | None = None,
        generation_type: str | None = None,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        image_urls: list[str] | None = None,
        seed: int | None = None,
        watermark: str | None = None,
        webhook_url: str | None = None,
        idempotency_key: str | None = None,
    ) -> Task:
        """A new generation (202: `queued` or `in_progress`). Options left None take the API's
        defaults. A fresh Idempotency-Key unless one is given: the same key makes a repeat of
        this call return the same task and pay nothing."""
        body = _given(
            prompt=prompt,
            provider=provider,
            mode=mode,
            generation_type=generation_type,
            aspect_ratio=aspect_ratio,
            resolution=resolution,
            image_urls=image_urls,
            seed=seed,
            watermark=watermark,
            webhook_url=webhook_url,
        )
        return self._post_task("/v1/videos", body, idempotency_key)

    def extend(
        self,
        parent_id: str,
        prompt: str,
        *,
        mode: str | None = None,
        seed: int | None = None,
        watermark: str | None = None,
        webhook_url: str | None = None,
        idempotency_key: str | None = None,
    ) -> Task:
        """Continue a completed video; the child stays on its parent's provider."""
        body = _given(
            prompt=prompt, mode=mode, seed=seed, watermark=watermark, webhook_url=webhook_url
        )
        return self._post_task(f"/v1/videos/{parent_id}/extend", body, idempotency_key)

    def get(self, task_id: str) -> Task:
        return Task.from_dict(self._json("GET", f"/v1/videos/{task_id}"))

    def list_page(
        self,
        *,
        limit: int = 100,
        cursor: str | None = None,
        status: str | None = None,
        root_id: str | None = None,
    ) -> TaskPage:
        params = _given(limit=limit, cursor=cursor, status=status, root_id=root_id)
        page = self._json("GET", "/v1/videos", params=params)
        return TaskPage(
            items=[Task.from_dict(item) for item in page["items"]],
            next_cursor=page["next_cursor"],
        )

    def list(
        self, *, status: str | None = None, root_id: str | None = None, page_size: int = 100
    ) -> Iterator[Task]:
        """Every one of the caller's tasks (newest first), page after page as it is read."""
        cursor: str | None = None
        while True:
            page = self.list_page(limit=page_size, cursor=cursor, status=status, root_id=root_id)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def cancel(self, task_id: str) -> Task:
        """Fail a task still queued (error.code `cancelled`); Conflict once the provider has it."""
        return Task.from_dict(self._json("POST", f"/v1/videos/{task_id}/cancel"))

    def delete(self, task_id: str) -> None:
        """Remove a completed or failed task's video for good; Conflict while in flight."""
        self._request("DELETE", f"/v1/videos/{task_id}", gone_once_retried=True)

    def wait(
        self,
        task_id: str,
        *,
        timeout: float = 900.0,
        interval: float = 1.0,
        max_interval: float = 15.0,
        notifications: queue.Queue[Any] | None = None,
        on_update: Callable[[Task], None] | None = None,
    ) -> Task:
        """The task once `completed` or `failed`, read every `interval` seconds, growing to
        `max_interval` (jittered); WaitTimeout after `timeout` seconds.

        `notifications`: a queue the caller's webhook receiver puts each verified delivery on
        (see `verify_webhook`); a delivery ends the current wait at once, so the task is read
        when it changes rather than at the next poll. The task is always read from the API (a
        delivery is the news, the API the truth), and polling goes on beside it in case a
        delivery is lost. `on_update` sees every task read."""
        deadline = self._clock() + timeout
        delay = interval
        while True:
            task = self.get(task_id)
            if on_update is not None:
                on_update(task)
            if task.done:
                return task
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise WaitTimeout(f"{task_id} still {task.status} after {timeout:g} s", task)
            pause = min(remaining, random.uniform(delay / 2, delay))
            if notifications is None:
                self._sleep(pause)
            else:
                _next_notification(notifications, pause)
            delay = min(max_interval, delay * 2)

    def download(
        self,
        task_id: str,
        path: str | os.PathLike[str],
        *,
        on_progress: ProgressCallback | None = None,
    ) -> Task:
        """Stream the task's stored video to `path`, checking its size and SHA-256 against the
        task's. It is written beside `path` and renamed into place once checked: `path` never
        holds part of a video, and a mismatch (ChecksumMismatch) leaves no file."""
        task = self.get(task_id)
        if task.video is None or task.video.download_url is None:
            raise TaskNotCompleted(f"{task_id} is {task.status}: it has no stored video")
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.part")
        # Created as open() would create the file (the umask's mode), never over another's.
        descriptor = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with open(descriptor, "wb") as sink:
                digest, size = self._stream(task.video.download_url, sink, on_progress)
            if size != task.video.size_bytes or digest != task.video.sha256:
                raise ChecksumMismatch(
                    f"{task_id}: got {size} bytes, SHA-256 {digest}; the stored video is "
                    f"{task.video.size_bytes} bytes, SHA-256 {task.video.sha256}"
                )
            os.replace(part, target)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        return task

    def _stream(
        self, url: str, sink: BinaryIO, on_progress: ProgressCallback | None
    ) -> tuple[str, int]:
        digest, size = hashlib.sha256(), 0
        # The presigned URL is its own authorisation: neither a signature nor a header of ours.
        try:
            with self._http.get(url, stream=True, timeout=self.timeout, auth=None) as response:
                if response.status_code != 200:
                    raise DownloadFailed(
                        f"the video's URL answered {response.status_code}",
                        status=response.status_code,
                    )
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                for chunk in response.iter_content(_CHUNK_BYTES):
                    sink.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                    if on_progress is not None:
                        on_progress(size, total)
        except requests.RequestException as exc:
            raise DownloadFailed(f"the video's download broke off: {exc}") from exc
        return digest.hexdigest(), size

    # The caller's account ----------------------------------------------------------------------

    def usage(self, month: str | None = None) -> Usage:
        """Spent, reserved, budget and tasks by status in `month` (YYYY-MM; default this one)."""
        return Usage.from_dict(self._json("GET", "/v1/usage", params=_given(month=month)))

    def capabilities(self) -> dict[str, Any]:
        """`{"providers": {name: {...}}, "default_provider", "auto_order"}`."""
        table: dict[str, Any] = self._json("GET", "/v1/capabilities")
        return table

    def webhook_secret(self) -> str:
        """The secret the caller's webhook deliveries are signed with (`whsec_...`)."""
        return str(self._json("GET", "/v1/webhook-secret")["secret"])

    def rotate_webhook_secret(self) -> str:
        """A new secret; the one it replaces still signs beside it for 24 hours."""
        return str(self._json("POST", "/v1/webhook-secret/rotate")["secret"])

    # HTTP --------------------------------------------------------------------------------------

    def _post_task(self, path: str, body: dict[str, Any], key: str | None) -> Task:
        # One key for every retry of this call: a retry finds the task the first attempt made.
        headers = {"Idempotency-Key": key or str(uuid.uuid4())}
        return Task.from_dict(self._json("POST", path, json=body, headers=headers))

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._request(method, path, **kwargs).json()

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        gone_once_retried: bool = False,
    ) -> requests.Response:
        """`gone_once_retried`: a 404 after a retry is the first attempt's success, whose answer
        was lost (a DELETE)."""
        url = f"{self.api_url}{path}"
        attempt = 0
        while True:
            try:
                response = self._http.request(
                    method,
                    url,
                    json=json,
                    params=params,
                    headers=headers,
                    auth=self._auth,
                    timeout=self.timeout,
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt >= self.max_retries:
                    raise ConnectionFailed(f"{method} {url}: {exc}") from exc
                delay = _backoff(attempt)
            else:
                if response.status_code < 400 or (
                    gone_once_retried and attempt > 0 and response.status_code == 404
                ):
                    return response
                error = error_for(response.status_code, _body(response), _retry_after(response))
                if response.status_code not in _RETRIED_STATUSES or attempt >= self.max_retries:
                    raise error
                delay = error.retry_after if error.retry_after is not None else _backoff(attempt)
                if delay > self.max_retry_wait:
                    raise error
            self._sleep(delay)
            attempt += 1


def _given(**values: Any) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}


def _body(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _retry_after(response: requests.Response) -> float | None:
    """Retry-After in seconds: delay-seconds or an HTTP date."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _backoff(attempt: int) -> float:
    """0.5 s, 1 s, 2 s... capped at 8 s, each jittered down by up to half."""
    ceiling = min(8.0, 0.5 * 2**attempt)
    return random.uniform(ceiling / 2, ceiling)


def _next_notification(notifications: queue.Queue[Any], timeout: float) -> None:
    """Waits up to `timeout` for a notification, then drops any others already queued (one read
    of the task answers them all)."""
    try:
        notifications.get(timeout=timeout)
    except queue.Empty:
        return
    while True:
        try:
            notifications.get_nowait()
        except queue.Empty:
            return
