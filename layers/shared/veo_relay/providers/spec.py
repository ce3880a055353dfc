"""What the relay knows of a provider before it talks to it: one `ProviderSpec` per provider
(`veo_relay.providers.specs.<name>`), listed in `veo_relay.providers.registry`.

A spec module imports nothing but this one and the capability table it fills in: settings, the
API's request models and the offline stack read the registry at import, and the adapter (with
requests) loads only when its factory runs, when the provider is first used.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from veo_relay.providers.capabilities import Capabilities

if TYPE_CHECKING:
    from veo_relay.providers.base import Provider
    from veo_relay.providers.http import ProviderHttp


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
    # What it can do: the request checks, `auto` and GET /v1/capabilities read this.
    capabilities: Capabilities
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
    # The unit its documented balance route answers in ("USD", "credits"); None: it documents
    # none, and the balance reader (veo_relay.balances) and its alarms leave it out.
    balance_unit: str | None = None

    def __post_init__(self) -> None:
        if not _NAME_FORM.fullmatch(self.name):
            raise ValueError(f"provider name {self.name!r} must be lower-case letters and digits")

    def variable(self, setting: str) -> str:
        """The environment variable of one of its settings: APIXO_BASE_URL for BASE_URL."""
        return f"{self.name.upper()}_{setting}"
