"""Provider adapters, one module per provider behind `Provider`."""

from __future__ import annotations

from collections.abc import Callable

from veo_relay.providers.base import Provider
from veo_relay.providers.http import ProviderHttp
from veo_relay.settings import ProviderSettings


def build_provider(settings: ProviderSettings, api_key: Callable[[], str | None]) -> Provider:
    http = ProviderHttp(settings.base_url, api_key)
    if settings.name == "apixo":
        from veo_relay.providers.apixo import ApixoProvider

        return ApixoProvider(http)
    raise ValueError(f"unknown provider {settings.name!r}")
