"""Rules a request must satisfy before any credit is spent. Each violation names its field."""

from __future__ import annotations

from veo_relay.errors import InvalidRequest
from veo_relay.providers.base import GenerationRequest

_IMAGE_COUNTS = {
    "TEXT_2_VIDEO": (0, 0),
    "FIRST_AND_LAST_FRAMES_2_VIDEO": (1, 2),
    "REFERENCE_2_VIDEO": (1, 3),
}


def check_generation(request: GenerationRequest) -> None:
    low, high = _IMAGE_COUNTS[request.generation_type]
    count = len(request.image_urls)
    if not low <= count <= high:
        expected = "no images" if high == 0 else f"{low} to {high} images"
        raise InvalidRequest(
            "image_urls", f"{request.generation_type} takes {expected}, got {count}"
        )
    if request.generation_type == "REFERENCE_2_VIDEO":
        if request.mode != "fast":
            raise InvalidRequest("mode", "REFERENCE_2_VIDEO is available in fast mode only")
        if request.aspect_ratio != "16:9":
            raise InvalidRequest("aspect_ratio", "REFERENCE_2_VIDEO requires 16:9")
