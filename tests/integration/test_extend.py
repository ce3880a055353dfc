"""POST /v1/videos/{id}/extend through the API handler: a child on its parent's provider."""

from __future__ import annotations

import json

import pytest

from tests.helpers import ALICE, BOB, api_event, header, load_event, response_json

pytestmark = pytest.mark.stack_env(POLL_FIRST_WAIT_SECONDS=600)


def completed_task(stack, prompt: str = "a fox") -> dict:
    task = stack.create_task(f"{prompt} [sim:no-callback]")
    sim_id = task["provider_task_id"]
    stack.simulator.wait_for(lambda: stack.simulator.task(sim_id).state == "succeeded")
    assert stack.copy(task["id"]) == {"batchItemFailures": []}
    assert stack.status(task["id"]) == "completed"
    return task


def extend(stack, parent_id: str, body: dict | None = None, principal: str = ALICE) -> dict:
    event = api_event(
        "api_extend_video", path=f"/v1/videos/{parent_id}/extend", principal=principal, body=body
    )
    event["pathParameters"] = {"id": parent_id}
    return stack.invoke("ApiFunction", event)


def test_extending_a_completed_video_creates_a_child_on_the_same_provider(stack):
    # Given a completed video
    parent = completed_task(stack)

    # When its owner extends it with the sample body
    response = extend(stack, parent["id"])

    # Then a child task is accepted, in the parent's family, on the parent's provider
    assert response["statusCode"] == 202, response
    child = response_json(response)
    assert header(response, "Location") == f"/v1/videos/{child['id']}"
    assert child["id"] != parent["id"]
    assert child["parent_id"] == parent["id"]
    assert child["root_id"] == parent["root_id"]
    assert child["provider"] == "apixo"
    assert child["status"] in ("in_progress", "storing")  # storing once the callback came
    assert child["prompt"] == json.loads(load_event("api_extend_video")["body"])["prompt"]

    # And the provider was asked to extend the parent's provider task
    sim_child = stack.simulator.task(child["provider_task_id"])
    assert sim_child.kind == "extend"
    assert sim_child.parent_task_id == parent["provider_task_id"]

    # And the child's video is stored in the family's folder once the provider is done
    stack.simulator.wait_for(lambda: stack.simulator.task(sim_child.task_id).state == "succeeded")
    stack.wait_for_status(child["id"], "storing")  # its callback came and took the copy's lease
    assert stack.copy(child["id"]) == {"batchItemFailures": []}
    item = stack.item(child["id"])
    assert item["status"]["S"] == "completed"
    assert item["video"]["M"]["key"]["S"] == f"videos/{parent['root_id']}/{child['id']}.mp4"
    assert item["video"]["M"]["sha256"]["S"] == stack.simulator.video_sha256(sim_child.task_id)

    # And the family can be listed by its root
    listed = stack.invoke(
        "ApiFunction", api_event("api_list_videos", query={"root_id": parent["root_id"]})
    )
    assert {t["id"] for t in response_json(listed)["items"]} == {parent["id"], child["id"]}


def test_extending_a_video_that_is_not_completed_is_a_409(stack):
    # Given a video still being generated
    parent = stack.create_task("a slow fox [sim:no-callback] [sim:delay=60]")

    # When its owner tries to extend it
    response = extend(stack, parent["id"], {"prompt": "more"})

    # Then it is a conflict, and nothing was created
    assert response["statusCode"] == 409
    assert response_json(response)["error"]["code"] == "conflict"
    assert len(stack.task_items()) == 1


def test_extending_someone_elses_video_is_a_404(stack):
    # Given alice's completed video
    parent = completed_task(stack)

    # When bob tries to extend it
    response = extend(stack, parent["id"], {"prompt": "mine now"}, principal=BOB)

    # Then for him it does not exist
    assert response["statusCode"] == 404
    assert response_json(response)["error"]["code"] == "not_found"


def test_extending_an_unknown_video_is_a_404(stack):
    response = extend(stack, "vid_000000000000000000000000", {"prompt": "more"})
    assert response["statusCode"] == 404


def test_a_video_is_extended_in_its_own_mode_where_the_provider_keeps_the_parents_model(
    stack, apimart
):
    # Given a completed video made in fast mode on apimart, whose extensions (remixes) run on the
    # model the parent was made with
    parent = stack.create_task("a fox", provider="apimart", mode="fast")
    sim_id = parent["provider_task_id"]
    apimart.wait_for(lambda: apimart.task(sim_id).state == "succeeded")
    assert stack.copy(parent["id"]) == {"batchItemFailures": []}
    assert stack.status(parent["id"]) == "completed"

    # When its owner asks for an extension in quality mode
    response = extend(stack, parent["id"], {"prompt": "more", "mode": "quality"})

    # Then it is refused naming the mode and the parent's, and nothing was created
    assert response["statusCode"] == 422, response
    assert response_json(response)["error"]["message"] == (
        "mode: apimart extends a video with its own model; the parent was made in fast mode"
    )
    assert len(stack.task_items()) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "prompt"),
        ({"prompt": "more", "aspect_ratio": "9:16"}, "aspect_ratio"),
        ({"prompt": "more", "mode": "turbo"}, "mode"),
    ],
    ids=["missing-prompt", "unknown-field", "bad-mode"],
)
def test_invalid_extend_bodies_are_422_naming_the_field(stack, body, field):
    response = extend(stack, "vid_000000000000000000000000", body)
    assert response["statusCode"] == 422
    assert response_json(response)["error"]["message"].startswith(f"{field}:")


class LostAnswers:
    """While `active`, apixo gets each submit but its answer never comes back (a read timeout)."""

    active = True


@pytest.fixture
def lost_submit_answers(monkeypatch):
    import requests

    from veo_relay.providers import http

    switch = LostAnswers()
    real_post = http.ProviderHttp.post

    def post(self, path, body, deadline=None):
        response = real_post(self, path, body, deadline)
        if not switch.active:
            return response
        # What ProviderHttp.post makes of a ReadTimeout: the outcome is unknown.
        raise http._outcome_unknown(requests.ReadTimeout("the answer was lost"))

    monkeypatch.setattr(http.ProviderHttp, "post", post)
    return switch


def test_a_callback_recovers_a_task_whose_submit_answer_was_lost(stack, lost_submit_answers):
    # Given a create whose submit reached apixo but whose answer was lost
    stack.start_queue_pollers()
    response = stack.create_video({"prompt": "a fox"})

    # Then the task waits (it is never submitted twice), with its fallback poller running
    assert response["statusCode"] == 202, response
    task = response_json(response)
    assert task["status"] == "queued" and task["provider_task_id"] is None
    sfn = stack.client("stepfunctions")
    assert (
        sfn.describe_execution(executionArn=stack.execution_arn(task["id"]))["name"] == (task["id"])
    )

    # When apixo calls back on the task's own URL, the task learns its provider id and completes
    stack.wait_for_status(task["id"], "completed", timeout=10)
    item = stack.item(task["id"])
    sim_task = stack.simulator.task(item["provider_task_id"]["S"])
    assert sim_task.callback_url.startswith(f"{stack.api.url}/v1/callbacks/apixo/{task['id']}.")
    assert [s.task_id for s in stack.simulator.submissions()].count(sim_task.task_id) == 1


def test_a_video_recovered_by_its_callback_can_be_extended(stack, lost_submit_answers):
    # Given a completed video whose submit answer was lost and recovered by the callback
    stack.start_queue_pollers()
    task = response_json(stack.create_video({"prompt": "a fox"}))
    stack.wait_for_status(task["id"], "completed", timeout=10)

    # When its owner extends it, with submit answers arriving normally again
    lost_submit_answers.active = False
    response = extend(stack, task["id"], {"prompt": "more"})

    # Then the child is accepted
    assert response["statusCode"] == 202, response
