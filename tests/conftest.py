"""Hooks for every suite."""

from __future__ import annotations

import pytest


def pytest_sessionfinish(session: pytest.Session) -> None:
    """`make least-privilege`: this run's IAM decisions go to its report (nothing otherwise)."""
    from offline.iam import write_usage
    from offline.isolation import deployed_roles

    write_usage(deployed_roles())
