"""Rules a request must satisfy before any credit is spent. Each violation names its field."""

from __future__ import annotations

import ipaddress

from veo_relay.errors import InvalidRequest
from veo_relay.providers.base import GenerationRequest, ProviderRules
from veo_relay.safe_urls import RefusedUrl, check_address, parse_url

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
    for index, url in enumerate(request.image_urls):
        check_image_url(f"image_urls[{index}]", url)
    if request.generation_type == "REFERENCE_2_VIDEO":
        if rules.reference_requires_fast and request.mode != "fast":
            raise InvalidRequest(
                "mode", f"REFERENCE_2_VIDEO is available in fast mode only on {provider}"
            )
        if rules.reference_requires_16_9 and request.aspect_ratio != "16:9":
            raise InvalidRequest("aspect_ratio", f"REFERENCE_2_VIDEO requires 16:9 on {provider}")


MAX_IMAGE_URL_LENGTH = 2048


def check_image_url(field: str, url: str) -> None:
    """The provider fetches the image, so it is vetted as we would vet a URL we fetch ourselves
    (safe_urls): an https URL with a valid host, no userinfo, and no address literal or name that
    points inside a network (the provider's own metadata service, say). A name that resolves to
    such an address is the provider's to refuse: resolving here proves nothing about its DNS."""
    if len(url) > MAX_IMAGE_URL_LENGTH:
        raise InvalidRequest(field, f"must be at most {MAX_IMAGE_URL_LENGTH} characters")
    try:
        parsed = parse_url(url)
    except RefusedUrl as exc:
        raise InvalidRequest(field, f"is not an acceptable URL: {exc}") from None
    if parsed.scheme != "https":
        raise InvalidRequest(field, "must be an https URL")
    if parsed.host == "localhost" or parsed.host.endswith(".localhost"):
        raise InvalidRequest(field, "must not name localhost")
    if not _is_address(parsed.host):
        if "." not in parsed.host:  # a single label resolves only inside some network
            raise InvalidRequest(field, "must name a public host (a dotted domain name)")
        return
    problem = check_address(parsed.host)
    if problem is not None:
        raise InvalidRequest(field, f"must not point inside a network: {problem}")


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


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
