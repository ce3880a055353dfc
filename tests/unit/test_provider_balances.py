"""The balance routes: apixo's (`GET /api/v1/apikeys/current-balance`, its body known from a
third-party client only, so read defensively) and kie's (`GET /api/v1/chat/credit`, documented as
`{code, msg, data: <number>}`, reference/providers.md §2.8); apimart documents none. No sockets."""

from __future__ import annotations

import pytest

from tests.unit.test_provider_common import BASE_URL, FakeHttp, http_response
from veo_relay.errors import ProviderError
from veo_relay.providers import build_provider
from veo_relay.providers.apixo import ApixoProvider
from veo_relay.providers.base import Balance
from veo_relay.providers.kie import KieProvider
from veo_relay.providers.registry import SPECS
from veo_relay.settings import ProviderSettings, RateLimit


def apixo_answer(data, code=200, message="success") -> dict:
    return {"code": code, "message": message, "data": data}


def kie_answer(data, code=200, msg="success") -> dict:
    return {"code": code, "msg": msg, "data": data}


def apixo_balance(*responses):
    http = FakeHttp(*responses)
    return ApixoProvider(http).balance.read_balance(), http


def kie_balance(*responses):
    http = FakeHttp(*responses)
    return KieProvider(http).balance.read_balance(), http


# --- apixo --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        12.5,
        "12.5",
        {"balance": 12.5},
        {"balance": "12.50"},
        {"current_balance": 12.5, "currency": "USD"},
        {"currentBalance": 12.5},
    ],
    ids=["number", "numeric-string", "balance", "balance-string", "snake-case", "camel-case"],
)
def test_apixo_reads_its_balance_in_dollars_from_the_shapes_it_may_answer(data):
    # Given apixo's envelope around a balance in any of the plausible shapes
    # When the balance is read
    balance, http = apixo_balance(http_response(200, apixo_answer(data)))

    # Then it is the amount, in dollars, read on the route the third-party client uses
    assert balance == Balance(12.5, "USD")
    assert (http.only_call.method, http.only_call.path) == (
        "GET",
        "/api/v1/apikeys/current-balance",
    )


@pytest.mark.parametrize(
    "data",
    [None, "plenty", True, {"credits_left": "many"}, {}, [12.5], "NaN", {"balance": None}],
    ids=["null", "text", "bool", "no-number", "empty", "list", "nan", "null-balance"],
)
def test_apixo_refuses_a_balance_answer_without_a_balance(data):
    # Given a 200 whose data holds no amount it can tell
    # When the balance is read, Then that is a provider error naming the route's trouble
    with pytest.raises(ProviderError, match="without a balance") as raised:
        apixo_balance(http_response(200, apixo_answer(data)))
    assert raised.value.code == "provider_error"


def test_apixo_refusing_the_key_is_its_refusal():
    # Given apixo refusing the key with a real 401
    # When the balance is read, Then the taxonomy's unauthorized comes back
    with pytest.raises(ProviderError) as raised:
        apixo_balance(http_response(401, apixo_answer(None, 401, "Invalid or missing API Key")))
    assert raised.value.code == "unauthorized"


def test_apixo_answering_html_is_a_provider_error():
    with pytest.raises(ProviderError) as raised:
        apixo_balance(http_response(502, text="<html>Bad gateway</html>"))
    assert raised.value.code == "provider_unavailable"


# --- kie ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [1234, 1234.0, "1234"], ids=["int", "float", "string"])
def test_kie_reads_its_credits_from_the_envelope_data(data):
    # Given kie's documented answer, data the number of credits
    # When the balance is read
    balance, http = kie_balance(http_response(200, kie_answer(data)))

    # Then it is that many credits, read on the documented route
    assert balance == Balance(1234.0, "credits")
    assert (http.only_call.method, http.only_call.path) == ("GET", "/api/v1/chat/credit")


@pytest.mark.parametrize(
    "data",
    [None, {"credits": 12}, "lots", False, "inf"],
    ids=["null", "object", "text", "bool", "inf"],
)
def test_kie_refuses_a_credit_answer_that_is_not_a_number(data):
    with pytest.raises(ProviderError, match="without a number of credits"):
        kie_balance(http_response(200, kie_answer(data)))


def test_kie_refusal_inside_a_200_is_its_refusal():
    # Given kie's way of refusing: HTTP 200, the code in the body
    # When the balance is read, Then the body's code decides
    with pytest.raises(ProviderError) as raised:
        kie_balance(http_response(200, kie_answer(None, 401, "Unauthorized")))
    assert raised.value.code == "unauthorized"


def test_kie_answer_without_an_envelope_code_is_a_provider_error():
    with pytest.raises(ProviderError, match="envelope code"):
        kie_balance(http_response(200, {"data": 5}))


# --- which providers have one ---------------------------------------------------------------------


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
def test_an_adapter_has_a_balance_route_exactly_when_its_spec_declares_a_unit(spec):
    # Given each provider's adapter, as the factory builds it
    settings = ProviderSettings(
        name=spec.name,
        base_url=BASE_URL,
        api_key="k",
        download_origins=frozenset(),
        rate_limit=RateLimit(1, 1),
        first_wait_seconds=1,
    )
    provider = build_provider(settings, api_key=lambda: "k")

    # Then it reads a balance when, and only when, its spec names the balance's unit
    assert (provider.balance is not None) == (spec.balance_unit is not None)


def test_apimart_documents_no_balance_route():
    assert {spec.name for spec in SPECS if spec.balance_unit is None} == {"apimart"}
