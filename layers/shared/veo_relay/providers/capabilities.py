"""What a provider can do, as one table per provider (its spec's `capabilities`): the request
checks (veo_relay.rules), `auto`'s choice (veo_relay.creation) and `GET /v1/capabilities` all
read it, so they cannot disagree.

The defaults are Veo 3.1 as every reseller sells it; a spec states where its provider differs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

MODES = ("fast", "quality", "lite")
GENERATION_TYPES = ("TEXT_2_VIDEO", "FIRST_AND_LAST_FRAMES_2_VIDEO", "REFERENCE_2_VIDEO")
ASPECT_RATIOS = ("16:9", "9:16")
RESOLUTIONS = ("720p", "1080p", "4k")
DEFAULT_RESOLUTION = "720p"

# How many images each generation type takes (FIRST_AND_LAST: one to animate, or first and last).
_IMAGE_COUNTS: Mapping[str, tuple[int, int]] = MappingProxyType(
    {
        "TEXT_2_VIDEO": (0, 0),
        "FIRST_AND_LAST_FRAMES_2_VIDEO": (1, 2),
        "REFERENCE_2_VIDEO": (1, 3),
    }
)
_TEN_MB = 10 * 1024 * 1024


@dataclass(frozen=True)
class Capabilities:
    modes: tuple[str, ...] = ("fast", "quality")
    aspect_ratios: tuple[str, ...] = ASPECT_RATIOS
    # (fewest, most) images per generation type the provider offers.
    image_counts: Mapping[str, tuple[int, int]] = field(default_factory=lambda: _IMAGE_COUNTS)
    max_image_bytes: int = _TEN_MB
    # REFERENCE_2_VIDEO is the upstream model's fast, 16:9 feature.
    reference_modes: tuple[str, ...] = ("fast",)
    reference_aspect_ratios: tuple[str, ...] = ("16:9",)
    resolutions: tuple[str, ...] = (DEFAULT_RESOLUTION,)
    # Resolutions made by a step after the generation (kie's upgrade routes), not by the request.
    upgraded_resolutions: tuple[str, ...] = ()
    # Resolutions a mode is limited to, where it is (kie's lite has no 4K).
    mode_resolutions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # None: the provider's API has no seed field, so a requested seed cannot be honoured.
    seed_range: tuple[int, int] | None = (0, 4294967295)
    accepts_watermark: bool = True
    max_prompt_length: int = 10000
    # Extensions: the modes a child may ask for; whether it must keep its parent's mode (it runs
    # on the parent's model); whether an extension can be extended again; and the parents that
    # cannot be extended at all, by their mode (lite) or resolution (an upgraded video).
    extension_modes: tuple[str, ...] = ("fast", "quality")
    extension_keeps_mode: bool = False
    extends_extensions: bool = True
    unextendable_modes: tuple[str, ...] = ()
    extendable_resolutions: tuple[str, ...] = RESOLUTIONS

    def __post_init__(self) -> None:
        unknown = (
            set(self.modes) - set(MODES)
            | set(self.resolutions) - set(RESOLUTIONS)
            | set(self.image_counts) - set(GENERATION_TYPES)
        )
        if unknown:
            raise ValueError(f"capabilities name values the relay does not know: {unknown}")
        if not set(self.upgraded_resolutions) <= set(self.resolutions):
            raise ValueError("an upgraded resolution must be one of the resolutions offered")

    def resolutions_for(self, mode: str) -> tuple[str, ...]:
        return self.mode_resolutions.get(mode, self.resolutions)

    def upgrades_to(self, resolution: str) -> bool:
        """Whether `resolution` is made by an upgrade after the generation."""
        return resolution in self.upgraded_resolutions

    def to_public(self, *, calls_back: bool, rate_limit: tuple[int, int]) -> dict[str, Any]:
        """The provider's entry in `GET /v1/capabilities`."""
        requests, seconds = rate_limit
        return {
            "modes": list(self.modes),
            "generation_types": {
                name: {
                    "images": {"min": low, "max": high},
                    "modes": list(self._modes_of(name)),
                    "aspect_ratios": list(self._aspect_ratios_of(name)),
                }
                for name, (low, high) in self.image_counts.items()
            },
            "aspect_ratios": list(self.aspect_ratios),
            "resolutions": {
                resolution: {
                    "modes": [m for m in self.modes if resolution in self.resolutions_for(m)],
                    "made_by": "upgrade" if self.upgrades_to(resolution) else "generation",
                }
                for resolution in self.resolutions
            },
            "images": {"max_bytes": self.max_image_bytes, "schemes": ["https"]},
            "seed": None
            if self.seed_range is None
            else {"min": self.seed_range[0], "max": self.seed_range[1]},
            "watermark": self.accepts_watermark,
            "prompt_max_length": self.max_prompt_length,
            "extend": {
                "parents": "generations and extensions"
                if self.extends_extensions
                else "generations",
                "parent_modes": [m for m in self.modes if m not in self.unextendable_modes],
                "parent_resolutions": [
                    r for r in self.resolutions if r in self.extendable_resolutions
                ],
                "modes": list(self.extension_modes),
                "keeps_parent_mode": self.extension_keeps_mode,
            },
            "callbacks": calls_back,
            "pacing": {"requests": requests, "per_seconds": seconds},
        }

    def _modes_of(self, generation_type: str) -> tuple[str, ...]:
        if generation_type == "REFERENCE_2_VIDEO":
            return tuple(m for m in self.modes if m in self.reference_modes)
        return self.modes

    def _aspect_ratios_of(self, generation_type: str) -> tuple[str, ...]:
        if generation_type == "REFERENCE_2_VIDEO":
            return tuple(r for r in self.aspect_ratios if r in self.reference_aspect_ratios)
        return self.aspect_ratios
