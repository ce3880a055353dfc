"""The rehearsal's own provider: the stack deployed with Simulate=true (offline, as
VEO_RELAY_SIMULATE=true deploys it), whose providers are the simulator function behind its
function URL, with its tasks in DynamoDB and its callbacks sent by a later invocation."""

from __future__ import annotations

import hashlib

import pytest
import requests

from tests.e2e.targets import RunningStack
from veo_relay.providers.registry import PROVIDER_NAMES, spec_of

CLOSED = {"completed", "failed"}


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
def test_a_video_through_the_simulator_function_is_stored(
    simulated_stack: RunningStack, provider: str
) -> None:
    # Given a create on a provider that is the simulator function
    response = simulated_stack.create(
        prompt=f"a lighthouse [sim:size=200000] on {provider}", provider=provider
    )
    assert response.status_code == 202, response.text

    # When it finishes (called back, or polled for a provider without callbacks)
    task = simulated_stack.wait_for_status(response.json()["id"], CLOSED, timeout=90)

    # Then our bucket holds exactly the bytes the function served from its URL
    assert task["status"] == "completed", task
    simulated = simulated_stack.simulator_task(task["provider_task_id"], provider)
    served = requests.get(simulated["video"]["url"], timeout=30).content
    video = task["video"]
    stored = simulated_stack.s3().get_object(Bucket=video["bucket"], Key=video["key"])
    content = stored["Body"].read()
    assert content == served and len(content) == 200000
    assert video["sha256"] == hashlib.sha256(content).hexdigest()
    # and a callback provider was called back once, answered 200
    if spec_of(provider).supports_callbacks:
        assert [c["status_code"] for c in simulated["callbacks"]] == [200]


def test_a_failure_reported_by_the_simulator_function_ends_failed(
    simulated_stack: RunningStack,
) -> None:
    response = simulated_stack.create(prompt="forbidden [sim:fail=CONTENT_VIOLATION]")
    task = simulated_stack.wait_for_status(response.json()["id"], CLOSED, timeout=90)
    assert task["status"] == "failed"
    assert task["error"]["code"] == "content_violation"
