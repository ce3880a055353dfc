"""The balance reader's handler, as its schedule invokes it, against moto (its role, the provider
keys secret) and the providers' simulators."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from offline.simulator import ProviderSimulator
from offline.simulator.kie import KieProtocol
from tests.helpers import load_event
from veo_relay.balances import BalanceReadFailed

SCHEDULED = "balance_reader_schedule"


def emf_metrics(printed: str, name: str) -> dict[str, float]:
    """The value of metric `name` by provider, from the EMF documents a run printed."""
    found = {}
    for line in printed.splitlines():
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if isinstance(document, dict) and name in document:
            value = document[name]
            found[document["provider"]] = value[0] if isinstance(value, list) else value
    return found


@pytest.fixture
def low_kie(kie: ProviderSimulator) -> Iterator[ProviderSimulator]:
    """kie's simulator with a low balance, back to its default afterwards (it is shared)."""
    kie.set_balance(5)
    yield kie
    kie.set_balance(KieProtocol.default_balance or 0)


def test_each_providers_balance_is_read_and_emitted_in_its_own_unit(stack, low_kie, capsys):
    # Given apixo's simulator at its default balance and kie's made low
    capsys.readouterr()

    # When the schedule invokes the reader
    result: dict[str, Any] = stack.invoke("BalanceReaderFunction", load_event(SCHEDULED))

    # Then both balances were read, in their units, and apimart (no balance route) was not
    assert result == {
        "balances": {
            "apixo": {"amount": 100.0, "unit": "USD"},
            "kie": {"amount": 5.0, "unit": "credits"},
        },
        "failures": {},
    }
    # And each is a ProviderBalance metric of its provider, what the alarms watch
    assert emf_metrics(capsys.readouterr().out, "ProviderBalance") == {"apixo": 100.0, "kie": 5.0}


def test_a_provider_that_cannot_be_read_fails_the_run_after_the_others(stack, capsys):
    # Given kie unreachable (the stack's default for a provider without its simulator)
    capsys.readouterr()

    # When the schedule invokes the reader, Then the run fails, naming kie
    with pytest.raises(BalanceReadFailed, match=r"kie \(provider_unavailable\)"):
        stack.invoke("BalanceReaderFunction", load_event(SCHEDULED))

    # And apixo's balance was still emitted, kie's failure counted
    printed = capsys.readouterr().out
    assert emf_metrics(printed, "ProviderBalance") == {"apixo": 100.0}
    assert emf_metrics(printed, "ProviderErrors") == {"kie": 1.0}


def test_the_reader_only_reads_the_provider_keys(stack, kie):
    # When the reader runs
    stack.invoke("BalanceReaderFunction", load_event(SCHEDULED))

    # Then its only AWS calls were reads of the provider keys secret, all allowed by its role
    calls = {
        (r["action"], r["resource"], r["allowed"])
        for r in stack.iam_usage()
        if r["principal"] == "BalanceReaderFunction"
    }
    secret = stack.template.names["ProviderKeysSecret"]
    assert calls == {("secretsmanager:GetSecretValue", secret, True)}
