"""`python -m offline` with VEO_RELAY_SIMULATE=true deploys the template as `Simulate=true` would
(checked here without starting anything; tests/e2e/test_simulator_function.py runs it)."""

from __future__ import annotations

from offline.stack import LocalStack, Ports


def test_by_default_the_providers_are_in_process_simulators() -> None:
    stack = LocalStack(Ports(), {})
    assert stack.parameters["Simulate"] == "false"
    assert not stack.simulate
    assert "ProviderSimulatorFunction" not in stack.template.resources
    assert "ProviderSimulatorTable" not in stack.template.resources


def test_simulate_deploys_the_simulator_function_and_its_table() -> None:
    stack = LocalStack(Ports(), {"VEO_RELAY_SIMULATE": "true"})
    assert stack.parameters["Simulate"] == "true"
    assert stack.simulate
    assert {"ProviderSimulatorFunction", "ProviderSimulatorTable"} <= set(stack.template.resources)


def test_the_simulator_function_url_port_can_be_moved() -> None:
    assert Ports().simulator_function == 8700
    ports = Ports.from_env({"VEO_RELAY_SIMULATOR_FUNCTION_PORT": "9700"})
    assert ports.simulator_function == 9700
