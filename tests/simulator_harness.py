"""A provider simulator driven in-process, for unit tests: no socket, a clock the test moves, and
callbacks sent only when the test asks (through the simulator's own delivery path)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from offline.simulator import ProviderSimulator
from offline.simulator.callbacks import CallbackPlan
from offline.simulator.tasks import SimTask
from offline.simulator.web import SimRequest, SimResponse

API_KEY = "sim-key"
ORIGIN = "https://sim.example"
DELAY = 2.0  # the simulators' default task delay, seconds


class FakeClock:
    """Stands in for the `time` module where the simulator reads the clock."""

    def __init__(self) -> None:
        self._now = 1_760_000_000.0

    def time(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds


@dataclass
class Harness:
    simulator: ProviderSimulator
    clock: FakeClock
    scheduled: dict[str, CallbackPlan] = field(default_factory=dict)
    posted: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def call(self, method: str, path: str, body: Any = None, **query: str) -> dict[str, Any]:
        """The JSON body of the simulator's answer."""
        return self.respond(method, path, body, **query).body

    def respond(self, method: str, path: str, body: Any = None, **query: str) -> SimResponse:
        request = SimRequest(
            method=method,
            path=path,
            query=query,
            headers={"authorization": f"Bearer {API_KEY}"},
            body=json.dumps(body).encode() if body is not None else b"",
        )
        return self.simulator.handle(request)

    def deliver_callback(self, task_id: str) -> dict[str, Any]:
        """Sends the callback scheduled for `task_id` now; returns the body that was POSTed."""
        plan = self.scheduled[task_id]
        self.simulator.deliver_callback(
            task_id, plan.url, plan.build_body.__name__, plan.max_attempts
        )
        return self.posted[-1][1]

    def _post(self, url: str, json: dict[str, Any], timeout: float) -> Any:
        self.posted.append((url, json))
        return type("Answer", (), {"status_code": 200})()


def harness_for(provider: str, monkeypatch: pytest.MonkeyPatch) -> Harness:
    clock = FakeClock()
    for module in ("engine", "tasks"):  # where tasks are timed
        monkeypatch.setattr(f"offline.simulator.{module}.time", clock)
    scheduled: dict[str, CallbackPlan] = {}

    def schedule(task: SimTask, plan: CallbackPlan) -> None:
        scheduled[task.task_id] = plan

    simulator = ProviderSimulator.for_provider(
        provider,
        api_key=API_KEY,
        default_delay=DELAY,
        public_base_url=ORIGIN,
        schedule_callback=schedule,
    )
    harness = Harness(simulator, clock, scheduled)
    monkeypatch.setattr("offline.simulator.callbacks.requests.post", harness._post)
    return harness
