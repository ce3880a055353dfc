"""An Idempotency-Key binds to its task through the id, derived from the owner and the key."""

from __future__ import annotations

import re

import pytest

from tests.helpers import ALICE, BOB
from veo_relay.errors import TaskConflict
from veo_relay.idempotency import binding_for, repeated_by
from veo_relay.tasks import Task, TaskStatus, new_task_id

REQUEST = {"kind": "create", "prompt": "a fox", "image_urls": ("https://img.example.com/a.png",)}


def task_for(owner: str, request_hash: str | None) -> Task:
    return Task(
        id="vid_x",
        owner=owner,
        status=TaskStatus.QUEUED,
        provider="apixo",
        prompt="a fox",
        mode="fast",
        generation_type="TEXT_2_VIDEO",
        aspect_ratio="16:9",
        root_id="vid_x",
        created_at="2026-11-21T10:00:00.000Z",
        updated_at="2026-11-21T10:00:00.000Z",
        request_hash=request_hash,
    )


def test_no_key_no_binding():
    assert binding_for(ALICE, None, REQUEST) is None


def test_a_key_names_one_task_id_per_owner():
    # Given one key used twice by one owner, and once by another
    first = binding_for(ALICE, "k-1", REQUEST)
    again = binding_for(ALICE, "k-1", dict(REQUEST))
    bobs = binding_for(BOB, "k-1", REQUEST)
    assert first and again and bobs

    # Then the owner's repeat names the same task, the other owner's another one
    assert first == again
    assert bobs.task_id != first.task_id
    # And another key is another task
    assert binding_for(ALICE, "k-2", REQUEST).task_id != first.task_id  # type: ignore[union-attr]


def test_the_id_has_the_shape_of_every_task_id():
    binding = binding_for(ALICE, "k-1", REQUEST)
    assert binding and re.fullmatch(r"vid_[0-9a-f]{24}", binding.task_id)
    assert re.fullmatch(r"vid_[0-9a-f]{24}", new_task_id())


def test_owner_and_key_cannot_run_into_each_other():
    # Given an owner/key pair whose concatenation equals another's
    one = binding_for("arn:a", ":b", REQUEST)
    two = binding_for("arn:a:", "b", REQUEST)

    # Then they are two bindings
    assert one and two and one.task_id != two.task_id


def test_the_request_hash_follows_the_request_not_its_key_order():
    binding = binding_for(ALICE, "k-1", REQUEST)
    reordered = binding_for(ALICE, "k-1", dict(reversed(list(REQUEST.items()))))
    other_body = binding_for(ALICE, "k-1", {**REQUEST, "prompt": "a cat"})
    assert binding and reordered and other_body
    assert reordered.request_hash == binding.request_hash
    assert other_body.request_hash != binding.request_hash
    assert other_body.task_id == binding.task_id  # the same key: the same task, hence a conflict


def test_a_repeat_of_the_same_request_gets_the_task():
    binding = binding_for(ALICE, "k-1", REQUEST)
    assert binding
    task = task_for(ALICE, binding.request_hash)
    assert repeated_by(task, ALICE, binding.request_hash) is task


@pytest.mark.parametrize(
    ("owner", "stored_hash", "asked_hash"),
    [
        (ALICE, "h-1", "h-2"),  # another body under the key
        (BOB, "h-1", "h-1"),  # another owner's task (never reached: ids are per owner)
        (ALICE, None, "h-1"),  # a task created without a key
        (ALICE, "h-1", None),  # a request without one
    ],
    ids=["other-body", "other-owner", "unkeyed-task", "unkeyed-request"],
)
def test_anything_else_is_a_conflict(owner, stored_hash, asked_hash):
    task = task_for(owner, stored_hash)
    with pytest.raises(TaskConflict, match="Idempotency-Key"):
        repeated_by(task, ALICE, asked_hash)
