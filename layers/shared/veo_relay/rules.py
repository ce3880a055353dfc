"""Rules a request must satisfy before any credit is spent. Each violation names its field."""

from __future__ import annotations

from veo_relay.errors import InvalidRequest
from veo_relay.providers.base import GenerationRequest, ProviderRules

_IMAGE_COUNTS = {
    "TEXT_2_VIDEO": (0, 0),
    "FIRST_AND_LAST_FRAMES_2_VIDEO": (1, 2),
    "REFERENCE_2_VIDEO": (1, 3),
}


def check_generation(provider: str, rules: ProviderRules, request: GenerationRequest) -> None:
    check_prompt_and_seed(provider, rules, request.prompt, request.seed, request.watermark)
    low, high = _IMAGE_COUNTS[request.generation_type]
    count = len(request.image_urls)
    if not low <= count <= high:
        expected = "no images" if high == 0 else f"{low} to {high} images"
        raise InvalidRequest(
            "image_urls", f"{request.generation_type} takes {expected}, got {count}"
        )
    for url in request.image_urls:
        if not url.startswith("https://"):
            raise InvalidRequest("image_urls", f"must be https URLs, got {url[:80]!r}")
    if request.generation_type == "REFERENCE_2_VIDEO":
        if rules.reference_requires_fast and request.mode != "fast":
            raise InvalidRequest(
                "mode", f"REFERENCE_2_VIDEO is available in fast mode only on {provider}"
            )
        if rules.reference_requires_16_9 and request.aspect_ratio != "16:9":
            raise InvalidRequest("aspect_ratio", f"REFERENCE_2_VIDEO requires 16:9 on {provider}")


def check_prompt_and_seed(
    provider: str, rules: ProviderRules, prompt: str, seed: int | None, watermark: str | None
) -> None:
    if watermark and not rules.accepts_watermark:
        raise InvalidRequest("watermark", f"{provider} has no watermark parameter; leave it out")
    if not prompt.strip():
        raise InvalidRequest("prompt", "must not be blank")
    if len(prompt) > rules.max_prompt_length:
        raise InvalidRequest(
            "prompt", f"{provider} takes at most {rules.max_prompt_length} characters"
        )
    if seed is None:
        return
    if not rules.accepts_seed:
        raise InvalidRequest("seed", f"{provider} has no seed parameter; leave it out")
    low, high = rules.seed_range
    if not low <= seed <= high:
        raise InvalidRequest("seed", f"{provider} takes seeds from {low} to {high}, got {seed}")
