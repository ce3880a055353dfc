"""DELETE and cancel (veo_relay.lifecycle) against the in-memory ports: what each leaves of the
task, its objects and the bus, and what the readers make of a deleted or expired task."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.fakes import FakeEvents, FakeTasks, FakeVideos, make_task
from veo_relay.errors import TaskConflict, TaskNotFound
from veo_relay.idempotency import KeyBinding, bound_task
from veo_relay.lifecycle import TaskLifecycle
from veo_relay.queries import TaskQueries
from veo_relay.tasks import StoredVideo, Task, TaskError, TaskStatus, manifest_key_for
from veo_relay.video_events import VIDEO_DELETED

ALICE = "arn:aws:iam::123456789012:user/alice"
BOB = "arn:aws:iam::123456789012:user/bob"
TASK_ID = "vid_" + "a" * 24
CHILD_ID = "vid_" + "b" * 24


def completed(**fields) -> Task:
    task = make_task(TaskStatus.COMPLETED, id=fields.pop("id", TASK_ID), **fields)
    task.video = StoredVideo("videos", task.video_key, 3, "0" * 64, "video/mp4")
    task.completed_at = task.updated_at
    return task


class World:
    def __init__(self, *tasks: Task) -> None:
        self.tasks = FakeTasks(*tasks)
        self.videos = FakeVideos()
        self.events = FakeEvents()
        self.lifecycle = TaskLifecycle(self.tasks, self.videos, self.events)
        self.queries = TaskQueries(self.tasks, self.videos, presign_expires_seconds=60)
        for task in tasks:
            if task.video is not None:
                self.videos.objects[task.video_key] = (b"mp4", {})
                self.videos.objects[manifest_key_for(task.video_key)] = (b"{}", {})


# --- DELETE --------------------------------------------------------------------------------------


def test_a_deleted_video_is_gone_from_the_bucket_the_readers_and_announced_as_it_was():
    # Given a completed video with its manifest, and its extension
    child = completed(id=CHILD_ID, parent_id=TASK_ID, root_id=TASK_ID)
    world = World(completed(webhook_url="https://hooks.example/v"), child)
    before = world.queries.get_video(ALICE, TASK_ID)

    # When its owner deletes it
    world.lifecycle.delete(ALICE, TASK_ID)

    # Then the video and the manifest are gone; the extension's stay
    assert world.videos.objects.keys() == {child.video_key, manifest_key_for(child.video_key)}
    # and the task is 404 and left out of lists, while its extension is neither
    with pytest.raises(TaskNotFound):
        world.queries.get_video(ALICE, TASK_ID)
    listed = world.queries.list_videos(ALICE, 20, None, None, root_id=TASK_ID)
    assert [t["id"] for t in listed["items"]] == [CHILD_ID]
    assert world.queries.get_video(ALICE, CHILD_ID)["parent_id"] == TASK_ID
    # and Video Deleted carries the task object as it was, without a download URL
    expected = {**before, "video": {**before["video"], "download_url": None}}
    assert world.events.published == [(VIDEO_DELETED, expected)]
    # and the record keeps nothing the client gave but the id and its settings
    record = world.tasks.items[TASK_ID]
    assert record.deleted_at is not None
    assert (record.prompt, record.video, record.webhook_url) == ("", None, None)


def test_a_failed_task_can_be_deleted_and_a_second_delete_is_404():
    world = World(make_task(TaskStatus.FAILED, error=TaskError("timeout", "too slow")))

    world.lifecycle.delete(ALICE, TASK_ID)

    with pytest.raises(TaskNotFound):
        world.lifecycle.delete(ALICE, TASK_ID)
    assert [kind for kind, _ in world.events.published] == [VIDEO_DELETED]


def test_a_delete_that_stopped_midway_is_finished_by_its_retry():
    # Given a deletion whose objects could not be removed (S3 failed after the first write)
    world = World(completed())
    original_delete = world.videos.delete
    world.videos.delete = _fails  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        world.lifecycle.delete(ALICE, TASK_ID)
    # the task is already gone to readers
    with pytest.raises(TaskNotFound):
        world.queries.get_video(ALICE, TASK_ID)
    assert world.events.published == []

    # When the client retries
    world.videos.delete = original_delete  # type: ignore[method-assign]
    world.lifecycle.delete(ALICE, TASK_ID)

    # Then the retry removed the objects and announced the deletion, with the video as it was
    assert world.videos.objects == {}
    ((kind, detail),) = world.events.published
    assert (kind, detail["video"]["key"], detail["prompt"]) == (
        VIDEO_DELETED,
        completed().video_key,
        "a lighthouse at dawn",
    )
    assert world.tasks.items[TASK_ID].deleted_at is not None


def _fails(key: str) -> None:
    raise ConnectionError("S3 is unavailable")


@pytest.mark.parametrize("status", [TaskStatus.QUEUED, TaskStatus.IN_PROGRESS, TaskStatus.STORING])
def test_a_task_in_flight_cannot_be_deleted(status):
    world = World(make_task(status))

    with pytest.raises(TaskConflict, match=status.value):
        world.lifecycle.delete(ALICE, TASK_ID)

    assert world.tasks.items[TASK_ID].deletion_requested_at is None
    assert world.events.published == []


def test_another_principals_or_an_unknown_task_is_not_found():
    world = World(completed())

    with pytest.raises(TaskNotFound):
        world.lifecycle.delete(BOB, TASK_ID)
    with pytest.raises(TaskNotFound):
        world.lifecycle.delete(ALICE, "vid_" + "c" * 24)
    assert len(world.videos.objects) == 2


def test_an_idempotency_key_of_a_deleted_video_is_a_conflict_not_a_new_task():
    # Given a video created under a key, then deleted
    world = World(completed(request_hash="h"))
    world.lifecycle.delete(ALICE, TASK_ID)

    # When the same request comes again with that key, its id is not reused
    with pytest.raises(TaskConflict, match="deleted"):
        bound_task(world.tasks, ALICE, KeyBinding(TASK_ID, "h"))


# --- retention -----------------------------------------------------------------------------------


def test_a_task_past_its_expiry_is_gone_to_readers_before_the_ttl_removes_it():
    past = datetime.now(UTC) - timedelta(seconds=1)
    world = World(completed(expires_at=past), completed(id=CHILD_ID, root_id=CHILD_ID))

    with pytest.raises(TaskNotFound):
        world.queries.get_video(ALICE, TASK_ID)
    listed = world.queries.list_videos(ALICE, 20, None, None)
    assert [t["id"] for t in listed["items"]] == [CHILD_ID]
    with pytest.raises(TaskNotFound):
        world.lifecycle.delete(ALICE, TASK_ID)


def test_a_completion_under_a_retention_expires_the_record_with_its_video():
    tasks = FakeTasks(make_task(TaskStatus.STORING), make_task(TaskStatus.STORING, id=CHILD_ID))
    video = StoredVideo("videos", "videos/k.mp4", 3, "0" * 64, "video/mp4")

    kept = tasks.mark_completed(TASK_ID, video)
    expiring = tasks.mark_completed(CHILD_ID, video, retention=timedelta(days=7))

    assert kept is not None and kept.expires_at is None
    assert expiring is not None and expiring.expires_at is not None
    left = expiring.expires_at - datetime.now(UTC)
    assert timedelta(days=7) - timedelta(minutes=1) < left <= timedelta(days=7)


# --- cancel --------------------------------------------------------------------------------------


def test_a_queued_task_is_cancelled_and_its_submit_message_then_claims_nothing():
    world = World(make_task(TaskStatus.QUEUED))

    cancelled = world.lifecycle.cancel(ALICE, TASK_ID)

    assert cancelled.status is TaskStatus.FAILED
    assert cancelled.error is not None and cancelled.error.code == "cancelled"
    assert cancelled.expires_at is not None  # expires as every failed task does
    # and the submit queue's later message finds nothing to claim
    assert world.tasks.claim_submit(TASK_ID) is None
    assert world.tasks.items[TASK_ID].submit_claimed_at is None


def test_a_retried_cancel_gets_the_same_task():
    world = World(make_task(TaskStatus.QUEUED))
    first = world.lifecycle.cancel(ALICE, TASK_ID)

    again = world.lifecycle.cancel(ALICE, TASK_ID)

    assert again == first
    assert world.tasks.writes.count("cancelled") == 1


@pytest.mark.parametrize(
    "task",
    [
        make_task(TaskStatus.QUEUED, submit_claimed_at="2026-11-21T10:00:00.000Z"),
        make_task(TaskStatus.IN_PROGRESS),
        make_task(TaskStatus.STORING),
    ],
    ids=["queued-with-its-submit-under-way", "in_progress", "storing"],
)
def test_once_the_provider_has_the_task_a_cancel_is_a_conflict_saying_so(task):
    world = World(task)

    with pytest.raises(TaskConflict, match="the provider already has"):
        world.lifecycle.cancel(ALICE, TASK_ID)

    assert world.tasks.items[TASK_ID].status is task.status


@pytest.mark.parametrize(
    "task",
    [completed(), make_task(TaskStatus.FAILED, error=TaskError("timeout", "too slow"))],
    ids=["completed", "failed"],
)
def test_a_closed_task_cannot_be_cancelled(task):
    world = World(task)

    with pytest.raises(TaskConflict, match="only a queued video"):
        world.lifecycle.cancel(ALICE, TASK_ID)


def test_another_principals_task_cannot_be_cancelled():
    world = World(make_task(TaskStatus.QUEUED))

    with pytest.raises(TaskNotFound):
        world.lifecycle.cancel(BOB, TASK_ID)
    assert world.tasks.items[TASK_ID].status is TaskStatus.QUEUED
