"""Unit tests run without sockets: a test that would reach the network (or moto in server mode,
or a local HTTP server) belongs to the integration suite."""

from __future__ import annotations

import pytest
from aws_lambda_powertools import Logger

from tests.helpers import forbid_sockets


@pytest.fixture(autouse=True)
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    forbid_sockets(monkeypatch)


@pytest.fixture(autouse=True, scope="session")
def function_logger() -> Logger:
    """The Logger each handler makes: the parent the layer's child loggers need to log with."""
    from veo_relay.copying import logger

    return Logger(service=logger.service, level="WARNING")
