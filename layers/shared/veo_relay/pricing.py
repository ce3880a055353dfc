"""What a video costs at its provider: the price table (PRICE_TABLE, the template's PriceTable).

Per provider, its prices by mode and resolution, and for a resolution made by an upgrade after the
generation (kie's 1080p and 4K) the upgrade's step on top of the 720p price. A credit-based
provider's entry states what a credit costs (`credit_usd`) and its prices in credits:

    {"apixo": {"modes": {"fast": {"720p": 0.2}}},
     "kie": {"credit_usd": 0.005, "modes": {"fast": {"720p": 60}}, "upgrades": {"4k": 120}}}

Amounts are kept as whole micro-dollars, so that sums and DynamoDB's counters are exact.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from veo_relay.errors import ConfigurationError
from veo_relay.providers.capabilities import DEFAULT_RESOLUTION, Capabilities

MICROS_PER_USD = 1_000_000


def to_micros(usd: Decimal | float | str) -> int:
    """Whole micro-dollars, rounded half up (no price has finer steps)."""
    return int((Decimal(str(usd)) * MICROS_PER_USD).to_integral_value(rounding="ROUND_HALF_UP"))


def to_usd(micros: int) -> float:
    """Micro-dollars as the USD number the API answers (at most six decimals)."""
    return float(Decimal(micros) / MICROS_PER_USD)


@dataclass(frozen=True)
class PriceTable:
    # (provider, mode, resolution) -> micro-dollars, for every combination a provider offers.
    prices: Mapping[tuple[str, str, str], int]

    def price(self, provider: str, mode: str, resolution: str) -> int:
        """The price of one video (a generation or an extension) in micro-dollars."""
        try:
            return self.prices[(provider, mode, resolution)]
        except KeyError:
            raise ConfigurationError(
                f"PRICE_TABLE: no price for {provider} {mode} {resolution}"
            ) from None

    def cheapest(self) -> tuple[int, tuple[str, str, str]]:
        """The lowest price of the table, and the (provider, mode, resolution) it is for."""
        key = min(self.prices, key=lambda k: (self.prices[k], k))
        return self.prices[key], key

    @classmethod
    def parse(cls, raw: str, offered: Mapping[str, Capabilities]) -> PriceTable:
        """The table from its JSON, checked against what each provider in `offered` offers:
        every mode and resolution it takes has a price above zero (so that a budget holds), and
        the table names nothing else (a typo would otherwise price nothing)."""
        try:
            document = json.loads(raw)
        except ValueError:
            raise ConfigurationError("PRICE_TABLE must be JSON") from None
        if not isinstance(document, dict):
            raise ConfigurationError("PRICE_TABLE must be a JSON object of providers")
        prices: dict[tuple[str, str, str], int] = {}
        for provider, capabilities in offered.items():
            entry = document.get(provider)
            if not isinstance(entry, dict):
                raise ConfigurationError(f"PRICE_TABLE: {provider} has no prices")
            prices.update(_provider_prices(provider, entry, capabilities))
        return cls(prices)


def _provider_prices(
    provider: str, entry: dict[str, Any], capabilities: Capabilities
) -> dict[tuple[str, str, str], int]:
    unknown = set(entry) - {"modes", "upgrades", "credit_usd"}
    if unknown:
        raise ConfigurationError(f"PRICE_TABLE: {provider} has unknown keys {sorted(unknown)}")
    unit = Decimal(1)
    if "credit_usd" in entry:
        unit = _amount(f"{provider}.credit_usd", entry["credit_usd"])
    modes = entry.get("modes")
    upgrades = entry.get("upgrades", {})
    if not isinstance(modes, dict) or not isinstance(upgrades, dict):
        raise ConfigurationError(f"PRICE_TABLE: {provider}.modes and .upgrades must be objects")
    for name in set(modes) - set(capabilities.modes):
        raise ConfigurationError(f"PRICE_TABLE: {provider} offers no mode {name!r}")
    for name in set(upgrades) - set(capabilities.upgraded_resolutions):
        raise ConfigurationError(f"PRICE_TABLE: {provider} makes no {name!r} by an upgrade")
    prices = {}
    for mode in capabilities.modes:
        by_resolution = modes.get(mode)
        if not isinstance(by_resolution, dict):
            raise ConfigurationError(f"PRICE_TABLE: {provider}.modes.{mode} has no prices")
        for resolution in capabilities.resolutions_for(mode):
            amount = _resolution_price(provider, mode, resolution, by_resolution, upgrades)
            prices[(provider, mode, resolution)] = to_micros(amount * unit)
    return prices


def _resolution_price(
    provider: str,
    mode: str,
    resolution: str,
    by_resolution: dict[str, Any],
    upgrades: dict[str, Any],
) -> Decimal:
    """The mode's own price at `resolution`, else (for a resolution an upgrade makes) its 720p
    price plus the upgrade's step."""
    where = f"{provider}.modes.{mode}"
    if resolution in by_resolution:
        return _amount(f"{where}.{resolution}", by_resolution[resolution])
    if resolution not in upgrades or DEFAULT_RESOLUTION not in by_resolution:
        raise ConfigurationError(f"PRICE_TABLE: {where}.{resolution} is missing")
    base = _amount(f"{where}.{DEFAULT_RESOLUTION}", by_resolution[DEFAULT_RESOLUTION])
    return base + _amount(f"{provider}.upgrades.{resolution}", upgrades[resolution])


def _amount(where: str, value: Any) -> Decimal:
    """A price: a number above zero (every default is a real price, so that a budget holds)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigurationError(f"PRICE_TABLE: {where} must be a number, got {value!r}")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ConfigurationError(f"PRICE_TABLE: {where} must be a number, got {value!r}") from None
    if not amount.is_finite() or amount <= 0:
        raise ConfigurationError(f"PRICE_TABLE: {where} must be above zero, got {value!r}")
    return amount
