"""The balance reader: each provider with a balance route becomes a ProviderBalance metric; one
that cannot be read is counted and reported, and does not keep the others from being read."""

from __future__ import annotations

import pytest

from tests.fakes import FakeBalance, FakeMetrics, FakeProvider, FakeProviders
from veo_relay.balances import BalanceReader, BalanceReadFailed
from veo_relay.errors import ProviderError
from veo_relay.providers.base import Balance


def reader(**balances: FakeBalance | None) -> tuple[BalanceReader, FakeMetrics]:
    providers = FakeProviders(
        {name: FakeProvider(name=name, balance=route) for name, route in balances.items()}
    )
    metrics = FakeMetrics()
    return BalanceReader(providers, tuple(balances), metrics), metrics


def test_every_provider_with_a_balance_route_is_a_metric_in_its_own_unit():
    # Given two providers with balance routes and one without
    read, metrics = reader(
        apixo=FakeBalance(Balance(12.5, "USD")),
        kie=FakeBalance(Balance(4000, "credits")),
        apimart=None,
    )

    # When the balances are read
    report = read.read_all()

    # Then each route's amount is the metric of its provider, the one without is skipped
    assert metrics.recorded == [
        ("provider_balance", ("apixo", 12.5)),
        ("provider_balance", ("kie", 4000)),
    ]
    assert report.to_dict() == {
        "balances": {
            "apixo": {"amount": 12.5, "unit": "USD"},
            "kie": {"amount": 4000, "unit": "credits"},
        },
        "failures": {},
    }


def test_a_provider_that_fails_is_counted_and_reported_after_the_others_were_read():
    # Given apixo refusing the key and kie answering
    kie = FakeBalance(Balance(150, "credits"))
    read, metrics = reader(
        apixo=FakeBalance(ProviderError("unauthorized", "Invalid or missing API Key")),
        kie=kie,
    )

    # When the balances are read
    with pytest.raises(BalanceReadFailed, match=r"apixo \(unauthorized\)") as raised:
        read.read_all()

    # Then kie's balance was still read and emitted, apixo's failure counted by its code, and
    # the run fails so that it shows
    assert kie.reads == 1
    assert metrics.recorded == [
        ("provider_error", ("apixo", "unauthorized")),
        ("provider_balance", ("kie", 150)),
    ]
    assert raised.value.report.failures == {"apixo": "unauthorized"}
    assert raised.value.report.balances == {"kie": Balance(150, "credits")}


def test_no_provider_with_a_route_reads_nothing_and_succeeds():
    read, metrics = reader(apimart=None)
    assert read.read_all().to_dict() == {"balances": {}, "failures": {}}
    assert metrics.recorded == []


def test_a_balance_is_one_emf_metric_by_provider_without_a_cloudwatch_unit(capsys, monkeypatch):
    import json

    from veo_relay.telemetry import Telemetry

    # Given the function's service name, as Globals set it
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "veo-relay")

    # When a balance is emitted
    Telemetry("VeoRelay").provider_balance("kie", 4000)

    # Then it is one EMF document: ProviderBalance by provider and service (what the alarms
    # watch), its unit None (credits and dollars have no CloudWatch unit)
    document = json.loads(capsys.readouterr().out)
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "VeoRelay"
    assert directive["Metrics"] == [{"Name": "ProviderBalance", "Unit": "None"}]
    assert sorted(directive["Dimensions"][0]) == ["provider", "service"]
    assert (document["provider"], document["service"]) == ("kie", "veo-relay")
    assert document["ProviderBalance"] in (4000, [4000])
