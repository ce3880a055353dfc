"""DELETE /v1/videos/{id} and POST /v1/videos/{id}/cancel through the API handler, against moto
and the simulator (with the template's IAM), and the copy worker's retention TTL."""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import UTC, datetime

import pytest
import requests

from tests.helpers import ALICE, BOB, api_event, load_event, response_json

# The background poller would otherwise read the provider while these tests look at the task.
pytestmark = pytest.mark.stack_env(POLL_FIRST_WAIT_SECONDS=600)


@pytest.fixture
def published(monkeypatch):
    """Each event put on our bus (and put for real, under the API function's role)."""
    from veo_relay.video_events import VideoEvents

    sent: list[tuple[str, dict]] = []
    real = VideoEvents.publish

    def recording(self, detail_type, task):
        sent.append((detail_type, task))
        return real(self, detail_type, task)

    monkeypatch.setattr(VideoEvents, "publish", recording)
    return sent


@pytest.fixture
def tickets(monkeypatch):
    """The submit queue's tickets, as sent."""
    from veo_relay.queues import SubmitQueue

    sent: list[dict] = []
    real = SubmitQueue.request_submit

    def recording(self, ticket, slot_at):
        sent.append({**dataclasses.asdict(ticket), "slot_at": slot_at})
        return real(self, ticket, slot_at)

    monkeypatch.setattr(SubmitQueue, "request_submit", recording)
    return sent


def delete(stack, task_id: str, principal: str = ALICE) -> dict:
    event = api_event("api_delete_video", path=f"/v1/videos/{task_id}", principal=principal)
    return stack.invoke("ApiFunction", event)


def cancel(stack, task_id: str, principal: str = ALICE) -> dict:
    event = api_event("api_cancel_video", path=f"/v1/videos/{task_id}/cancel", principal=principal)
    event["pathParameters"] = {"id": task_id}
    return stack.invoke("ApiFunction", event)


def get(stack, task_id: str) -> dict:
    return stack.invoke("ApiFunction", api_event("api_get_video", path=f"/v1/videos/{task_id}"))


def completed_task(stack, prompt: str) -> dict:
    """A task the provider finished and the copy worker stored (with its manifest)."""
    task = stack.create_task(f"{prompt} [sim:no-callback]")
    sim_id = task["provider_task_id"]
    stack.simulator.wait_for(lambda: stack.simulator.task(sim_id).state == "succeeded", timeout=10)
    assert stack.copy(task["id"]) == {"batchItemFailures": []}
    public = response_json(get(stack, task["id"]))
    assert public["status"] == "completed", public
    return public


def object_keys(stack) -> set[str]:
    listed = stack.client("s3").list_objects_v2(Bucket=stack.bucket)
    return {o["Key"] for o in listed.get("Contents", [])}


def test_delete_removes_the_video_and_its_manifest_and_announces_it(stack, published):
    # Given a stored video (with its manifest) and an extension of it, kept apart in S3
    task = completed_task(stack, "a lighthouse")
    key = task["video"]["key"]
    manifest = key.removesuffix(".mp4") + ".json"
    assert {key, manifest} <= object_keys(stack)

    # When its owner deletes it
    response = delete(stack, task["id"])

    # Then the answer is 204 without a body, and both objects are gone for good
    assert response["statusCode"] == 204, response
    assert not response.get("body")
    assert not {key, manifest} & object_keys(stack)
    # And the task is 404 and absent from the list
    assert get(stack, task["id"])["statusCode"] == 404
    listed = response_json(stack.invoke("ApiFunction", api_event("api_list_videos")))
    assert task["id"] not in [t["id"] for t in listed["items"]]
    # And Video Deleted went on our bus with the task as it was, without a download URL
    deleted = [t for kind, t in published if kind == "Video Deleted"]
    assert [t["id"] for t in deleted] == [task["id"]]
    assert deleted[0]["video"] == {**task["video"], "download_url": None}
    # And the record keeps no prompt nor video; a second DELETE is 404
    item = stack.item(task["id"])
    assert item["prompt"] == {"S": ""} and "video" not in item and "deleted_at" in item
    assert delete(stack, task["id"])["statusCode"] == 404


def test_delete_of_a_task_in_flight_is_409_and_of_anothers_404(stack):
    # Given a task the provider is still working on
    task = stack.create_task("a slow sunrise [sim:no-callback] [sim:delay=60]")

    # Then its deletion is refused while it is in flight, and another principal's is 404
    conflict = delete(stack, task["id"])
    assert conflict["statusCode"] == 409, conflict
    assert response_json(conflict)["error"]["code"] == "conflict"
    assert delete(stack, task["id"], principal=BOB)["statusCode"] == 404
    assert delete(stack, "vid_" + "0" * 24)["statusCode"] == 404
    assert "deletion_requested_at" not in stack.item(task["id"])


def test_a_cancelled_tasks_submit_message_is_a_no_op(stack, tickets):
    # Given a task queued behind the minute's only apixo submit slot
    stack.set_env(APIXO_RATE_LIMIT="1/60")
    stack.create_task("first fox")
    submitted_before = len(stack.simulator.submissions())
    queued = stack.create_task("second fox")
    assert queued["status"] == "queued"
    ticket = tickets[-1]
    assert ticket["task_id"] == queued["id"]

    # When its owner cancels it
    response = cancel(stack, queued["id"])

    # Then it is failed with code cancelled
    assert response["statusCode"] == 200, response
    body = response_json(response)
    assert body["status"] == "failed" and body["error"]["code"] == "cancelled"
    # And when its slot comes, the submit worker's message submits nothing
    event = load_event("submit_request")
    event["Records"][0]["body"] = json.dumps({**ticket, "slot_at": time.time()})
    assert stack.invoke("SubmitWorkerFunction", event) == {"batchItemFailures": []}
    assert len(stack.simulator.submissions()) == submitted_before
    item = stack.item(queued["id"])
    assert item["status"]["S"] == "failed" and "submit_claimed_at" not in item


def test_cancel_once_the_provider_has_the_task_is_409_saying_so(stack):
    task = stack.create_task("a fox already submitted [sim:no-callback]")

    response = cancel(stack, task["id"])

    assert response["statusCode"] == 409, response
    assert "the provider already has" in response_json(response)["error"]["message"]
    assert stack.status(task["id"]) == task["status"]


def test_a_completion_under_a_retention_gives_the_record_its_ttl(stack):
    # Given a deployment that keeps videos 7 days
    stack.set_env(VIDEO_RETENTION_DAYS="7")

    # When a video is stored
    task = completed_task(stack, "a short-lived fox")

    # Then its record expires 7 days after its completion, as the bucket's rule expires the video
    expires_at = int(stack.item(task["id"])["expires_at"]["N"])
    completed_at = datetime.strptime(task["completed_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    expected = completed_at.replace(tzinfo=UTC).timestamp() + 7 * 86400
    assert abs(expires_at - expected) < 60


@pytest.mark.parametrize("query", ["limit=", "limit"])
def test_an_empty_limit_through_the_gateway_is_422_naming_it(stack, query):
    # Given `?limit=` as a client sends it: API Gateway hands the function an empty value
    response = requests.get(f"{stack.api.url}/v1/videos?{query}", timeout=10)

    # Then it is refused, naming the parameter, not taken for the default
    assert response.status_code == 422, response.text
    assert response.json()["error"]["message"].startswith("limit:")
