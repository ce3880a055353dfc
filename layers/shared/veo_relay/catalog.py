"""`GET /v1/capabilities`: what each enabled provider can do, from the same capability tables the
request checks and `auto` read (veo_relay.providers.capabilities), with its configured pacing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from veo_relay.ports import Providers
from veo_relay.settings import ProviderSettings


@dataclass(frozen=True)
class ProviderCatalog:
    providers: Providers
    provider_settings: Mapping[str, ProviderSettings]
    # The order `provider: "auto"` tries them in.
    provider_preference: tuple[str, ...]
    default_provider: str

    def capabilities(self) -> dict[str, Any]:
        entries = {}
        for name, settings in self.provider_settings.items():
            provider = self.providers.get(name)
            limit = settings.rate_limit
            entries[name] = provider.capabilities.to_public(
                calls_back=provider.supports_callbacks,
                rate_limit=(limit.requests, limit.window_seconds),
            )
        return {
            "providers": entries,
            "default_provider": self.default_provider,
            "auto_order": list(self.provider_preference),
        }
