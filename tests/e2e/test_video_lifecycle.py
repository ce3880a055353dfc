"""A video from request to S3 through the offline stack, over HTTP only."""

from __future__ import annotations

import hashlib
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from tests.e2e.targets import RunningStack


def _stored_object_bytes(stack: RunningStack, task: dict) -> bytes:
    video = task["video"]
    return stack.s3().get_object(Bucket=video["bucket"], Key=video["key"])["Body"].read()


def test_happy_path_stores_the_providers_bytes_in_s3(stack: RunningStack) -> None:
    # Given a request for a 300 KB video
    response = stack.create(prompt="a lighthouse in a storm [sim:size=300000]")

    # When the provider finishes and calls back
    assert response.status_code == 202, response.text
    created = response.json()
    assert response.headers["Location"] == f"/v1/videos/{created['id']}"
    task = stack.wait_for_status(created["id"], {"completed", "failed"})

    # Then the task is completed and our bucket holds exactly the provider's bytes
    assert task["status"] == "completed", task
    provider_bytes = requests.get(
        stack.simulator_task(task["provider_task_id"])["video"]["url"], timeout=30
    ).content
    stored = _stored_object_bytes(stack, task)
    assert stored == provider_bytes
    assert task["video"]["size_bytes"] == 300000
    assert task["video"]["sha256"] == hashlib.sha256(stored).hexdigest()
    assert task["video"]["content_type"] == "video/mp4"
    assert task["id"] in task["video"]["key"] and task["video"]["key"].endswith(".mp4")
    # and the presigned download URL serves the same bytes
    assert requests.get(task["video"]["download_url"], timeout=30).content == stored


def test_provider_failure_ends_failed_with_its_code(stack: RunningStack) -> None:
    # Given a prompt the provider rejects for its content
    created = stack.create(prompt="something forbidden [sim:fail=CONTENT_VIOLATION]").json()

    # When the provider reports the failure
    task = stack.wait_for_status(created["id"], {"completed", "failed"})

    # Then the task failed with the shared taxonomy's code and nothing was stored
    assert task["status"] == "failed"
    assert task["error"]["code"] == "content_violation"
    assert task["video"] is None


def test_missing_callback_is_finished_by_the_state_machine(stack: RunningStack) -> None:
    # Given a provider that never calls back
    created = stack.create(prompt="a quiet pond [sim:no-callback]").json()

    # When only the fallback poller can notice the result
    task = stack.wait_for_status(created["id"], {"completed", "failed"}, timeout=90)

    # Then the video is stored anyway, and no callback was ever sent
    assert task["status"] == "completed", task
    simulated = stack.simulator_task(task["provider_task_id"])
    assert simulated["callbacks"] == []
    assert simulated["status_reads"] >= 1
    assert _stored_object_bytes(stack, task)


def test_duplicate_callbacks_produce_one_object(stack: RunningStack) -> None:
    # Given a provider that sends the same callback three times
    created = stack.create(prompt="three identical knocks [sim:duplicate-callback]").json()

    # When all three arrive
    task = stack.wait_for_status(created["id"], {"completed", "failed"})
    deadline = time.monotonic() + 30  # the first may complete the task before the others leave
    while len((simulated := stack.simulator_task(task["provider_task_id"]))["callbacks"]) < 3:
        assert time.monotonic() < deadline, simulated["callbacks"]
        time.sleep(0.2)

    # Then all were answered 200, and the family folder holds exactly one object
    assert task["status"] == "completed"
    assert len(simulated["callbacks"]) == 3
    assert all(c["status_code"] == 200 for c in simulated["callbacks"])
    listing = stack.s3().list_objects_v2(
        Bucket=task["video"]["bucket"], Prefix=f"videos/{task['root_id']}/"
    )
    key = task["video"]["key"]
    assert [o["Key"] for o in listing["Contents"]] == [key.removesuffix(".mp4") + ".json", key]


def test_bad_input_gets_a_4xx_naming_the_field(stack: RunningStack) -> None:
    # Given a request with an unsupported aspect ratio
    response = stack.create(prompt="a cat", aspect_ratio="1:1")

    # Then it is refused before anything is spent, naming the field
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"
    assert "aspect_ratio" in response.json()["error"]["message"]


def test_another_principal_cannot_see_the_task(stack: RunningStack) -> None:
    stack.require_principals("the test needs an owner and another caller")
    # Given a task created by one principal
    created = stack.create(prompt="a private video", principal="alice").json()

    # When another principal asks for it
    response = stack.get(created["id"], principal="mallory")

    # Then it does not exist for them
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_two_sessions_of_one_role_named_in_x_local_principal_share_their_tasks(
    stack: RunningStack,
) -> None:
    # Given a task created by a role's session, named by its ARN as API Gateway would
    role = "arn:aws:sts::123456789012:assumed-role/e2e-renderer"
    created = stack.create(prompt="a shared video", principal=f"{role}/first-session").json()

    # When a later session of the same role asks for it
    response = stack.get(created["id"], principal=f"{role}/second-session")

    # Then it is the same owner's task
    assert response.status_code == 200, response.text
    assert response.json()["id"] == created["id"]


def test_a_repeated_create_with_the_same_idempotency_key_spends_nothing(
    stack: RunningStack,
) -> None:
    # Given a create sent with an Idempotency-Key
    body = {"prompt": "a kite over the dunes [sim:size=2048]"}
    # Unique per run: a deployed stack remembers keys across runs.
    headers = {"Idempotency-Key": f"kite-{uuid.uuid4().hex}"}
    first = stack.request("POST", "/v1/videos", json=body, headers=headers)
    submissions = len(stack.simulator_state()["submissions"])

    # When the client repeats it (a retry after a lost answer)
    again = stack.request("POST", "/v1/videos", json=body, headers=headers)

    # Then it gets the same task back and the provider saw no second submit
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json()["id"] == first.json()["id"]
    assert len(stack.simulator_state()["submissions"]) == submissions

    # And the same key with another body is a conflict
    other = stack.request("POST", "/v1/videos", json={"prompt": "another"}, headers=headers)
    assert other.status_code == 409
    assert "Idempotency-Key" in other.json()["error"]["message"]


def test_a_body_too_large_is_413(stack: RunningStack) -> None:
    # Given a body far above any valid request
    response = stack.create(prompt="x" * 100_000)

    # Then it is refused as too large, in the one error shape
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_concurrent_repeats_of_one_idempotency_key_pay_once(stack: RunningStack) -> None:
    # Given eight identical creates with one Idempotency-Key, sent at once
    body = {"prompt": "eight knocks at once [sim:size=2048]"}
    headers = {"Idempotency-Key": f"knock-knock-{uuid.uuid4().hex}"}
    before = len(stack.simulator_state()["submissions"])

    def send(_: int) -> requests.Response:
        return stack.request("POST", "/v1/videos", json=body, headers=headers, timeout=60)

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(send, range(8)))

    # Then each gets the one task or a 409 (still in progress), never a 5xx
    assert {r.status_code for r in responses} <= {202, 409}
    ids = {r.json()["id"] for r in responses if r.status_code == 202}
    assert len(ids) == 1
    conflicts = [r.json()["error"]["code"] for r in responses if r.status_code == 409]
    assert set(conflicts) <= {"conflict"}
    # and the provider was asked once
    assert len(stack.simulator_state()["submissions"]) == before + 1


def test_a_deleted_video_is_gone_and_its_extension_stays(stack: RunningStack) -> None:
    # Given a stored video and a stored extension of it
    parent = stack.create(prompt="a harbour at dusk [sim:size=2048]").json()
    parent = stack.wait_for_status(parent["id"], {"completed", "failed"})
    assert parent["status"] == "completed", parent
    child = stack.extend(parent["id"], prompt="the lights come on").json()
    child = stack.wait_for_status(child["id"], {"completed", "failed"})
    assert child["status"] == "completed", child

    # When the parent is deleted
    response = stack.request("DELETE", f"/v1/videos/{parent['id']}")

    # Then it is 204, its video and manifest are gone, and it is 404 and unlisted from then on
    assert response.status_code == 204, response.text
    assert response.content == b""
    key = parent["video"]["key"]
    s3 = stack.s3()
    for gone in (key, key.removesuffix(".mp4") + ".json"):
        assert "Contents" not in s3.list_objects_v2(Bucket=parent["video"]["bucket"], Prefix=gone)
    assert stack.get(parent["id"]).status_code == 404
    assert stack.request("DELETE", f"/v1/videos/{parent['id']}").status_code == 404
    family = stack.list(root_id=parent["id"]).json()["items"]
    assert [t["id"] for t in family] == [child["id"]]
    # and the extension is still whole: readable, and its bytes in the bucket
    kept = stack.get(child["id"]).json()
    assert kept["status"] == "completed" and kept["parent_id"] == parent["id"]
    assert _stored_object_bytes(stack, kept)


def test_a_task_in_flight_cannot_be_deleted(stack: RunningStack) -> None:
    # Given a task the provider is still working on
    task = stack.create(prompt="a slow glacier [sim:delay=30] [sim:no-callback]").json()

    # Then deleting it is a conflict, and it goes on
    response = stack.request("DELETE", f"/v1/videos/{task['id']}")
    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "conflict"
    assert stack.get(task["id"]).json()["status"] in ("queued", "in_progress")


def test_a_queued_task_is_cancelled_before_the_provider_hears_of_it(
    paced_stack: RunningStack,
) -> None:
    # Given two apimart tasks, the second waiting for the next submit slot, ten minutes away
    marker = uuid.uuid4().hex
    first = paced_stack.create(
        prompt=f"first {marker} [sim:delay=60] [sim:no-callback]", provider="apimart"
    ).json()
    second = paced_stack.create(prompt=f"second {marker}", provider="apimart").json()
    assert second["status"] == "queued", second
    # (both hold their price against the month: apimart fast, $0.15 each)
    assert usage(paced_stack)["reserved_usd"] == pytest.approx(0.30)

    # When its owner cancels it
    response = paced_stack.request("POST", f"/v1/videos/{second['id']}/cancel")

    # Then it is failed with code cancelled, as GET shows it from then on
    assert response.status_code == 200, response.text
    cancelled = response.json()
    assert cancelled["status"] == "failed"
    assert cancelled["error"]["code"] == "cancelled"
    assert paced_stack.get(second["id"]).json()["error"]["code"] == "cancelled"
    # and the provider never saw it, while it has the first, which can no longer be cancelled
    prompts = [t["prompt"] for t in paced_stack.simulator_state("apimart")["tasks"]]
    assert any(f"first {marker}" in p for p in prompts)
    assert not any(f"second {marker}" in p for p in prompts)
    refused = paced_stack.request("POST", f"/v1/videos/{first['id']}/cancel")
    assert refused.status_code == 409, refused.text
    assert "the provider already has" in refused.json()["error"]["message"]
    # And the cancelled one costs nothing: its reservation is released (by its settlement, from
    # the table's stream, a moment later), while the first's still holds
    assert cancelled["cost"] == {"usd": 0.0, "source": "price_table"}
    deadline = time.monotonic() + 10
    while (month := usage(paced_stack))["reserved_usd"] != pytest.approx(0.15):
        assert time.monotonic() < deadline, month
        time.sleep(0.2)
    assert month["spent_usd"] == 0 and month["tasks"]["failed"] == 1


def usage(stack: RunningStack) -> dict[str, Any]:
    response = stack.request("GET", "/v1/usage")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]
