"""The price table: the template's defaults price everything each provider offers, above zero;
a table that would leave something unpriced, or priced at nothing, is refused naming it."""

from __future__ import annotations

import json

import pytest

from tests.fakes import default_prices
from veo_relay.errors import ConfigurationError
from veo_relay.pricing import PriceTable, to_micros, to_usd
from veo_relay.providers.capabilities import Capabilities
from veo_relay.providers.registry import SPECS

KIE_LIKE = Capabilities(
    modes=("fast", "lite"),
    resolutions=("720p", "1080p", "4k"),
    upgraded_resolutions=("1080p", "4k"),
    mode_resolutions={"lite": ("720p", "1080p")},
)
KIE_TABLE = {
    "credit_usd": 0.005,
    "modes": {"fast": {"720p": 60}, "lite": {"720p": 30}},
    "upgrades": {"1080p": 5, "4k": 120},
}


def parse(table: dict, capabilities: Capabilities = KIE_LIKE) -> PriceTable:
    return PriceTable.parse(json.dumps({"kie": table}), {"kie": capabilities})


def refusal(table: dict) -> str:
    with pytest.raises(ConfigurationError) as refused:
        parse(table)
    return str(refused.value)


def test_the_default_table_prices_every_offered_video_above_zero():
    # Given the template's default table
    prices = default_prices()

    # Then every mode and resolution each provider offers has a price, and each is above zero
    for spec in SPECS:
        for mode in spec.capabilities.modes:
            for resolution in spec.capabilities.resolutions_for(mode):
                assert prices.price(spec.name, mode, resolution) > 0, (spec.name, mode, resolution)


def test_the_defaults_are_the_providers_public_prices():
    prices = default_prices()
    # apixo's pricing page: fast $0.20, quality $1.50 a video
    assert to_usd(prices.price("apixo", "fast", "720p")) == 0.20
    assert to_usd(prices.price("apixo", "quality", "720p")) == 1.50
    # kie: 60 credits for Veo 3.1 Fast at $0.005 a credit; its 4K upgrade 120 credits more
    assert to_usd(prices.price("kie", "fast", "720p")) == 0.30
    assert to_usd(prices.price("kie", "fast", "4k")) == 0.90
    # The cheapest video of all: kie's lite at 720p
    micros, _ = prices.cheapest()
    assert to_usd(micros) == 0.15


def test_a_credit_price_turns_credits_into_dollars_and_upgrades_add_their_step():
    prices = parse(KIE_TABLE)
    assert prices.price("kie", "fast", "720p") == 300_000
    assert prices.price("kie", "lite", "1080p") == 175_000  # (30 + 5) credits
    assert prices.price("kie", "fast", "4k") == 900_000  # (60 + 120) credits


def test_a_resolution_priced_in_its_mode_needs_no_upgrade_step():
    table = {
        "modes": {
            "fast": {"720p": 0.1, "1080p": 0.2, "4k": 0.4},
            "lite": {"720p": 0.05, "1080p": 0.1},
        }
    }
    assert parse(table).price("kie", "fast", "4k") == 400_000


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"modes": {"fast": {"720p": 0}, "lite": {"720p": 30}}}, "kie.modes.fast.720p"),
        ({"modes": {"fast": {"720p": -1}, "lite": {"720p": 30}}}, "kie.modes.fast.720p"),
        ({"modes": {"fast": {"720p": "cheap"}, "lite": {"720p": 30}}}, "kie.modes.fast.720p"),
        ({"modes": {"fast": {"720p": 60}}}, "kie.modes.lite"),
        ({"upgrades": {"1080p": 5}}, "kie.modes.fast.4k"),
        ({"upgrades": {"1080p": 5, "4k": 0}}, "kie.upgrades.4k"),
        ({"credit_usd": 0}, "kie.credit_usd"),
        ({"modes": {**KIE_TABLE["modes"], "quality": {"720p": 250}}}, "'quality'"),
        ({"upgrades": {"1080p": 5, "4k": 120, "8k": 1}}, "'8k'"),
        ({"discount": 0.5}, "discount"),
    ],
)
def test_a_table_that_leaves_a_video_unpriced_or_free_is_refused_naming_it(change, named):
    assert named in refusal({**KIE_TABLE, **change})


def test_a_provider_missing_from_the_table_is_refused():
    with pytest.raises(ConfigurationError, match="apixo has no prices"):
        PriceTable.parse(json.dumps({"kie": KIE_TABLE}), {"kie": KIE_LIKE, "apixo": Capabilities()})


def test_a_table_that_is_not_json_is_refused():
    with pytest.raises(ConfigurationError, match="PRICE_TABLE must be JSON"):
        PriceTable.parse("{apixo:", {"kie": KIE_LIKE})


def test_amounts_are_exact_micro_dollars():
    assert to_micros(0.1) + to_micros(0.2) == to_micros(0.3)
    assert to_micros("0.0000005") == 1  # half a micro-dollar rounds up
    assert to_usd(150_000) == 0.15
