"""The simulators' balance routes, in each provider's envelope, and the control that sets what
they answer (POST /_sim/balance): what the balance reader's tests make low."""

from __future__ import annotations

import json

import pytest

from offline.simulator.web import SimRequest
from tests.simulator_harness import harness_for
from tests.unit.test_provider_common import FakeHttp, http_response
from veo_relay.providers.apixo import ApixoBalance
from veo_relay.providers.base import Balance
from veo_relay.providers.kie import KieCredits


def test_apixo_answers_its_balance_in_its_message_envelope(monkeypatch):
    # Given the apixo simulator
    sim = harness_for("apixo", monkeypatch)

    # When its balance route is asked, Then it answers dollars in apixo's envelope
    answer = sim.respond("GET", "/api/v1/apikeys/current-balance")
    assert answer.status == 200
    assert answer.body == {"code": 200, "message": "success", "data": {"balance": 100.0}}


def test_kie_answers_its_credits_as_the_envelope_data(monkeypatch):
    sim = harness_for("kie", monkeypatch)
    answer = sim.respond("GET", "/api/v1/chat/credit")
    assert (answer.status, answer.body) == (200, {"code": 200, "msg": "success", "data": 10000.0})


@pytest.mark.parametrize(
    ("provider", "path", "adapter"),
    [
        ("apixo", "/api/v1/apikeys/current-balance", ApixoBalance),
        ("kie", "/api/v1/chat/credit", KieCredits),
    ],
)
def test_a_balance_set_through_the_control_is_what_the_route_answers(
    provider, path, adapter, monkeypatch
):
    # Given a simulator whose balance a test sets low
    sim = harness_for(provider, monkeypatch)
    status, body = sim.simulator.control_balance(json.dumps({"balance": 3.5}).encode())
    assert (status, body) == (200, {"provider": provider, "balance": 3.5})

    # When its balance route is read by the relay's own adapter's parsing
    answer = sim.respond("GET", path)
    read = adapter(FakeHttp(http_response(answer.status, answer.body))).read_balance()

    # Then the relay reads the low balance
    assert read.amount == 3.5
    assert isinstance(read, Balance)


def test_a_wrong_key_gets_the_providers_refusal_on_the_balance_route(monkeypatch):
    sim = harness_for("kie", monkeypatch)
    request = SimRequest("GET", "/api/v1/chat/credit", {}, {"authorization": "Bearer x"}, b"")
    assert sim.simulator.handle(request).body["code"] == 401


@pytest.mark.parametrize(
    ("provider", "body", "status"),
    [
        ("apimart", {"balance": 1}, 404),
        ("kie", {"balance": "low"}, 400),
        ("kie", {"amount": 1}, 400),
        ("kie", {"balance": True}, 400),
        ("kie", None, 400),
    ],
    ids=["no-route", "text", "no-field", "bool", "no-body"],
)
def test_the_control_refuses_what_is_not_a_balance(provider, body, status, monkeypatch):
    sim = harness_for(provider, monkeypatch)
    raw = json.dumps(body).encode() if body is not None else b""
    assert sim.simulator.control_balance(raw)[0] == status


def test_apimart_has_no_balance_route(monkeypatch):
    sim = harness_for("apimart", monkeypatch)
    assert sim.respond("GET", "/api/v1/chat/credit").status == 404
