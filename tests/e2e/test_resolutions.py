"""1080p, 4K and kie's lite tier through the offline stack, and GET /v1/capabilities agreeing with
what a create accepts. Short simulator delays: an upgrade takes its generation's delay again."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests

from offline.simulator.mp4 import resolution_of
from tests.e2e.targets import RunningStack
from veo_relay.providers.capabilities import RESOLUTIONS
from veo_relay.providers.registry import PROVIDER_NAMES
from veo_relay.tasks import parse_timestamp

CLOSED = {"completed", "failed"}
QUICK = "[sim:delay=1]"


def _capabilities(stack: RunningStack) -> dict[str, Any]:
    response = stack.request("GET", "/v1/capabilities")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _completed(stack: RunningStack, **body: Any) -> dict[str, Any]:
    created = stack.create(**body)
    assert created.status_code == 202, created.text
    task = stack.wait_for_status(created.json()["id"], CLOSED, timeout=90)
    assert task["status"] == "completed", task
    return task


def _stored_resolutions(stack: RunningStack, task: dict[str, Any]) -> dict[str, str]:
    """The resolution the stored video's bytes, its S3 metadata and its manifest each say."""
    video = task["video"]
    downloaded = requests.get(video["download_url"], timeout=30).content
    head = stack.s3().head_object(Bucket=video["bucket"], Key=video["key"])
    manifest_key = video["key"].removesuffix(".mp4") + ".json"
    manifest = stack.s3().get_object(Bucket=video["bucket"], Key=manifest_key)["Body"].read()
    return {
        "bytes": resolution_of(downloaded),
        "metadata": head["Metadata"]["resolution"],
        "manifest": json.loads(manifest)["resolution"],
    }


def _submissions(stack: RunningStack, provider: str) -> int:
    return len(stack.simulator_state(provider)["submissions"])


def _assert_refused_naming(response: requests.Response, field: str) -> None:
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_request"
    assert response.json()["error"]["message"].startswith(f"{field}:"), response.text


@pytest.mark.parametrize("resolution", ["1080p", "4k"])
def test_kie_upgrades_its_720p_generation_and_stores_the_requested_resolution(
    stack: RunningStack, resolution: str
) -> None:
    # Given a kie task asking for more than the 720p its generation makes
    # When it runs to the end
    task = _completed(
        stack, prompt=f"a glacier at {resolution} {QUICK}", provider="kie", resolution=resolution
    )

    # Then the task says the resolution, and the stored video is of it, bytes and labels alike
    assert task["resolution"] == resolution
    assert set(_stored_resolutions(stack, task).values()) == {resolution}
    # and kie generated 720p, then made the upgrade, which the task waited for before completing
    kie = stack.simulator_state("kie")["tasks"]
    generation = next(t for t in kie if t["task_id"] == task["provider_task_id"])
    upgrade = next(
        t
        for t in kie
        if t["parent_task_id"] == generation["task_id"] and t["kind"].startswith("upgrade")
    )
    assert generation["video"]["resolution"] == "720p"
    assert upgrade["video"]["resolution"] == resolution
    assert parse_timestamp(task["completed_at"]).timestamp() >= upgrade["finishes_at"]
    if resolution == "4k":  # a 4K costs credits of its own: asked for once
        asked = [r for r in generation["upgrade_requests"] if r["resolution"] == "4k"]
        assert len(asked) == 1, generation["upgrade_requests"]


def test_apimart_generates_1080p_and_reports_progress_on_the_way(stack: RunningStack) -> None:
    # Given an apimart task at 1080p, long enough for a poll or two before it finishes
    created = stack.create(
        prompt="a city at night [sim:delay=6]", provider="apimart", resolution="1080p"
    ).json()

    # When it is followed to the end
    progress_seen = set()
    deadline = time.monotonic() + 90
    while (task := stack.get(created["id"]).json())["status"] not in CLOSED:
        assert time.monotonic() < deadline, task
        if task["progress"] is not None:
            progress_seen.add(task["progress"])
        time.sleep(0.25)

    # Then apimart's progress showed while it ran, and its own 1080p video was stored
    assert task["status"] == "completed", task
    assert progress_seen and all(0 <= p <= 100 for p in progress_seen), progress_seen
    assert task["progress"] is None
    assert task["resolution"] == "1080p"
    assert set(_stored_resolutions(stack, task).values()) == {"1080p"}
    simulated = stack.simulator_task(task["provider_task_id"], "apimart")
    assert simulated["video"]["resolution"] == "1080p"  # asked for in the request itself


@pytest.mark.parametrize("resolution", ["1080p", "4k"])
def test_apixo_refuses_more_than_720p_before_submitting(
    stack: RunningStack, resolution: str
) -> None:
    # Given apixo, which documents no resolution option
    before = _submissions(stack, "apixo")

    # When a create asks it for more than 720p
    response = stack.create(prompt="a meadow", provider="apixo", resolution=resolution)

    # Then it is refused naming the field, and apixo saw nothing
    _assert_refused_naming(response, "resolution")
    assert _submissions(stack, "apixo") == before


@pytest.mark.parametrize("provider", ["apixo", "apimart"])
def test_lite_is_refused_where_it_is_not_offered(stack: RunningStack, provider: str) -> None:
    # Given a provider without kie's lite tier
    before = _submissions(stack, provider)

    # When a create asks for lite there
    response = stack.create(prompt="a meadow", provider=provider, mode="lite")

    # Then it is refused naming the mode, before anything is submitted
    _assert_refused_naming(response, "mode")
    assert _submissions(stack, provider) == before


def test_a_lite_video_on_kie_is_stored_but_cannot_be_extended(stack: RunningStack) -> None:
    # Given a completed lite video on kie
    task = _completed(stack, prompt=f"a paper lantern {QUICK}", provider="kie", mode="lite")
    assert task["mode"] == "lite"
    assert stack.simulator_task(task["provider_task_id"], "kie")["model"] == "veo3_lite"
    video = task["video"]
    assert stack.s3().head_object(Bucket=video["bucket"], Key=video["key"])["ContentLength"] > 0
    before = _submissions(stack, "kie")

    # When the caller tries to extend it
    response = stack.extend(task["id"], prompt="the lantern drifts away")

    # Then it is refused naming the parent, and kie saw no extend
    _assert_refused_naming(response, "id")
    assert _submissions(stack, "kie") == before


def test_auto_takes_the_first_provider_that_offers_the_resolution(stack: RunningStack) -> None:
    # Given the auto order, whose first provider (apixo) makes 720p only
    catalog = _capabilities(stack)
    order = catalog["auto_order"]
    assert "1080p" not in catalog["providers"][order[0]]["resolutions"]
    expected = next(p for p in order if "1080p" in catalog["providers"][p]["resolutions"])

    # When a create asks auto for 1080p
    task = _completed(stack, prompt=f"a kite festival {QUICK}", provider="auto", resolution="1080p")

    # Then the first provider that can make it took it, and stored 1080p
    assert task["provider"] == expected
    assert set(_stored_resolutions(stack, task).values()) == {"1080p"}


def test_capabilities_list_each_provider_as_its_creates_are_checked(stack: RunningStack) -> None:
    # When the caller asks what the providers can do
    catalog = _capabilities(stack)

    # Then there is one entry per enabled provider, apixo's resolutions being 720p alone
    providers = catalog["providers"]
    assert set(providers) == set(PROVIDER_NAMES)
    assert catalog["default_provider"] in providers
    assert set(catalog["auto_order"]) <= set(providers)
    assert list(providers["apixo"]["resolutions"]) == ["720p"]
    # and a create on a provider takes each resolution it lists (in a mode listed for it), and
    # refuses, naming the field, each one it does not
    accepted = []
    for name, entry in providers.items():
        for resolution in RESOLUTIONS:
            offered = entry["resolutions"].get(resolution)
            response = stack.create(
                prompt=f"a tide pool {QUICK}",
                provider=name,
                resolution=resolution,
                mode=offered["modes"][0] if offered else "fast",
            )
            if offered:
                assert response.status_code == 202, (name, resolution, response.text)
                accepted.append(response.json()["id"])
            else:
                _assert_refused_naming(response, "resolution")
    # Submitted before the next test counts a simulator's submissions.
    for task_id in accepted:
        task = stack.wait_for_status(task_id, {"in_progress", "storing", *CLOSED})
        assert task["status"] != "queued", task
