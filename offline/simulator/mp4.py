"""Deterministic, streamable MP4 (ISO-BMFF) bytes of any exact size.

Layout: `ftyp` (isom) + a minimal `moov` (just `mvhd`, 8 s long) + one `mdat` box whose payload
pads the file to the requested size, so the top-level boxes chain exactly to the last byte, as the
downloader's check requires (below 156 bytes, the smallest such file, the bytes are cut off). The
payload is a seeded pseudo-random block repeated, so gigabyte files stream fast, never sit in
memory, and the same (size, seed) always gives the same bytes — tests can compute the expected
SHA-256 without downloading anything.
"""

import hashlib
import random
import struct
from collections.abc import Iterator

DEFAULT_CHUNK_SIZE = 1024 * 1024
_PATTERN_SIZE = 64 * 1024
_MAX_32BIT_BOX = 0xFFFFFFFF
_MOVIE_TIMESCALE = 1000
_MOVIE_DURATION = 8 * _MOVIE_TIMESCALE  # Veo clips are 8 seconds


def _box(box_type: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + box_type + payload


def _ftyp() -> bytes:
    return _box(b"ftyp", b"isom" + struct.pack(">I", 0x200) + b"isomiso2mp41mp42")


def _mvhd() -> bytes:
    identity_matrix = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    payload = (
        struct.pack(">I", 0)  # version 0, no flags
        + struct.pack(">4I", 0, 0, _MOVIE_TIMESCALE, _MOVIE_DURATION)
        + struct.pack(">IH", 0x10000, 0x100)  # rate 1.0, volume 1.0
        + bytes(10)  # reserved
        + identity_matrix
        + bytes(24)  # pre_defined
        + struct.pack(">I", 1)  # next_track_ID
    )
    return _box(b"mvhd", payload)


def _mdat_header(payload_size: int) -> bytes:
    if 8 + payload_size <= _MAX_32BIT_BOX:
        return struct.pack(">I", 8 + payload_size) + b"mdat"
    # size field 1 means "a 64-bit largesize follows" (ISO/IEC 14496-12, 4.2)
    return struct.pack(">I", 1) + b"mdat" + struct.pack(">Q", 16 + payload_size)


def _header(size: int) -> bytes:
    prefix = _ftyp() + _box(b"moov", _mvhd())
    payload_size = size - len(prefix) - 8
    if payload_size < 0:
        return prefix + _mdat_header(0)  # caller truncates: tiny sizes get a cut-off file
    if 8 + payload_size > _MAX_32BIT_BOX:
        payload_size = size - len(prefix) - 16
    return prefix + _mdat_header(payload_size)


def _pattern(seed: str | int) -> bytes:
    digest = hashlib.sha256(str(seed).encode()).digest()
    return random.Random(digest).randbytes(_PATTERN_SIZE)


def iter_mp4(size: int, seed: str | int, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
    """Yield the bytes of a `size`-byte MP4 in chunks of at most `chunk_size`."""
    if size < 0:
        raise ValueError("size must not be negative")
    header = _header(size)[:size]
    if header:
        yield header
    remaining = size - len(header)
    pattern = _pattern(seed)
    block = pattern * max(chunk_size // len(pattern), 1)
    while remaining > 0:
        piece = block if remaining >= len(block) else block[:remaining]
        yield piece
        remaining -= len(piece)


def mp4_bytes_sha256(size: int, seed: str | int) -> str:
    """Hex SHA-256 of what `iter_mp4(size, seed)` yields."""
    digest = hashlib.sha256()
    for chunk in iter_mp4(size, seed):
        digest.update(chunk)
    return digest.hexdigest()
