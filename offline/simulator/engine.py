"""Creating simulated tasks: applies prompt tags and defaults, registers the result video and
schedules the completion callback. Protocol modules call this; it knows no wire format."""

import time
from collections.abc import Callable
from typing import Any

from .callbacks import CallbackPlan
from .tags import SimTags, parse_tags
from .tasks import Resolution, SimTask, TaskKind, TaskStore, VideoFile


class TaskEngine:
    def __init__(
        self,
        *,
        provider: str,
        store: TaskStore,
        schedule_callback: Callable[[SimTask, CallbackPlan], None],
        default_delay: float,
        default_size: int,
        origin: Callable[[], str],
    ) -> None:
        self.provider = provider
        self.store = store
        # Sends the callback when the task finishes: a timer in a process that lives on, a later
        # invocation of the simulator's function in Lambda.
        self._schedule_callback = schedule_callback
        self._default_delay = default_delay
        self._default_size = default_size
        self._origin = origin

    def create_task(
        self,
        *,
        task_id: str,
        kind: TaskKind,
        model: str,
        prompt: str,
        request: dict[str, Any],
        fingerprint: str,
        parent_task_id: str | None = None,
        callback: CallbackPlan | None = None,
        with_origin_video: bool = False,
        resolution: Resolution = "720p",
        tags: SimTags | None = None,
    ) -> SimTask:
        """`tags` replace those of `prompt` (an upgrade: the upgraded task's, adjusted)."""
        tags = tags if tags is not None else parse_tags(prompt)
        size = tags.size_bytes if tags.size_bytes is not None else self._default_size
        delay = tags.delay_seconds if tags.delay_seconds is not None else self._default_delay
        task = SimTask(
            task_id=task_id,
            provider=self.provider,
            kind=kind,
            model=model,
            prompt=prompt,
            request=request,
            tags=tags,
            callback_url=callback.url if callback else None,
            parent_task_id=parent_task_id,
            fingerprint=fingerprint,
            created_at=time.time(),
            created_monotonic=time.monotonic(),
            delay_seconds=delay,
            video=self._video(task_id, size, resolution),
            origin_video=(
                self._video(f"{task_id}-origin", size, resolution) if with_origin_video else None
            ),
        )
        self.store.add(task)
        if callback and not tags.no_callback:
            self._schedule_callback(task, callback)
        return task

    def _video(self, seed: str, size: int, resolution: Resolution) -> VideoFile:
        # The seed is the provider task id (plus a suffix for extra renders): unique per task and
        # known to tests, which can then compute the expected bytes with mp4_bytes_sha256.
        # Above 720p the path names the resolution: {origin}/files/1080p/{seed}.mp4.
        name = f"{seed}.mp4" if resolution == "720p" else f"{resolution}/{seed}.mp4"
        url = f"{self._origin()}/files/{name}"
        return VideoFile(name=name, size=size, seed=seed, url=url, resolution=resolution)
