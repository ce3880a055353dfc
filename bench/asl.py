"""Counting a Step Functions execution, for `make bench` and test_state_machine.py alike.

A state transition is one StateEntered event; a Lambda invocation is one TaskScheduled event of
resource type "lambda" (one per attempt) or one legacy LambdaFunctionScheduled event. The least a
definition allows is its shortest error-free run to a Succeed state through exactly `polls`
Lambda task states (Catch edges left out: they are taken only after an error).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any


def transitions(history: Sequence[Mapping[str, Any]]) -> int:
    return sum(1 for event in history if "stateEnteredEventDetails" in event)


def lambda_invocations(history: Sequence[Mapping[str, Any]]) -> int:
    legacy = sum(1 for e in history if e["type"] == "LambdaFunctionScheduled")
    scheduled = sum(
        1
        for e in history
        if e["type"] == "TaskScheduled"
        and e["taskScheduledEventDetails"]["resourceType"] == "lambda"
    )
    return legacy + scheduled


def minimum_path(definition: dict[str, Any], polls: int) -> tuple[int, int]:
    """(state transitions, Lambda invocations) of the shortest run entering `polls` Lambda states
    (breadth first over (state, Lambda states entered so far))."""
    states = definition["States"]

    def is_lambda(name: str) -> bool:
        return "lambda:invoke" in states[name].get("Resource", "")

    def successors(name: str) -> list[str]:
        state = states[name]
        found = [state[k] for k in ("Next", "Default") if k in state]
        return found + [choice["Next"] for choice in state.get("Choices", [])]

    start = definition["StartAt"]
    queue = deque([(start, int(is_lambda(start)), 1)])
    seen = set()
    while queue:
        name, lambdas, entered = queue.popleft()
        if (name, lambdas) in seen or lambdas > polls:
            continue
        seen.add((name, lambdas))
        if states[name]["Type"] == "Succeed" and lambdas == polls:
            return entered, lambdas
        for following in successors(name):
            queue.append((following, lambdas + int(is_lambda(following)), entered + 1))
    raise ValueError(f"no run of the definition enters a Lambda state {polls} times")
