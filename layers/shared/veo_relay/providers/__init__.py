"""Provider adapters, one module per provider behind `Provider`.

Each adapter module is imported only when its provider is first used, so a cold start pays for
one provider at most; the HTTP transport (requests) too, so that a function importing `base` for
its types (the copy worker, the API's reads) does not load it at all until it calls a provider.
"""

from __future__ import annotations

from collections.abc import Callable

from veo_relay.providers.base import Provider
from veo_relay.settings import ProviderSettings


def build_provider(
    settings: ProviderSettings,
    api_key: Callable[[], str | None],
    callback_key: Callable[[], str | None] = lambda: None,
) -> Provider:
    """`api_key` is called for each request to the provider, `callback_key` for each callback
    (kie's signing key): both read through the secrets cache, so a rotation is seen."""
    from veo_relay.providers.http import ProviderHttp

    http = ProviderHttp(settings.base_url, api_key)
    if settings.name == "apixo":
        from veo_relay.providers.apixo import ApixoProvider

        return ApixoProvider(http)
    if settings.name == "kie":
        from veo_relay.providers.kie import KieProvider

        return KieProvider(http, webhook_hmac_key=callback_key)
    if settings.name == "apimart":
        from veo_relay.providers.apimart import ApimartProvider

        return ApimartProvider(http)
    raise ValueError(f"unknown provider {settings.name!r}")
