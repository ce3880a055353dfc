"""The copy worker against moto and the simulator: confirm with the provider, store in S3."""

from __future__ import annotations

import hashlib

import pytest

from tests.helpers import api_event, copy_request_event, load_event, response_json

pytestmark = pytest.mark.stack_env(POLL_FIRST_WAIT_SECONDS=600)


@pytest.fixture
def no_retry_backoff(monkeypatch):
    """Status reads are still retried, without the seconds of backoff between tries."""
    from veo_relay.providers import http

    monkeypatch.setattr(http, "_STATUS_RETRY", http._STATUS_RETRY.new(backoff_factor=0))


def finished_task(stack, prompt: str, state: str = "succeeded") -> dict:
    """A task whose provider side has ended (without calling back)."""
    task = stack.create_task(f"{prompt} [sim:no-callback]")
    sim_id = task["provider_task_id"]
    stack.simulator.wait_for(lambda: stack.simulator.task(sim_id).state == state, timeout=10)
    return task


def test_copies_the_video_into_s3_and_completes_the_task(stack):
    # Given a task that the provider finished, with a 300 kB video
    task = finished_task(stack, "a fox [sim:size=300000]")
    sim_id = task["provider_task_id"]

    # When the copy worker handles the sample SQS event, with the task id patched in
    event = load_event("copy_request")
    event["Records"][0]["body"] = copy_request_event(task["id"])["Records"][0]["body"]
    result = stack.invoke("CopyWorkerFunction", event)

    # Then no record failed, and the task is completed with its stored video
    assert result == {"batchItemFailures": []}
    item = stack.item(task["id"])
    assert item["status"]["S"] == "completed"
    assert item["completed_at"]["S"] >= item["created_at"]["S"]
    video = {k: next(iter(v.values())) for k, v in item["video"]["M"].items()}
    assert video["bucket"] == stack.bucket
    assert task["id"] in video["key"] and video["key"].endswith(".mp4")
    assert int(video["size_bytes"]) == 300000
    assert video["content_type"] == "video/mp4"
    assert video["sha256"] == stack.simulator.video_sha256(sim_id)

    # And the object in S3 holds exactly the provider's bytes
    stored = stack.client("s3").get_object(Bucket=stack.bucket, Key=video["key"])
    data = stored["Body"].read()
    assert len(data) == 300000
    assert hashlib.sha256(data).hexdigest() == stack.simulator.video_sha256(sim_id)
    assert stored["ContentType"] == "video/mp4"
    assert stored["Metadata"]["task-id"] == task["id"]

    # And the owner now reads the task object with its video and a download URL
    response = stack.invoke(
        "ApiFunction", api_event("api_get_video", path=f"/v1/videos/{task['id']}")
    )
    public = response_json(response)
    assert public["status"] == "completed" and public["error"] is None
    assert set(public["video"]) == {
        "bucket",
        "key",
        "size_bytes",
        "sha256",
        "content_type",
        "download_url",
    }
    assert public["video"]["size_bytes"] == 300000
    assert public["video"]["sha256"] == video["sha256"]
    assert video["key"] in public["video"]["download_url"]
    assert public["completed_at"] is not None


def test_copying_a_completed_task_again_is_a_no_op(stack):
    # Given a task whose video is already stored
    task = finished_task(stack, "a fox")
    assert stack.copy(task["id"]) == {"batchItemFailures": []}
    item_before = stack.item(task["id"])
    key = item_before["video"]["M"]["key"]["S"]
    object_before = stack.client("s3").head_object(Bucket=stack.bucket, Key=key)
    reads_before = stack.simulator.task(task["provider_task_id"]).status_reads

    # When a second copy request for it arrives
    result = stack.copy(task["id"])

    # Then it succeeds without asking the provider, rewriting S3 or touching the task
    assert result == {"batchItemFailures": []}
    assert stack.item(task["id"]) == item_before
    object_after = stack.client("s3").head_object(Bucket=stack.bucket, Key=key)
    assert object_after["LastModified"] == object_before["LastModified"]
    assert object_after["ETag"] == object_before["ETag"]
    assert stack.simulator.task(task["provider_task_id"]).status_reads == reads_before


def test_a_provider_failure_fails_the_task_with_our_code(stack):
    # Given a task that the provider rejected for its content
    task = finished_task(stack, "a fox [sim:fail=CONTENT_VIOLATION]", state="failed")

    # When the copy worker confirms it
    result = stack.copy(task["id"])

    # Then the task is failed with the shared taxonomy's code, keeping the provider's words
    assert result == {"batchItemFailures": []}
    item = stack.item(task["id"])
    assert item["status"]["S"] == "failed"
    error = {k: v["S"] for k, v in item["error"]["M"].items()}
    assert error["code"] == "content_violation"
    assert error["provider_code"] == "CONTENT_VIOLATION"
    assert error["provider_message"] == "Content does not meet safety guidelines"
    assert "video" not in item
    assert stack.client("s3").list_objects_v2(Bucket=stack.bucket).get("KeyCount", 0) == 0

    # And the owner sees {code, message} and no video
    response = stack.invoke(
        "ApiFunction", api_event("api_get_video", path=f"/v1/videos/{task['id']}")
    )
    public = response_json(response)
    assert public["status"] == "failed"
    assert public["video"] is None
    assert set(public["error"]) == {"code", "message"}
    assert public["error"]["code"] == "content_violation"
    # (in our words: the provider's are on the record only, for audit)
    assert "safety guidelines" not in response["body"]


def test_a_task_still_running_is_left_to_the_poller(stack):
    # Given a task the provider has not finished
    task = stack.create_task("a slow fox [sim:no-callback] [sim:delay=60]")

    # When a copy request for it arrives
    result = stack.copy(task["id"])

    # Then the message is consumed and the task stays open
    assert result == {"batchItemFailures": []}
    assert stack.status(task["id"]) == "in_progress"


def test_transient_status_errors_are_retried(stack, no_retry_backoff):
    # Given a finished task whose status endpoint first answers 500 and 503
    task = finished_task(stack, "a fox [sim:status-errors=2]")

    # When the copy worker handles it
    result = stack.copy(task["id"])

    # Then it got through and stored the video
    assert result == {"batchItemFailures": []}
    assert stack.status(task["id"]) == "completed"
    assert stack.simulator.task(task["provider_task_id"]).status_reads >= 3


def test_a_record_that_hits_provider_trouble_goes_back_to_the_queue_alone(stack, no_retry_backoff):
    # Given a batch with a finished task and one whose status endpoint keeps answering 5xx
    good = finished_task(stack, "a fox")
    troubled = finished_task(stack, "a fox [sim:status-errors=100]")
    event = copy_request_event(good["id"], troubled["id"])

    # When the copy worker handles the batch
    result = stack.invoke("CopyWorkerFunction", event)

    # Then only the troubled record is reported for redelivery, and it stays open
    assert result == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]}
    assert stack.status(good["id"]) == "completed"
    assert stack.status(troubled["id"]) == "in_progress"
