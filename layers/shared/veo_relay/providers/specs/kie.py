"""kie.ai (reference/providers.md §2)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from veo_relay.providers.capabilities import Capabilities
from veo_relay.providers.spec import ProviderSpec

if TYPE_CHECKING:
    from veo_relay.providers.base import Provider
    from veo_relay.providers.http import ProviderHttp


def _adapter(http: ProviderHttp, callback_key: Callable[[], str | None]) -> Provider:
    from veo_relay.providers.kie import KieProvider

    return KieProvider(http, webhook_hmac_key=callback_key)


SPEC = ProviderSpec(
    name="kie",
    build_adapter=_adapter,
    # `seeds` is documented as 10000-99999. REFERENCE_2_VIDEO is documented as "Fast only" and
    # kie says nothing of its aspect ratio; 16:9 stays required because the restriction is the
    # upstream Veo 3.1 one (apixo documents it for the same model), and refusing here costs
    # nothing while kie's own refusal would reach the user only after a round trip.
    # 1080p and 4K are made from the 720p result by the documented upgrade routes (§2.6, §2.7),
    # not by the newer spec's `resolution` field, which only one spec version lists. Lite
    # (veo3_lite) has no 4K, no REFERENCE_2_VIDEO and no extend; a video upgraded to 1080p cannot
    # be extended (§2.5), nor, as the upgrade is the same kind of re-render, one upgraded to 4K.
    capabilities=Capabilities(
        modes=("fast", "quality", "lite"),
        seed_range=(10_000, 99_999),
        resolutions=("720p", "1080p", "4k"),
        upgraded_resolutions=("1080p", "4k"),
        mode_resolutions={"lite": ("720p", "1080p")},
        unextendable_modes=("lite",),
        extendable_resolutions=("720p",),
    ),
    supports_callbacks=True,
    base_url="https://api.kie.ai",
    download_origins=("https://tempfile.aiquickdraw.com", "https://tempfile.redpandaai.co"),
    rate_limit="20/10",  # documented: 20 new tasks per 10 s, refused (not queued) beyond
    poll_first_wait_seconds=90,  # a task takes about 2 minutes
    balance_unit="credits",  # GET /api/v1/chat/credit (documented)
)
