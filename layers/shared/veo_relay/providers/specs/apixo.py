"""apixo (reference/providers.md §1)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from veo_relay.providers.capabilities import Capabilities
from veo_relay.providers.spec import ProviderSpec

if TYPE_CHECKING:
    from veo_relay.providers.base import Provider
    from veo_relay.providers.http import ProviderHttp


def _adapter(http: ProviderHttp, callback_key: Callable[[], str | None]) -> Provider:
    from veo_relay.providers.apixo import ApixoProvider

    return ApixoProvider(http)  # apixo documents no callback signature


SPEC = ProviderSpec(
    name="apixo",
    build_adapter=_adapter,
    # REFERENCE_2_VIDEO needs mode=fast and 16:9 (documented). `seed` has no documented range,
    # so the defaults' unsigned 32-bit range stands. Extend takes veo-3-1 task ids only. No
    # resolution field and no upgrade are documented: 720p only, and no lite model.
    capabilities=Capabilities(extends_extensions=False),
    supports_callbacks=True,
    base_url="https://api.apixo.ai",
    download_origins=("https://r2.apixo.ai", "https://cdn.apixo.ai"),
    rate_limit="10000/60",  # documented: 10,000 requests a minute
    poll_first_wait_seconds=90,  # documented: "wait 90 seconds, then poll"
    # GET /api/v1/apikeys/current-balance, known from a third-party client only; apixo prices
    # its videos in dollars, so its balance is read as dollars.
    balance_unit="USD",
)
