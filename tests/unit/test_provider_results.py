"""A task's result at its provider (veo_relay.provider_results): the generation's status, then,
for a resolution made by an upgrade, the upgrade's, asked for once."""

from __future__ import annotations

import pytest

from tests.fakes import (
    FakeProviders,
    FakeTasks,
    FakeUpgrades,
    failed,
    make_task,
    results_of,
    succeeded,
)
from veo_relay.errors import ProviderError
from veo_relay.providers.base import ProviderState, ProviderStatus, UpgradeStarted
from veo_relay.providers.registry import spec_of
from veo_relay.tasks import TaskStatus

URL_720 = "https://tempfile.aiquickdraw.com/v/720.mp4"
URL_4K = "https://tempfile.aiquickdraw.com/v/4k.mp4"
TASK_ID = "vid_" + "b" * 24


def kie_world(resolution: str = "4k", **fields: object):
    tasks = FakeTasks(
        make_task(
            TaskStatus.IN_PROGRESS,
            id=TASK_ID,
            provider="kie",
            resolution=resolution,
            callback_base_url="https://relay.example",
            **fields,
        )
    )
    providers = FakeProviders()
    kie = providers.get("kie")
    kie.capabilities = spec_of("kie").capabilities
    kie.upgrades = FakeUpgrades()
    return tasks, providers, kie


def test_a_720p_task_reads_its_generation_only():
    tasks, providers, kie = kie_world(resolution="720p")
    kie.statuses = [succeeded(URL_720)]
    status = results_of(tasks, providers).read(tasks.get(TASK_ID))
    assert status.state is ProviderState.SUCCEEDED and status.video_urls == (URL_720,)
    assert kie.upgrades is not None and kie.upgrades.starts == []


def test_a_finished_generation_starts_its_upgrade_once_with_the_tasks_callback_url():
    # Given a 4K task whose 720p generation has succeeded
    tasks, providers, kie = kie_world()
    kie.statuses = [succeeded(URL_720)]
    results = results_of(tasks, providers)

    # When its result is read, and read again
    first = results.read(tasks.get(TASK_ID))
    second = results.read(tasks.get(TASK_ID))

    # Then the upgrade was asked for once, with the URL of the task's latest submit, its task
    # and the 720p video recorded; both reads say the video is being upgraded
    assert first.state is second.state is ProviderState.UPGRADING
    assert kie.upgrades is not None
    [(provider_task_id, resolution, callback_url)] = kie.upgrades.starts
    assert (provider_task_id, resolution) == ("provider-task-1", "4k")
    assert callback_url is not None
    assert callback_url.startswith(f"https://relay.example/v1/callbacks/kie/{TASK_ID}.1.")
    task = tasks.get(TASK_ID)
    assert task.upgrade_task_id == "upgrade-task-1"
    assert task.source_video_url == URL_720 and task.upgrade_started_at is not None
    # and the second read asked the upgrade, not the generation again
    assert kie.status_reads == ["provider-task-1"]
    assert kie.upgrades.reads == [("provider-task-1", "4k", "upgrade-task-1")]


def test_a_finished_upgrade_is_the_tasks_result():
    tasks, providers, kie = kie_world(upgrade_started_at="2026-12-02T10:00:00.000Z")
    assert kie.upgrades is not None
    kie.upgrades.statuses = [succeeded(URL_4K)]
    status = results_of(tasks, providers).read(tasks.get(TASK_ID))
    assert status.state is ProviderState.SUCCEEDED and status.video_urls == (URL_4K,)


def test_a_generation_still_running_starts_nothing():
    tasks, providers, kie = kie_world()
    kie.statuses = [ProviderStatus(ProviderState.RUNNING)]
    assert results_of(tasks, providers).read(tasks.get(TASK_ID)).state is ProviderState.RUNNING
    assert kie.upgrades is not None and kie.upgrades.starts == []


def test_a_failed_generation_is_the_tasks_failure():
    tasks, providers, kie = kie_world()
    kie.statuses = [failed()]
    assert results_of(tasks, providers).read(tasks.get(TASK_ID)).state is ProviderState.FAILED


def test_an_upgrade_the_provider_refused_for_sure_is_asked_for_again_later():
    # Given an upgrade start that kie refused (429: nothing started)
    tasks, providers, kie = kie_world()
    kie.statuses = [succeeded(URL_720)]
    assert kie.upgrades is not None
    kie.upgrades.started = ProviderError(
        "rate_limited", "429", retryable=True, created_nothing=True
    )

    # When the result is read, Then the refusal is raised and the upgrade may be asked again
    with pytest.raises(ProviderError):
        results_of(tasks, providers).read(tasks.get(TASK_ID))
    assert tasks.get(TASK_ID).upgrade_started_at is None


def test_an_upgrade_whose_answer_was_lost_is_never_asked_for_again():
    # Given an upgrade start whose answer was lost (the 4K may exist, and cost credits)
    tasks, providers, kie = kie_world()
    kie.statuses = [succeeded(URL_720)]
    assert kie.upgrades is not None
    kie.upgrades.started = ProviderError("timeout", "read timed out", retryable=True)

    with pytest.raises(ProviderError):
        results_of(tasks, providers).read(tasks.get(TASK_ID))

    # Then the task keeps its claim: later reads ask the upgrade (its callback names its task)
    task = tasks.get(TASK_ID)
    assert task.upgrade_started_at is not None and task.upgrade_task_id is None
    results_of(tasks, providers).read(task)
    assert kie.upgrades.reads == [("provider-task-1", "4k", None)] and len(kie.upgrades.starts) == 1


def test_a_1080p_ready_at_once_is_the_result():
    tasks, providers, kie = kie_world(resolution="1080p")
    kie.statuses = [succeeded(URL_720)]
    assert kie.upgrades is not None
    kie.upgrades.started = UpgradeStarted(
        None, succeeded("https://tempfile.aiquickdraw.com/p/1.mp4")
    )
    status = results_of(tasks, providers).read(tasks.get(TASK_ID))
    assert status.state is ProviderState.SUCCEEDED
    assert tasks.get(TASK_ID).upgrade_task_id is None
