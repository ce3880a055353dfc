"""The task object the API returns, by status."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from veo_relay.tasks import (
    OPEN_STATUSES,
    TERMINAL_STATUSES,
    StoredVideo,
    Task,
    TaskError,
    TaskStatus,
    format_timestamp,
    is_task_id,
    new_task_id,
    parse_timestamp,
)

PUBLIC_FIELDS = {
    "id",
    "status",
    "provider",
    "provider_task_id",
    "mode",
    "generation_type",
    "aspect_ratio",
    "prompt",
    "image_urls",
    "seed",
    "parent_id",
    "root_id",
    "created_at",
    "updated_at",
    "completed_at",
    "video",
    "error",
}
VIDEO = StoredVideo(
    bucket="videos-bucket",
    key="videos/vid_root/vid_1.mp4",
    size_bytes=123,
    sha256="ab" * 32,
    content_type="video/mp4",
)
ERROR = TaskError(
    code="content_violation",
    message="Content does not meet safety guidelines",
    provider_code="CONTENT_VIOLATION",
    provider_message="raw words",
)


def a_task(**changes: object) -> Task:
    task = Task(
        id="vid_1",
        owner="arn:aws:iam::123456789012:user/alice",
        status=TaskStatus.IN_PROGRESS,
        provider="apixo",
        prompt="a fox",
        mode="fast",
        generation_type="TEXT_2_VIDEO",
        aspect_ratio="16:9",
        root_id="vid_root",
        created_at="2026-11-21T10:00:00.000Z",
        updated_at="2026-11-21T10:00:01.000Z",
        provider_task_id="task_1",
        submit_attempt=2,
        creation_id="f" * 16,
    )
    return replace(task, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize("status", list(TaskStatus))
def test_the_public_object_has_the_contract_fields_and_nothing_private(status):
    # Given a task in any status, carrying both a video and an error
    task = a_task(status=status, video=VIDEO, error=ERROR, watermark="wm")

    # When it is made public
    public = task.to_public(download_url="https://signed.example/x")

    # Then it has the contract's fields, and never the owner or the bookkeeping of its creation
    # and submits
    assert set(public) >= PUBLIC_FIELDS
    assert "owner" not in public
    assert not {"creation_id", "submit_attempt"} & set(public)
    assert "f" * 16 not in str(public)
    assert public["status"] == status.value


@pytest.mark.parametrize("status", [s for s in TaskStatus if s is not TaskStatus.COMPLETED])
def test_video_is_null_until_completed(status):
    # Given a task that is not completed, even one whose video reference is already known
    task = a_task(status=status, video=VIDEO)

    # When it is made public
    # Then its video is null
    assert task.to_public("https://signed.example/x")["video"] is None


def test_a_completed_task_shows_its_video_with_the_download_url():
    # Given a completed task
    task = a_task(status=TaskStatus.COMPLETED, video=VIDEO, completed_at="2026-11-21T10:02:00.000Z")

    # When it is made public with a presigned URL
    public = task.to_public(download_url="https://signed.example/x")

    # Then the video object is complete and the error null
    assert public["video"] == {
        "bucket": "videos-bucket",
        "key": "videos/vid_root/vid_1.mp4",
        "size_bytes": 123,
        "sha256": "ab" * 32,
        "content_type": "video/mp4",
        "download_url": "https://signed.example/x",
    }
    assert public["error"] is None
    assert public["completed_at"] == "2026-11-21T10:02:00.000Z"


@pytest.mark.parametrize("status", [s for s in TaskStatus if s is not TaskStatus.FAILED])
def test_error_is_null_unless_failed(status):
    # Given a task that has not failed but carries an error (e.g. a stale one)
    task = a_task(status=status, error=ERROR)

    # When it is made public
    # Then its error is null
    assert task.to_public()["error"] is None


def test_a_failed_task_shows_only_code_and_message():
    # Given a failed task with the provider's raw code and words kept for audit
    task = a_task(status=TaskStatus.FAILED, error=ERROR)

    # When it is made public
    public = task.to_public()

    # Then the error has our code and message only, and there is no video
    assert public["error"] == {
        "code": "content_violation",
        "message": "Content does not meet safety guidelines",
    }
    assert public["video"] is None
    assert "CONTENT_VIOLATION" not in str(public)


def test_the_public_object_does_not_share_lists_with_the_task():
    # Given a task with image URLs
    task = a_task(image_urls=["https://img.example/a.png"])

    # When its public object is changed
    task.to_public()["image_urls"].append("https://evil.example")

    # Then the task is not
    assert task.image_urls == ["https://img.example/a.png"]


def test_the_video_key_names_the_task_under_its_family_and_ends_in_mp4():
    # Given a child task in a family
    task = a_task(id="vid_child", root_id="vid_root", parent_id="vid_root")

    # Then its video key contains its id and ends in .mp4
    assert task.video_key == "videos/vid_root/vid_child.mp4"
    assert task.id in task.video_key and task.video_key.endswith(".mp4")


def test_statuses_split_into_open_and_terminal():
    assert {TaskStatus.COMPLETED, TaskStatus.FAILED} == TERMINAL_STATUSES
    assert set(TaskStatus) == OPEN_STATUSES | TERMINAL_STATUSES
    assert not OPEN_STATUSES & TERMINAL_STATUSES
    assert all(s.is_terminal for s in TERMINAL_STATUSES)
    assert not any(s.is_terminal for s in OPEN_STATUSES)


def test_task_ids_are_unique_and_url_safe():
    ids = {new_task_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"vid_[0-9a-f]{24}", i) for i in ids)


def test_timestamps_round_trip_in_utc_with_milliseconds():
    # Given a moment with microseconds
    moment = datetime(2026, 11, 21, 10, 0, 0, 123456, tzinfo=UTC)

    # When it is formatted and parsed back
    text = format_timestamp(moment)

    # Then it is ISO-8601 UTC with milliseconds, and parses back to the millisecond
    assert text == "2026-11-21T10:00:00.123Z"
    assert parse_timestamp(text) == moment.replace(microsecond=123000)
    # And formatted timestamps sort as the moments do (the list index relies on it)
    later = format_timestamp(moment.replace(second=1, microsecond=0))
    assert text < later


def test_every_id_the_service_gives_has_the_task_id_form():
    from veo_relay.idempotency import binding_for

    # Given a random id and one derived from an Idempotency-Key
    binding = binding_for("arn:aws:iam::123456789012:user/alice", "key-1", {"prompt": "a fox"})
    assert binding is not None

    # Then both have the form, so a read of either goes to the table
    assert is_task_id(new_task_id()) and is_task_id(binding.task_id)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "vid_",
        "vid_0123456789abcdef0123456",  # 23 digits
        "vid_0123456789abcdef012345678",  # 25
        "vid_0123456789ABCDEF01234567",  # upper case
        "VID_0123456789abcdef01234567",
        "vid_0123456789abcdef0123456\u0661",  # another script's digit
        "vid_0123456789abcdef01234567\n",
        "vid_" + "a" * 2996,
    ],
)
def test_no_other_string_has_the_task_id_form(value):
    assert not is_task_id(value)
