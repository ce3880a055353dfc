"""The simulator's building blocks on their own: MP4 bytes, prompt tags, the rate limiter."""

import hashlib
import struct
import time

import pytest

from offline.simulator import (
    SMALLEST_MP4_SIZE,
    RateLimit,
    SimTags,
    iter_mp4,
    mp4_bytes_sha256,
    parse_tags,
)
from offline.simulator.mp4 import PLAYABLE_MP4_SIZE
from offline.simulator.ratelimit import SlidingWindowLimiter

HEADER_SIZE = SMALLEST_MP4_SIZE  # ftyp (32) + moov: mvhd (108) and a video trak (323) + mdat (8)


def boxes(data: bytes) -> list[tuple[bytes, int]]:
    found, offset = [], 0
    while offset < len(data):
        size, box_type = struct.unpack(">I4s", data[offset : offset + 8])
        found.append((box_type, size))
        offset += size
    assert offset == len(data)
    return found


@pytest.mark.parametrize(
    ("size", "layout"),
    [
        (HEADER_SIZE, [b"ftyp", b"moov", b"mdat"]),
        (PLAYABLE_MP4_SIZE - 1, [b"ftyp", b"moov", b"mdat"]),
        # From the clip's size up: the clip, its free kept for a 64-bit mdat header
        (PLAYABLE_MP4_SIZE, [b"ftyp", b"moov", b"free", b"mdat"]),
        (PLAYABLE_MP4_SIZE + 1, [b"ftyp", b"moov", b"free", b"mdat"]),
        (65_536 * 3 + 7, [b"ftyp", b"moov", b"free", b"mdat"]),
        (2_500_000, [b"ftyp", b"moov", b"free", b"mdat"]),
    ],
)
def test_iter_mp4_yields_an_iso_bmff_file_of_exactly_the_size(size: int, layout: list[bytes]):
    # Given a size and a seed
    # When the file is generated
    data = b"".join(iter_mp4(size, "task_1"))

    # Then it is ftyp (isom), moov with an mvhd first, then mdat up to the last byte
    assert len(data) == size
    assert data[4:12] == b"ftypisom"
    assert [box_type for box_type, _ in boxes(data)] == layout
    assert data[40:48] == struct.pack(">I", 108) + b"mvhd"


def test_iter_mp4_cuts_off_sizes_smaller_than_the_header():
    # Given sizes below the smallest complete file
    # When they are generated
    sizes = [len(b"".join(iter_mp4(size, "s"))) for size in (0, 1, 12, HEADER_SIZE - 1)]

    # Then the size is still exact (the file starts like an MP4 as far as it goes)
    assert sizes == [0, 1, 12, HEADER_SIZE - 1]
    assert b"".join(iter_mp4(12, "s"))[4:] == b"ftypisom"


def test_iter_mp4_uses_a_64_bit_mdat_size_beyond_4_gib():
    # Given a 5 GiB file (only its first chunk is generated)
    size = 5 * 1024**3

    # When its header is read
    header = next(iter_mp4(size, "big"))
    small = next(iter_mp4(PLAYABLE_MP4_SIZE, "big"))

    # Then mdat announces a 64-bit largesize that ends exactly at the file's end, in place of the
    # free and the 32-bit mdat header (the clip's samples stay where they were)
    mdat_at = small.index(b"free") - 4
    assert header[mdat_at : mdat_at + 8] == struct.pack(">I", 1) + b"mdat"
    (largesize,) = struct.unpack(">Q", header[mdat_at + 8 : mdat_at + 16])
    assert mdat_at + largesize == size
    assert header[mdat_at + 16 : PLAYABLE_MP4_SIZE] == small[mdat_at + 16 :]


def test_mp4_content_is_deterministic_per_seed_and_streamed_in_bounded_chunks():
    # Given two seeds
    # When files are generated and hashed
    first = mp4_bytes_sha256(3_000_000, "task_a")
    again = hashlib.sha256(b"".join(iter_mp4(3_000_000, "task_a"))).hexdigest()
    other = mp4_bytes_sha256(3_000_000, "task_b")

    # Then the same seed gives the same bytes, another seed other bytes, chunks stay small
    assert first == again != other
    assert max(len(chunk) for chunk in iter_mp4(3_000_000, "task_a")) <= 1024 * 1024


def test_parse_tags_reads_every_documented_tag():
    # Given a prompt carrying every tag
    prompt = (
        "a cat [sim:no-callback] [sim:fail=CONTENT_VIOLATION] [sim:duplicate-callback] "
        "[sim:delay=1.5] [sim:size=1048576] [sim:status-errors=2] [sim:upgrade-never] "
        "[sim:4k-fail] [sim:4k-callback=snake]"
    )

    # When it is parsed
    tags = parse_tags(prompt)

    # Then each tag is reflected
    assert tags == SimTags(
        no_callback=True,
        fail_code="CONTENT_VIOLATION",
        duplicate_callback=True,
        delay_seconds=1.5,
        size_bytes=1_048_576,
        status_errors=2,
        upgrade_never=True,
        fail_4k=True,
        snake_case_4k_callback=True,
    )


def test_parse_tags_ignores_untagged_unknown_and_malformed_text():
    # Given prompts without valid tags
    # When they are parsed
    # Then nothing changes the defaults
    for prompt in (
        "a cat",
        "[sim:colour=red]",
        "[sim:delay=soon] [sim:size=-5]",
        "[sim:fail=]",
        "[sim:4k-callback=kebab]",
        "[sim:4k-callback=snake] [sim:4k-callback=camel]",
    ):
        assert parse_tags(prompt) == SimTags()


def test_sliding_window_admits_again_as_old_events_slide_out():
    # Given a limiter of 2 per 0.2 s
    limiter = SlidingWindowLimiter(RateLimit(max_requests=2, window_seconds=0.2))

    # When three events come at once, then one more after the window
    burst = [limiter.try_acquire() for _ in range(3)]
    time.sleep(0.25)
    later = limiter.try_acquire()

    # Then the third is refused and the later one admitted
    assert burst == [True, True, False] and later is True
