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
    from veo_relay.secret_values import SecretValues
    from veo_relay.settings import ProviderAccess, ProviderSettings


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


class ProviderDirectory:
    """The adapters of one function (veo_relay.ports.Providers), each built at its first use,
    its keys read through the function's secrets cache on every request."""

    def __init__(self, access: ProviderAccess, secrets: SecretValues) -> None:
        self._access = access
        self._secrets = secrets
        self._built: dict[str, Provider] = {}

    def get(self, name: str) -> Provider:
        if name not in self._built:
            settings = self._access.providers[name]
            self._built[name] = build_provider(
                settings,
                api_key=lambda: settings.api_key or self._api_key(name),
                callback_key=lambda: self._callback_key(name),
            )
        return self._built[name]

    def _api_key(self, name: str) -> str | None:
        # Settings make sure a function that calls providers has the secret or every *_API_KEY.
        arn = self._access.keys_secret_arn
        return self._secrets.entry(arn, name) if arn else None

    def _callback_key(self, name: str) -> str | None:
        arn = self._access.callback_keys_secret_arn
        return self._secrets.entry(arn, name) if arn else None
