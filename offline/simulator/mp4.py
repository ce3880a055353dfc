"""Deterministic, streamable MP4 (ISO-BMFF) bytes of any exact size and of a given resolution.

From `PLAYABLE_MP4_SIZE` bytes up, the file is a real, playable H.264 clip (`clip.mp4`, made by
`make clip`: 1 s, 64x36, `ftyp` + `moov` + an 8-byte `free` + `mdat`, moov first so a browser
plays it as it arrives) whose `mdat` grows past its samples to pad the file to the requested size
(players read samples where the `stco` says; the rest of the mdat is never looked at). Beyond
4 GiB the `free` and the mdat's 32-bit header become one 64-bit (largesize) mdat header: the
samples stay where they were, which is why ffmpeg leaves that `free` there. The resolution is the
`tkhd`'s width and height (the presentation size: 1280x720, 1920x1080 or 3840x2160); the frames
stay 64x36.

Below that size, a synthetic file with the same top-level chain but no frames: `ftyp` (isom) + a
minimal `moov` (an `mvhd`, 8 s long, and one video `trak` whose `tkhd` and `stsd`/`avc1` carry the
resolution) + an `mdat` of padding; below `SMALLEST_MP4_SIZE`, the smallest such file, the bytes
are cut off. Either way the top-level boxes chain exactly to the last byte, as the downloader's
check requires. The padding is a seeded pseudo-random block repeated, so gigabyte files stream
fast, never sit in memory, and the same (size, seed, resolution) always gives the same bytes —
tests can compute the expected SHA-256 without downloading anything, and tell the resolutions
apart with `resolution_of`.
"""

import hashlib
import random
import struct
from collections.abc import Iterator
from pathlib import Path

DEFAULT_CHUNK_SIZE = 1024 * 1024
DIMENSIONS = {"720p": (1280, 720), "1080p": (1920, 1080), "4k": (3840, 2160)}
_PATTERN_SIZE = 64 * 1024
_MAX_32BIT_BOX = 0xFFFFFFFF
_MOVIE_TIMESCALE = 1000
_MOVIE_DURATION = 8 * _MOVIE_TIMESCALE  # Veo clips are 8 seconds
_TRACK_ID = 1
_IDENTITY_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
_CONTAINERS = (b"moov", b"trak")  # the boxes searched for the tkhd
CLIP_PATH = Path(__file__).with_name("clip.mp4")


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


def _dimensions(resolution: str) -> tuple[int, int]:
    try:
        return DIMENSIONS[resolution]
    except KeyError:
        raise ValueError(f"resolution must be one of {', '.join(DIMENSIONS)}") from None


def _prefix(resolution: str) -> bytes:
    """ftyp and moov: everything before the mdat."""
    width, height = _dimensions(resolution)
    return _ftyp() + _box(b"moov", _mvhd() + _trak(width, height))


def _synthetic_header(size: int, resolution: str) -> bytes:
    prefix = _prefix(resolution)
    payload_size = size - len(prefix) - 8
    if payload_size < 0:
        return prefix + _mdat_header(0)  # caller truncates: tiny sizes get a cut-off file
    if 8 + payload_size > _MAX_32BIT_BOX:
        payload_size = size - len(prefix) - 16
    return prefix + _mdat_header(payload_size)


# The same at every resolution: the dimensions are fixed-size fields.
SMALLEST_MP4_SIZE = len(_synthetic_header(0, "720p"))


def _find_box(data: bytes, wanted: bytes, start: int, end: int) -> tuple[int, int] | None:
    """(offset, size) of the first `wanted` box in moov/trak, depth first."""
    offset = start
    while offset + 8 <= end:
        size, box_type = struct.unpack(">I4s", data[offset : offset + 8])
        if size < 8:  # a largesize or to-the-end box (the mdat): nothing to find past it
            return None
        if box_type == wanted:
            return offset, size
        if box_type in _CONTAINERS:
            found = _find_box(data, wanted, offset + 8, min(offset + size, end))
            if found is not None:
                return found
        offset += size
    return None


def _read_clip() -> tuple[bytes, int, bytes]:
    """The clip's ftyp + moov, where its tkhd's width and height are, and its mdat's samples."""
    data = CLIP_PATH.read_bytes()
    boxes, offset = [], 0
    while offset < len(data):
        box_size, box_type = struct.unpack(">I4s", data[offset : offset + 8])
        if box_size < 8:  # ffmpeg writes 32-bit sizes for a clip this small
            raise ValueError(f"{CLIP_PATH.name}: a box of size {box_size} at byte {offset}")
        boxes.append((box_type, offset, box_size))
        offset += box_size
    layout = [box_type for box_type, _, _ in boxes]
    if layout != [b"ftyp", b"moov", b"free", b"mdat"] or boxes[2][2] != 8:
        raise ValueError(f"{CLIP_PATH.name} is not ftyp, moov, an 8-byte free and mdat")
    free_at = boxes[2][1]
    tkhd = _find_box(data, b"tkhd", 0, free_at)
    if tkhd is None:
        raise ValueError(f"{CLIP_PATH.name} has no moov/trak/tkhd")
    tkhd_at, tkhd_size = tkhd
    return data[:free_at], tkhd_at + tkhd_size - 8, data[free_at + 16 :]


_CLIP_HEAD, _CLIP_DIMENSIONS_AT, _CLIP_SAMPLES = _read_clip()
# The smallest playable file: the clip as it is.
PLAYABLE_MP4_SIZE = len(_CLIP_HEAD) + 16 + len(_CLIP_SAMPLES)


def _playable_header(size: int, resolution: str) -> bytes:
    """Everything but the padding: the clip, its tkhd naming `resolution`, its mdat grown to end
    at `size`."""
    width, height = _dimensions(resolution)
    at = _CLIP_DIMENSIONS_AT
    head = _CLIP_HEAD[:at] + struct.pack(">II", width << 16, height << 16) + _CLIP_HEAD[at + 8 :]
    mdat_size = size - len(head) - 8  # all but the free
    if mdat_size <= _MAX_32BIT_BOX:
        box = struct.pack(">I", 8) + b"free" + struct.pack(">I", mdat_size) + b"mdat"
    else:
        box = struct.pack(">I", 1) + b"mdat" + struct.pack(">Q", mdat_size + 8)
    return head + box + _CLIP_SAMPLES


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
    if size >= PLAYABLE_MP4_SIZE:
        header = _playable_header(size, resolution)
    else:
        header = _synthetic_header(size, resolution)[:size]
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
    tkhd = _find_box(data, b"tkhd", 0, len(data))
    if tkhd is None:
        raise ValueError("no moov/trak/tkhd box in the data")
    at = tkhd[0] + tkhd[1] - 8
    width, height = (value >> 16 for value in struct.unpack(">II", data[at : at + 8]))
    for resolution, dimensions in DIMENSIONS.items():
        if dimensions == (width, height):
            return resolution
    raise ValueError(f"a {width}x{height} video is none of {', '.join(DIMENSIONS)}")
