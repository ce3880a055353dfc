"""The copy use case (veo_relay.copying) with in-memory ports: confirm with the provider, store
the video, complete the task, publish its manifest; and every way it must not."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from tests.fakes import (
    FakeMetrics,
    FakeProviders,
    FakeSources,
    FakeTasks,
    FakeUpgrades,
    FakeVideos,
    failed,
    make_task,
    results_of,
    succeeded,
)
from veo_relay.copying import CopyOutcome, VideoCopier
from veo_relay.downloader import NotMp4Error, TruncatedDownloadError
from veo_relay.providers.base import ProviderState, ProviderStatus, UpgradeStarted
from veo_relay.providers.registry import spec_of
from veo_relay.tasks import Task, TaskStatus

URL = "https://cdn.apixo.ai/output/video.mp4"
VIDEO = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 1000


@dataclass
class Copy:
    """The copier and its ports, for one test."""

    tasks: FakeTasks
    providers: FakeProviders = field(default_factory=FakeProviders)
    videos: FakeVideos = field(default_factory=FakeVideos)
    sources: FakeSources = field(default_factory=lambda: FakeSources({URL: VIDEO}))
    metrics: FakeMetrics = field(default_factory=FakeMetrics)

    @property
    def copier(self) -> VideoCopier:
        return VideoCopier(
            tasks=self.tasks,
            videos=self.videos,
            results=results_of(self.tasks, self.providers),
            metrics=self.metrics,
            sources=self.sources,
            copy_lease=timedelta(seconds=360),
            callback_quiet=timedelta(seconds=30),
        )

    def task(self, task_id: str) -> Task:
        return self.tasks.get(task_id)


def in_progress() -> Copy:
    return Copy(FakeTasks(make_task(TaskStatus.IN_PROGRESS)))


def test_a_finished_video_is_stored_completed_and_announced_by_its_manifest():
    # Given a task in progress whose provider reports it done
    given = in_progress()
    given.providers.get("apixo").statuses = [succeeded(URL)]
    task = given.task("vid_" + "a" * 24)

    # When it is copied
    outcome = given.copier.copy(task.id)

    # Then the video is in the bucket under the task's key, the task completed with its size and
    # hash, and the manifest beside the video written after (its event tells consumers)
    assert outcome is CopyOutcome.COMPLETED
    stored = given.task(task.id)
    assert stored.status is TaskStatus.COMPLETED
    assert stored.video is not None and stored.video.size_bytes == len(VIDEO)
    assert given.videos.objects[task.video_key][0] == VIDEO
    manifest = json.loads(given.videos.objects[task.video_key.removesuffix(".mp4") + ".json"][0])
    assert manifest["task_id"] == task.id and manifest["video"]["sha256"] == stored.video.sha256
    assert given.tasks.writes[-2:] == ["storing", "completed"]
    assert "task_completed" in given.metrics.names()


def test_a_repeated_request_for_a_completed_task_changes_nothing():
    # Given a task copied once
    given = in_progress()
    given.providers.get("apixo").statuses = [succeeded(URL)]
    task_id = "vid_" + "a" * 24
    given.copier.copy(task_id)
    writes, objects = list(given.tasks.writes), dict(given.videos.objects)

    # When the request is delivered again
    outcome = given.copier.copy(task_id)

    # Then nothing is asked of the provider again, nothing written, nothing downloaded
    assert outcome is CopyOutcome.ALREADY_CLOSED
    assert given.tasks.writes == writes and given.videos.objects == objects
    assert len(given.sources.opened) == 1
    assert given.providers.get("apixo").status_reads == ["provider-task-1"]


def test_an_early_callbacks_copy_gives_the_lease_back_and_quiets_callbacks():
    # Given a callback that took the copy's lease, and a provider still running
    given = in_progress()
    task_id = "vid_" + "a" * 24
    leased = given.tasks.record_callback(task_id)
    assert leased is not None

    # When its copy runs
    outcome = given.copier.copy(task_id, lease_taken_at=leased.updated_at)

    # Then nothing is stored, the task is back in progress with the callback forgotten, and
    # callbacks are quiet for a while (the poller keeps watching)
    assert outcome is CopyOutcome.STILL_RUNNING
    task = given.task(task_id)
    assert task.status is TaskStatus.IN_PROGRESS
    assert task.callback_received_at is None and task.callbacks_quiet_until is not None
    assert given.videos.objects == {}


def test_a_confirmed_callback_whose_video_is_being_upgraded_gives_the_lease_back_unquieted():
    # Given a 1080p kie task whose generation's callback took the lease, the generation done
    given = Copy(FakeTasks(make_task(TaskStatus.IN_PROGRESS, provider="kie", resolution="1080p")))
    kie = given.providers.get("kie")
    kie.capabilities = spec_of("kie").capabilities
    kie.upgrades = FakeUpgrades(started=UpgradeStarted(None, ProviderStatus(ProviderState.RUNNING)))
    kie.statuses = [succeeded(URL)]
    task_id = "vid_" + "a" * 24
    leased = given.tasks.record_callback(task_id)
    assert leased is not None

    # When its copy runs
    outcome = given.copier.copy(task_id, lease_taken_at=leased.updated_at)

    # Then the upgrade is asked for, nothing is stored, and the task is back in progress with
    # its callback answered but callbacks not quieted: the upgrade's own may copy it
    assert outcome is CopyOutcome.STILL_RUNNING
    assert kie.upgrades.starts == [("provider-task-1", "1080p", None)]
    task = given.task(task_id)
    assert task.status is TaskStatus.IN_PROGRESS
    assert task.callback_received_at is None and task.callbacks_quiet_until is None
    assert task.source_video_url == URL
    assert given.videos.objects == {}
    assert given.tasks.record_callback(task_id) is not None


def test_an_upgraded_video_is_stored_with_its_resolution():
    given = Copy(
        FakeTasks(
            make_task(
                TaskStatus.IN_PROGRESS,
                provider="kie",
                resolution="4k",
                upgrade_started_at="2026-12-02T10:00:00.000Z",
                upgrade_task_id="veo_4k_1",
            )
        )
    )
    kie = given.providers.get("kie")
    kie.capabilities = spec_of("kie").capabilities
    kie.upgrades = FakeUpgrades(statuses=[succeeded(URL)])

    assert given.copier.copy("vid_" + "a" * 24) is CopyOutcome.COMPLETED
    task = given.task("vid_" + "a" * 24)
    assert given.videos.objects[task.video_key][1]["resolution"] == "4k"


def test_a_provider_failure_fails_the_task_with_its_error():
    given = in_progress()
    given.providers.get("apixo").statuses = [failed("content_violation", "flagged")]

    outcome = given.copier.copy("vid_" + "a" * 24)

    assert outcome is CopyOutcome.FAILED
    task = given.task("vid_" + "a" * 24)
    assert task.status is TaskStatus.FAILED and task.error is not None
    assert task.error.code == "content_violation"
    assert ("provider_error", ("apixo", "content_violation")) in given.metrics.recorded


def test_a_video_that_is_not_an_mp4_fails_the_task_for_good():
    given = in_progress()
    given.providers.get("apixo").statuses = [succeeded(URL)]
    given.sources.videos[URL] = NotMp4Error("content type 'text/html' is not an MP4 type")

    outcome = given.copier.copy("vid_" + "a" * 24)

    assert outcome is CopyOutcome.FAILED
    task = given.task("vid_" + "a" * 24)
    assert task.error is not None and "could not be copied" in task.error.message
    assert given.videos.objects == {}


def test_a_download_cut_short_gives_the_lease_back_for_the_queues_retry():
    # Given a download that breaks off (retryable)
    given = in_progress()
    given.providers.get("apixo").statuses = [succeeded(URL)]
    given.sources.videos[URL] = TruncatedDownloadError("10 of 1000 bytes arrived")

    # When it is copied, Then the error reaches the queue (which retries)
    with pytest.raises(TruncatedDownloadError):
        given.copier.copy("vid_" + "a" * 24)

    # And the task is not left leased: a retry need not wait the lease out
    assert given.task("vid_" + "a" * 24).status is TaskStatus.IN_PROGRESS


def test_success_without_a_video_url_fails_the_task():
    given = in_progress()
    given.providers.get("apixo").statuses = [succeeded()]

    assert given.copier.copy("vid_" + "a" * 24) is CopyOutcome.FAILED
    task = given.task("vid_" + "a" * 24)
    assert task.error is not None and "without a video URL" in task.error.message


def test_a_copy_under_another_workers_lease_is_left_to_it():
    # Given a task another worker is copying (its lease still runs)
    given = in_progress()
    task_id = "vid_" + "a" * 24
    assert given.tasks.mark_storing(task_id, timedelta(seconds=360)) is not None
    given.providers.get("apixo").statuses = [succeeded(URL)]

    # When a second request comes
    outcome = given.copier.copy(task_id)

    # Then it downloads nothing
    assert outcome is CopyOutcome.ALREADY_CLOSED
    assert given.sources.opened == []


def test_a_task_whose_submit_answer_was_lost_is_not_asked_about():
    # Given a callback's lease on a task with no provider task id yet
    given = Copy(FakeTasks(make_task(TaskStatus.QUEUED)))
    task_id = "vid_" + "a" * 24
    leased = given.tasks.record_callback(task_id)
    assert leased is not None

    # When the copy runs
    outcome = given.copier.copy(task_id, lease_taken_at=leased.updated_at)

    # Then the provider is not called, and the task is back where the lease was taken
    assert outcome is CopyOutcome.STILL_RUNNING
    assert given.providers.get("apixo").status_reads == []
    assert given.task(task_id).status is TaskStatus.QUEUED
