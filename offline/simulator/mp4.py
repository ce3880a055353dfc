"""Deterministic, streamable MP4 (ISO-BMFF) bytes of any exact size and of a given resolution.

Layout: `ftyp` (isom) + a minimal `moov` (an `mvhd`, 8 s long, and one video `trak` whose `tkhd`
and `stsd`/`avc1` sample entry carry the frame's width and height: 1280x720, 1920x1080 or
3840x2160) + one `mdat` box whose payload pads the file to the requested size, so the top-level
boxes chain exactly to the last byte, as the downloader's check requires (below
`SMALLEST_MP4_SIZE`, the smallest such file, the bytes are cut off). The payload is a seeded
pseudo-random block repeated, so gigabyte files stream fast, never sit in memory, and the same
(size, seed, resolution) always gives the same bytes — tests can compute the expected SHA-256
without downloading anything, and tell the resolutions apart with `resolution_of`.
"""

import hashlib
import random
import struct
from collections.abc import Iterator

DEFAULT_CHUNK_SIZE = 1024 * 1024
DIMENSIONS = {"720p": (1280, 720), "1080p": (1920, 1080), "4k": (3840, 2160)}
_PATTERN_SIZE = 64 * 1024
_MAX_32BIT_BOX = 0xFFFFFFFF
_MOVIE_TIMESCALE = 1000
_MOVIE_DURATION = 8 * _MOVIE_TIMESCALE  # Veo clips are 8 seconds
_TRACK_ID = 1
_IDENTITY_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
_CONTAINERS = (b"moov", b"trak")  # the boxes `resolution_of` descends into to find the tkhd


def _box(box_type: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + box_type + payload


def _full_box(box_type: bytes, flags: int, payload: bytes) -> bytes:
    return _box(box_type, struct.pack(">I", flags) + payload)  # version 0


def _ftyp() -> bytes:
    return _box(b"ftyp", b"isom" + struct.pack(">I", 0x200) + b"isomiso2mp41mp42")


def _mvhd() -> bytes:
    payload = (
        struct.pack(">4I", 0, 0, _MOVIE_TIMESCALE, _MOVIE_DURATION)
        + struct.pack(">IH", 0x10000, 0x100)  # rate 1.0, volume 1.0
        + bytes(10)  # reserved
        + _IDENTITY_MATRIX
        + bytes(24)  # pre_defined
        + struct.pack(">I", _TRACK_ID + 1)  # next_track_ID
    )
    return _full_box(b"mvhd", 0, payload)


def _tkhd(width: int, height: int) -> bytes:
    payload = (
        struct.pack(">5I", 0, 0, _TRACK_ID, 0, _MOVIE_DURATION)  # times, id, reserved, duration
        + bytes(8)  # reserved
        + struct.pack(">hhhH", 0, 0, 0, 0)  # layer, alternate group, volume (0: video), reserved
        + _IDENTITY_MATRIX
        + struct.pack(">II", width << 16, height << 16)  # 16.16 fixed point
    )
    return _full_box(b"tkhd", 0x3, payload)  # enabled, in movie


def _avc1(width: int, height: int) -> bytes:
    """A VisualSampleEntry (ISO/IEC 14496-12, 12.1.3) naming the coded frame size."""
    payload = (
        bytes(6)  # reserved
        + struct.pack(">H", 1)  # data_reference_index
        + bytes(16)  # pre_defined, reserved
        + struct.pack(">HH", width, height)
        + struct.pack(">II", 0x480000, 0x480000)  # 72 dpi
        + bytes(4)  # reserved
        + struct.pack(">H", 1)  # frame_count
        + bytes(32)  # compressorname
        + struct.pack(">Hh", 0x18, -1)  # depth, pre_defined
    )
    return _box(b"avc1", payload)


def _trak(width: int, height: int) -> bytes:
    mdhd = _full_box(
        b"mdhd", 0, struct.pack(">4I2H", 0, 0, _MOVIE_TIMESCALE, _MOVIE_DURATION, 0x55C4, 0)
    )
    hdlr = _full_box(b"hdlr", 0, bytes(4) + b"vide" + bytes(12) + b"VideoHandler\0")
    vmhd = _full_box(b"vmhd", 0x1, bytes(8))
    stsd = _full_box(b"stsd", 0, struct.pack(">I", 1) + _avc1(width, height))
    minf = _box(b"minf", vmhd + _box(b"stbl", stsd))
    return _box(b"trak", _tkhd(width, height) + _box(b"mdia", mdhd + hdlr + minf))


def _mdat_header(payload_size: int) -> bytes:
    if 8 + payload_size <= _MAX_32BIT_BOX:
        return struct.pack(">I", 8 + payload_size) + b"mdat"
    # size field 1 means "a 64-bit largesize follows" (ISO/IEC 14496-12, 4.2)
    return struct.pack(">I", 1) + b"mdat" + struct.pack(">Q", 16 + payload_size)


def _prefix(resolution: str) -> bytes:
    """ftyp and moov: everything before the mdat."""
    try:
        width, height = DIMENSIONS[resolution]
    except KeyError:
        raise ValueError(f"resolution must be one of {', '.join(DIMENSIONS)}") from None
    return _ftyp() + _box(b"moov", _mvhd() + _trak(width, height))


def _header(size: int, resolution: str) -> bytes:
    prefix = _prefix(resolution)
    payload_size = size - len(prefix) - 8
    if payload_size < 0:
        return prefix + _mdat_header(0)  # caller truncates: tiny sizes get a cut-off file
    if 8 + payload_size > _MAX_32BIT_BOX:
        payload_size = size - len(prefix) - 16
    return prefix + _mdat_header(payload_size)


# The same at every resolution: the dimensions are fixed-size fields.
SMALLEST_MP4_SIZE = len(_header(0, "720p"))


def _pattern(seed: str | int) -> bytes:
    digest = hashlib.sha256(str(seed).encode()).digest()
    return random.Random(digest).randbytes(_PATTERN_SIZE)


def iter_mp4(
    size: int,
    seed: str | int,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    *,
    resolution: str = "720p",
) -> Iterator[bytes]:
    """Yield the bytes of a `size`-byte MP4 of `resolution` in chunks of at most `chunk_size`."""
    if size < 0:
        raise ValueError("size must not be negative")
    header = _header(size, resolution)[:size]
    if header:
        yield header
    remaining = size - len(header)
    pattern = _pattern(seed)
    block = pattern * max(chunk_size // len(pattern), 1)
    while remaining > 0:
        piece = block if remaining >= len(block) else block[:remaining]
        yield piece
        remaining -= len(piece)


def mp4_bytes_sha256(size: int, seed: str | int, resolution: str = "720p") -> str:
    """Hex SHA-256 of what `iter_mp4(size, seed, resolution=resolution)` yields."""
    digest = hashlib.sha256()
    for chunk in iter_mp4(size, seed, resolution=resolution):
        digest.update(chunk)
    return digest.hexdigest()


def resolution_of(data: bytes) -> str:
    """ "720p", "1080p" or "4k": the resolution named by the first track header (`tkhd`) of an MP4
    the simulator made (its start is enough). Raises ValueError for anything else."""
    tkhd = _find_tkhd(data, 0, len(data))
    if tkhd is None:
        raise ValueError("no moov/trak/tkhd box in the data")
    width, height = (value >> 16 for value in struct.unpack(">II", tkhd[-8:]))
    for resolution, dimensions in DIMENSIONS.items():
        if dimensions == (width, height):
            return resolution
    raise ValueError(f"a {width}x{height} video is none of {', '.join(DIMENSIONS)}")


def _find_tkhd(data: bytes, start: int, end: int) -> bytes | None:
    offset = start
    while offset + 8 <= end:
        size, box_type = struct.unpack(">I4s", data[offset : offset + 8])
        if size < 8:  # a largesize or to-the-end box (the mdat): no tkhd past it
            return None
        if box_type == b"tkhd":
            return data[offset + 8 : offset + size]
        if box_type in _CONTAINERS:
            found = _find_tkhd(data, offset + 8, min(offset + size, end))
            if found is not None:
                return found
        offset += size
    return None
