"""Reading tasks (veo_relay.queries) with in-memory ports: another principal's task does not
exist, a completed one carries a presigned link, and lists page with cursors of their own."""

from __future__ import annotations

import pytest

from tests.fakes import FakeTasks, FakeVideos, make_task
from veo_relay.errors import InvalidRequest, TaskNotFound
from veo_relay.queries import TaskQueries
from veo_relay.tasks import StoredVideo, TaskStatus

ALICE = "arn:aws:iam::123456789012:user/alice"
BOB = "arn:aws:iam::123456789012:user/bob"


def queries(*tasks) -> TaskQueries:
    return TaskQueries(FakeTasks(*tasks), FakeVideos(), presign_expires_seconds=600)


def test_a_completed_task_carries_a_presigned_download_url():
    video = StoredVideo("videos", "videos/r/t.mp4", 10, "0" * 64, "video/mp4")
    task = make_task(TaskStatus.COMPLETED, id="vid_" + "1" * 24, video=video)

    found = queries(task).get_video(ALICE, task.id)

    assert found["video"]["download_url"] == "https://s3.example/videos/videos/r/t.mp4?expires=600"


def test_another_principals_task_is_not_found():
    task = make_task(id="vid_" + "2" * 24)

    with pytest.raises(TaskNotFound):
        queries(task).get_video(BOB, task.id)


def test_a_list_pages_newest_first_and_its_cursor_is_this_listings_only():
    # Given three tasks of alice's and one of bob's
    tasks = [
        make_task(id=f"vid_{i:024x}", created_at=f"2026-12-01T00:00:0{i}.000Z") for i in range(3)
    ]
    bobs = make_task(id="vid_" + "b" * 24, owner=BOB)
    reads = queries(*tasks, bobs)

    # When she lists two at a time
    first = reads.list_videos(ALICE, 2, None, None)
    second = reads.list_videos(ALICE, 2, first["next_cursor"], None)

    # Then she sees hers, newest first, across the pages, and no more
    assert [t["id"] for t in first["items"]] == [tasks[2].id, tasks[1].id]
    assert [t["id"] for t in second["items"]] == [tasks[0].id]
    assert second["next_cursor"] is None
    # And her cursor is refused in bob's listing
    with pytest.raises(InvalidRequest, match="cursor"):
        reads.list_videos(BOB, 2, first["next_cursor"], None)


def test_an_unknown_status_filter_is_refused_naming_the_field():
    with pytest.raises(InvalidRequest, match="status"):
        queries().list_videos(ALICE, 20, None, "done")
