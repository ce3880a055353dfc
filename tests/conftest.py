"""Hooks for every suite."""

from __future__ import annotations

import time

import pytest

# Each suite's share of CI's 15 minutes: printed after the run, so a suite that grows slow is seen
# before it crowds the others out. Never a failure (how fast is for `make bench`, not for tests).
SUITE_BUDGET_SECONDS = {"unit": 90, "integration": 360, "e2e": 420}
_started = time.monotonic()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """`make least-privilege`: this run's IAM decisions go to its report (nothing otherwise)."""
    from offline.iam import write_usage
    from offline.isolation import deployed_roles

    write_usage(deployed_roles())


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    reports = [r for key in ("passed", "failed") for r in terminalreporter.stats.get(key, [])]
    suites = {r.nodeid.split("/")[1] for r in reports if r.nodeid.startswith("tests/")}
    if len(suites) != 1 or (suite := suites.pop()) not in SUITE_BUDGET_SECONDS:
        return
    took = time.monotonic() - _started
    budget = SUITE_BUDGET_SECONDS[suite]
    verdict = "within" if took <= budget else "OVER"
    terminalreporter.write_line(f"{suite}: {took:.0f} s, {verdict} its budget of {budget} s")
