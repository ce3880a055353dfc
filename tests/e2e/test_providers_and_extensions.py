"""Every provider through the offline stack: generate, extend, branch, and list a family."""

from __future__ import annotations

import pytest

from tests.e2e.targets import RunningStack
from veo_relay.providers.registry import PROVIDER_NAMES

CLOSED = {"completed", "failed"}


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
def test_generate_then_extend_on_each_provider(stack: RunningStack, provider: str) -> None:
    # Given a completed generation on the provider
    created = stack.create(prompt=f"a harbour at dawn on {provider}", provider=provider)
    assert created.status_code == 202, created.text
    parent = stack.wait_for_status(created.json()["id"], CLOSED, timeout=90)
    assert parent["status"] == "completed", parent
    assert parent["provider"] == provider

    # When the caller extends it
    response = stack.extend(parent["id"], prompt="the boats sail out")

    # Then the child runs on the parent's provider and its own video is stored in the family
    assert response.status_code == 202, response.text
    child = stack.wait_for_status(response.json()["id"], CLOSED, timeout=90)
    assert child["status"] == "completed", child
    assert child["provider"] == provider
    assert child["parent_id"] == parent["id"] and child["root_id"] == parent["root_id"]
    assert child["video"]["key"] == f"videos/{parent['root_id']}/{child['id']}.mp4"
    simulated = stack.simulator_task(child["provider_task_id"], provider)
    assert simulated["kind"] == "extend"
    assert simulated["parent_task_id"] == parent["provider_task_id"]


def test_one_parent_branches_into_two_children_listed_as_one_family(stack: RunningStack) -> None:
    # Given a completed video
    parent = stack.wait_for_status(stack.create(prompt="a forest path").json()["id"], CLOSED)

    # When it is extended twice with different prompts
    first = stack.extend(parent["id"], prompt="a deer crosses").json()
    second = stack.extend(parent["id"], prompt="rain begins").json()
    children = [stack.wait_for_status(c["id"], CLOSED) for c in (first, second)]

    # Then both children complete as separate videos, and the family lists all three
    assert [c["status"] for c in children] == ["completed", "completed"]
    assert children[0]["video"]["key"] != children[1]["video"]["key"]
    family = stack.list(root_id=parent["root_id"]).json()["items"]
    assert {t["id"] for t in family} == {parent["id"], first["id"], second["id"]}
    assert all(t["root_id"] == parent["root_id"] for t in family)
    # and another principal sees none of it
    stack.require_principals("the family's privacy needs another caller")
    assert stack.list(principal="mallory", root_id=parent["root_id"]).json()["items"] == []


def test_an_unfinished_parent_cannot_be_extended(stack: RunningStack) -> None:
    # Given a video still being generated
    parent = stack.create(prompt="a slow sunset [sim:delay=30]").json()

    # When the caller tries to extend it
    response = stack.extend(parent["id"], prompt="night falls")

    # Then it is a conflict, and no child exists
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"
    family = stack.list(root_id=parent["root_id"]).json()["items"]
    assert [t["id"] for t in family] == [parent["id"]]


def test_auto_takes_the_first_provider_that_accepts(stack: RunningStack) -> None:
    # Given provider "auto" (preference apixo, kie, apimart)
    response = stack.create(prompt="a lantern festival", provider="auto")

    # Then the task records which provider took it, and it completes there
    task = stack.wait_for_status(response.json()["id"], CLOSED)
    assert task["status"] == "completed"
    assert task["provider"] == "apixo"


def test_a_provider_rule_is_checked_before_anything_is_spent(stack: RunningStack) -> None:
    # Given kie, whose seeds run from 10000 to 99999
    before = len(stack.simulator_state("kie")["submissions"])

    # When a request carries a seed outside that range
    response = stack.create(prompt="a comet", provider="kie", seed=7)

    # Then it is refused naming the field and the rule, and kie saw nothing
    assert response.status_code == 422
    assert "seed" in response.json()["error"]["message"]
    assert "10000" in response.json()["error"]["message"]
    assert len(stack.simulator_state("kie")["submissions"]) == before
