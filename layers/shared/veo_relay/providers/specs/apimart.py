"""APIMart (reference/providers.md §3)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from veo_relay.providers.capabilities import Capabilities
from veo_relay.providers.spec import ProviderSpec

if TYPE_CHECKING:
    from veo_relay.providers.base import Provider
    from veo_relay.providers.http import ProviderHttp


def _adapter(http: ProviderHttp, callback_key: Callable[[], str | None]) -> Provider:
    from veo_relay.providers.apimart import ApimartProvider

    return ApimartProvider(http)


SPEC = ProviderSpec(
    name="apimart",
    build_adapter=_adapter,
    # veo3.1 has no seed field (only the separate "-official" models have one): no seed_range
    # lets the request rules refuse a seed up front instead of it being silently dropped; the
    # adapter never sends one, nor a watermark, which has no field either. `veo3.1-quality` does
    # not support `reference`, and 16:9 stays required for it as for every Veo 3.1 reseller. An
    # older doc version capped the prompt at 1000 characters; the current one states no limit, so
    # the shared 10000 stands. A remix must run on the original task's model, so an extension
    # keeps its parent's mode. `resolution` (720p, 1080p, 4k) is a field of the generation and of
    # the remix. `veo3.1-lite` appears on a third-party mirror only, so lite is not offered.
    capabilities=Capabilities(
        seed_range=None,
        accepts_watermark=False,
        extension_keeps_mode=True,
        resolutions=("720p", "1080p", "4k"),
    ),
    # No callback or webhook is documented for veo3.1: completion is found by polling only.
    supports_callbacks=False,
    base_url="https://api.apimart.ai",
    download_origins=("https://upload.apimart.ai",),
    rate_limit="60/10",  # none documented: a cautious one
    poll_first_wait_seconds=120,  # a task takes about 2 minutes
    # No balance route is documented: balance_unit stays None.
)
