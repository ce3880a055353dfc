"""What the relay knows of a provider before it talks to it: one `ProviderSpec` per provider
(`veo_relay.providers.specs.<name>`), listed in `veo_relay.providers.registry`.

A spec module imports nothing but this one: settings, the API's request models and the offline
stack read the registry at import, and the adapter (with requests) loads only when its factory
runs, when the provider is first used.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from veo_relay.providers.base import Provider
    from veo_relay.providers.http import ProviderHttp


@dataclass(frozen=True)
class ProviderRules:
    """What the provider accepts, checked before any credit is spent."""

    reference_requires_fast: bool = True
    reference_requires_16_9: bool = True
    seed_range: tuple[int, int] = (0, 4294967295)
    max_prompt_length: int = 10000
    # False when the provider's API has no seed field, so a requested seed cannot be honoured.
    accepts_seed: bool = True
    accepts_watermark: bool = True
    # False when only a generated video, not an extension, can be extended again.
    extends_extensions: bool = True
    # True when an extension runs on its parent's model, so it cannot change the parent's mode.
    extension_keeps_mode: bool = False


# Builds the adapter on the transport to the provider's base URL. The second argument reads the
# key the provider's callbacks are signed with (None: unsigned), for an adapter that checks one.
AdapterFactory = Callable[["ProviderHttp", Callable[[], str | None]], "Provider"]

# A name is a URL path segment (/v1/callbacks/{name}/...), a prefix of environment variables
# (APIXO_BASE_URL) and, capitalised, of template parameters (ApixoBaseUrl).
_NAME_FORM = re.compile(r"[a-z][a-z0-9]*")


@dataclass(frozen=True)
class ProviderSpec:
    name: str
    build_adapter: AdapterFactory
    rules: ProviderRules
    # False: the provider never calls back, and only polling finds a task's end.
    supports_callbacks: bool
    # The documented defaults of the provider's settings (settings.ProviderSettings), each of
    # which its own variable overrides (`variable`): <NAME>_BASE_URL, the origin as the
    # provider's docs give it; <NAME>_DOWNLOAD_ORIGINS, where its result videos may be fetched
    # from; <NAME>_RATE_LIMIT, new tasks per window as REQUESTS/SECONDS; and
    # <NAME>_POLL_FIRST_WAIT_SECONDS, about its usual completion time.
    base_url: str
    download_origins: tuple[str, ...]
    rate_limit: str
    poll_first_wait_seconds: int

    def __post_init__(self) -> None:
        if not _NAME_FORM.fullmatch(self.name):
            raise ValueError(f"provider name {self.name!r} must be lower-case letters and digits")

    def variable(self, setting: str) -> str:
        """The environment variable of one of its settings: APIXO_BASE_URL for BASE_URL."""
        return f"{self.name.upper()}_{setting}"
