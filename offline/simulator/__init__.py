"""Offline simulator of the Veo 3.1 resellers veo-relay talks to (apixo, kie.ai, apimart).

Each `ProviderSimulator` serves one provider's real protocol on its own origin, serves result
MP4s from `{origin}/files/...`, calls back like the provider does, and obeys `[sim:...]` prompt
tags (see `tags.py`). `GET {origin}/_sim/tasks` lists what it has seen, for tests.
"""

from .mp4 import SMALLEST_MP4_SIZE, iter_mp4, mp4_bytes_sha256, resolution_of
from .ratelimit import RateLimit
from .simulator import PROTOCOLS, ProviderSimulator, start_simulators
from .tags import SimTags, parse_tags
from .tasks import CallbackAttempt, SubmitAttempt, TaskSnapshot, UpgradeRequest

__all__ = [
    "PROTOCOLS",
    "SMALLEST_MP4_SIZE",
    "CallbackAttempt",
    "ProviderSimulator",
    "RateLimit",
    "SimTags",
    "SubmitAttempt",
    "TaskSnapshot",
    "UpgradeRequest",
    "iter_mp4",
    "mp4_bytes_sha256",
    "parse_tags",
    "resolution_of",
    "start_simulators",
]
