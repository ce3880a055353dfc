"""veo_relay.mp4_boxes: the top-level box check, fed in any chunking."""

from __future__ import annotations

import struct

import pytest

from offline.simulator.mp4 import iter_mp4
from veo_relay.mp4_boxes import BoxChain, BoxStructureError

FTYP = struct.pack(">I", 24) + b"ftypisom" + struct.pack(">I", 0x200) + b"isomiso2"


def box(box_type: bytes, payload: bytes = b"") -> bytes:
    return struct.pack(">I", 8 + len(payload)) + box_type + payload


def check(data: bytes, chunk_size: int, announced: bool = True) -> None:
    chain = BoxChain(len(data) if announced else None)
    for start in range(0, len(data), chunk_size):
        chain.feed(data[start : start + chunk_size])
    chain.finish()


VALID = FTYP + box(b"moov", box(b"mvhd", bytes(100))) + box(b"free") + box(b"mdat", bytes(300))
LARGE = (
    FTYP + box(b"moov") + struct.pack(">I", 1) + b"mdat" + struct.pack(">Q", 16 + 40) + bytes(40)
)


@pytest.mark.parametrize("chunk_size", [1, 3, 8, 15, 16, 17, 1000])
@pytest.mark.parametrize("announced", [True, False])
@pytest.mark.parametrize("data", [VALID, LARGE], ids=["32-bit", "largesize"])
def test_a_valid_file_passes_however_its_headers_are_split(
    data: bytes, chunk_size: int, announced: bool
) -> None:
    # Given a valid MP4 fed in chunks that split box headers anywhere / When checked / Then it
    # passes, its size announced or not
    check(data, chunk_size, announced)


@pytest.mark.parametrize("chunk_size", [1, 7, 1000])
def test_a_truncated_largesize_header_is_caught_however_it_is_split(chunk_size: int) -> None:
    # Given a file that ends inside a 16-byte largesize header
    data = LARGE[: len(FTYP) + 8 + 12]
    # When checked without an announced size / Then trailing bytes that are not a whole box
    with pytest.raises(BoxStructureError, match="not a whole box"):
        check(data, chunk_size, announced=False)


def test_the_simulators_64_bit_mdat_is_accepted_from_its_header() -> None:
    # Given the simulator's 5 GiB file (only its header is fed: the mdat ends at byte 5 GiB)
    size = 5 * 1024**3
    chain = BoxChain(size)
    # When its first chunk is fed / Then its boxes fit the announced size
    chain.feed(next(iter_mp4(size, "big")))


def test_an_announced_size_refuses_a_box_past_it_at_its_header() -> None:
    # Given a file announced as 100 bytes whose mdat says 1,000
    chain = BoxChain(100)
    # When the mdat's header is fed / Then refused at once, before the body arrives
    with pytest.raises(BoxStructureError, match="runs past the end of the 100-byte file"):
        chain.feed(FTYP + box(b"moov") + struct.pack(">I", 1000) + b"mdat")
