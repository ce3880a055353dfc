"""Provider adapters, one module per provider behind `Provider`, each built by the factory its
spec declares (veo_relay.providers.registry).

Each adapter module is imported only when its provider is first used, so a cold start pays for
one provider at most; the HTTP transport (requests) too, so that a function importing `base` for
its types (the copy worker, the API's reads) does not load it at all until it calls a provider.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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
    from veo_relay.providers.registry import spec_of

    spec = spec_of(settings.name)
    return spec.build_adapter(ProviderHttp(settings.base_url, api_key), callback_key)
