"""1080p and 4K through the stack: kie's upgrades after the generation (by callback, and by the
fallback poller when callbacks never come), apimart's resolution field and its progress; the
stored video is of the resolution asked for (the simulators serve different bytes for each)."""

from __future__ import annotations

import uuid

import pytest

from offline.simulator.apimart import SIMULATED_COST_USD
from offline.simulator.mp4 import resolution_of
from tests.helpers import api_event, response_json, wait_until


def unique(prompt: str) -> str:
    return f"{prompt} #{uuid.uuid4().hex[:8]}"


def stored_resolution(stack, task_id: str) -> str:
    item = stack.item(task_id)
    key = item["video"]["M"]["key"]["S"]
    stored = stack.client("s3").get_object(Bucket=stack.bucket, Key=key)
    assert stored["Metadata"]["resolution"] == item["resolution"]["S"]
    return resolution_of(stored["Body"].read())


def public(stack, task_id: str) -> dict:
    response = stack.invoke("ApiFunction", api_event("api_get_video", path=f"/v1/videos/{task_id}"))
    assert response["statusCode"] == 200, response
    return response_json(response)


@pytest.mark.parametrize(
    "resolution, tags",
    [
        pytest.param("1080p", "", id="1080p"),
        pytest.param("4k", "", id="4k-callback"),
        pytest.param("4k", "[sim:4k-callback=snake]", id="4k-snake-callback"),
    ],
)
def test_kie_upgrades_the_generation_and_stores_the_resolution_asked_for(
    stack, kie, resolution, tags
):
    # Given the copy worker running
    stack.start_queue_pollers()

    # When a kie video is created in that resolution (the generation calls back as usual)
    task = stack.create_task(unique(f"a fox {tags}"), provider="kie", resolution=resolution)
    assert task["resolution"] == resolution

    # Then it stays in progress until the upgrade is made, and completes with it stored
    stack.wait_for_status(task["id"], "completed", timeout=30)
    assert stored_resolution(stack, task["id"]) == resolution
    answer = public(stack, task["id"])
    assert (answer["resolution"], answer["progress"]) == (resolution, None)
    # and the upgrade was asked for once, the 720p result kept on the record for audit
    sim_task = kie.task(task["provider_task_id"])
    assert sim_task.requests_4k == (1 if resolution == "4k" else 0)
    item = stack.item(task["id"])
    assert item["source_video_url"]["S"] == sim_task.video.url
    if resolution == "4k":
        assert item["upgrade_task_id"]["S"] == sim_task.task_id_4k


@pytest.mark.parametrize("resolution", ["1080p", "4k"])
def test_the_poller_finishes_an_upgrade_whose_callbacks_never_come(stack, kie, resolution):
    # Given the copy worker running, and kie never calling back (neither the generation nor
    # the 4K)
    stack.start_queue_pollers()

    # When a video in that resolution is created
    prompt = unique("a fox [sim:no-callback]")
    task = stack.create_task(prompt, provider="kie", resolution=resolution)

    # Then the fallback poller finds the generation done, asks for the upgrade, finds it made,
    # and the copy stores it
    stack.wait_for_status(task["id"], "completed", timeout=40)
    assert stored_resolution(stack, task["id"]) == resolution
    assert kie.task(task["provider_task_id"]).requests_4k == (1 if resolution == "4k" else 0)


@pytest.mark.stack_env(TASK_DEADLINE_SECONDS=6)
def test_an_upgrade_never_ready_ends_failed_at_the_deadline_with_the_720p_url_kept(stack, kie):
    # Given the copy worker running
    stack.start_queue_pollers()

    # When a 1080p video is created whose upgrade never becomes ready
    task = stack.create_task(
        unique("a fox [sim:upgrade-never]"), provider="kie", resolution="1080p"
    )

    # Then the deadline ends it failed for time; the generation's URL stays on the record
    stack.wait_for_status(task["id"], "failed", timeout=30)
    answer = public(stack, task["id"])
    assert answer["error"]["code"] == "timeout" and "1080p" in answer["error"]["message"]
    assert answer["video"] is None
    item = stack.item(task["id"])
    assert item["source_video_url"]["S"] == kie.task(task["provider_task_id"]).video.url
    assert (
        stack.client("s3")
        .list_objects_v2(Bucket=stack.bucket, Prefix=f"videos/{task['root_id']}/")
        .get("KeyCount")
        == 0
    )


def test_a_failed_4k_fails_the_task(stack, kie):
    stack.start_queue_pollers()
    task = stack.create_task(unique("a fox [sim:4k-fail]"), provider="kie", resolution="4k")
    stack.wait_for_status(task["id"], "failed", timeout=30)
    assert public(stack, task["id"])["video"] is None


@pytest.mark.stack_env(APIMART_POLL_FIRST_WAIT_SECONDS=1)
def test_apimart_makes_1080p_itself_and_reports_its_progress(stack, apimart):
    # Given the copy worker running
    stack.start_queue_pollers()

    # When a 1080p apimart video is created that takes a few seconds
    task = stack.create_task(unique("a fox [sim:delay=5]"), provider="apimart", resolution="1080p")

    # Then it costs the price table's figure while it runs (apimart fast 1080p: $0.15)
    assert task["cost"] == {"usd": 0.15, "source": "price_table"}
    # and its object shows apimart's progress
    progress = wait_until(
        lambda: (p := public(stack, task["id"])["progress"]) is not None and p,
        timeout=10,
        what="apimart's progress on the task",
    )
    assert 0 < progress < 100
    # and it completes stored in 1080p, the resolution apimart was asked to render
    stack.wait_for_status(task["id"], "completed", timeout=30)
    assert stored_resolution(stack, task["id"]) == "1080p"
    assert apimart.task(task["provider_task_id"]).video.resolution == "1080p"
    completed = public(stack, task["id"])
    assert completed["progress"] is None
    # and, completed, it costs what apimart's status reported
    assert completed["cost"] == {"usd": SIMULATED_COST_USD, "source": "provider"}


def test_the_capabilities_route_answers_the_table_the_checks_use(stack):
    # When a client asks what the providers can do
    response = stack.invoke("ApiFunction", api_event("api_get_capabilities"))

    # Then each enabled provider is listed, and what is refused is what the table leaves out
    assert response["statusCode"] == 200
    providers = response_json(response)["providers"]
    assert list(providers["apixo"]["resolutions"]) == ["720p"]
    assert list(providers["kie"]["resolutions"]) == ["720p", "1080p", "4k"]
    refused = stack.create_video({"prompt": "a fox", "provider": "apixo", "resolution": "1080p"})
    assert refused["statusCode"] == 422
    assert response_json(refused)["error"]["message"].startswith("resolution:")
