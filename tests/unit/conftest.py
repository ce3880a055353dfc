"""Unit tests run without sockets: a test that would reach the network (or moto in server mode,
or a local HTTP server) belongs to the integration suite."""

from __future__ import annotations

import pytest

from tests.helpers import forbid_sockets


@pytest.fixture(autouse=True)
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    forbid_sockets(monkeypatch)
