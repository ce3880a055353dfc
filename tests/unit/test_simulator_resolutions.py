"""The simulator's videos carry their resolution (MP4 dimensions and URL path), and apimart makes
videos of the resolution asked for, reporting progress as they render."""

from __future__ import annotations

import struct

import pytest

from offline.simulator import SMALLEST_MP4_SIZE, iter_mp4, mp4_bytes_sha256, resolution_of
from offline.simulator.mp4 import CLIP_PATH, DIMENSIONS, PLAYABLE_MP4_SIZE
from tests.simulator_harness import DELAY, ORIGIN, Harness, harness_for

CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}


def box_tree(data: bytes, start: int = 0, end: int | None = None) -> list[tuple[bytes, object]]:
    """(type, children or size) of every box; asserts each level's boxes tile their parent."""
    end = len(data) if end is None else end
    boxes: list[tuple[bytes, object]] = []
    offset = start
    while offset < end:
        size, box_type = struct.unpack(">I4s", data[offset : offset + 8])
        if box_type in CONTAINERS:
            boxes.append((box_type, box_tree(data, offset + 8, offset + size)))
        else:
            boxes.append((box_type, size))
        offset += size
    assert offset == end
    return boxes


def sample_entry(data: bytes) -> bytes:
    """The first sample entry of the stsd (a full box: version/flags, entry count, entries)."""
    stsd_at = data.index(b"stsd") - 4
    (entry_size,) = struct.unpack(">I", data[stsd_at + 16 : stsd_at + 20])
    return data[stsd_at + 16 : stsd_at + 16 + entry_size]


@pytest.mark.parametrize("resolution", list(DIMENSIONS))
def test_a_video_is_the_h264_clip_presented_at_its_resolution(resolution: str):
    # Given a simulator video of a resolution
    data = b"".join(iter_mp4(4096, "task_1", resolution=resolution))

    # When its boxes are read
    tree = box_tree(data)

    # Then it is the committed clip, moov first: a video trak whose sample entry is H.264 (avc1 +
    # an avcC of a baseline profile) coded at 64x36, and whose tkhd presents it at the resolution
    assert [box for box, _ in tree] == [b"ftyp", b"moov", b"free", b"mdat"]
    assert [box for box, _ in dict(tree)[b"moov"]][:2] == [b"mvhd", b"trak"]  # type: ignore[attr-defined]
    assert data.index(b"hdlr") + 12 == data.index(b"vide") < data.index(b"stsd")  # a video track
    entry = sample_entry(data)
    assert entry[4:8] == b"avc1"
    assert struct.unpack(">HH", entry[32:36]) == (64, 36)
    avcc = entry[8 + 78 :]
    assert avcc[4:8] == b"avcC" and avcc[8] == 1 and avcc[9] == 66  # version 1, baseline
    width, height = DIMENSIONS[resolution]
    tkhd_at = data.index(b"tkhd")
    assert struct.unpack(">II", data[tkhd_at + 80 : tkhd_at + 88]) == (width << 16, height << 16)
    assert resolution_of(data) == resolution
    assert resolution_of(data[:SMALLEST_MP4_SIZE]) == resolution  # the start is enough
    # and it is the clip byte for byte but for the tkhd's size and the mdat's, padding after
    clip = CLIP_PATH.read_bytes()
    mdat_at = data.index(b"mdat") - 4
    changed = {at for at in range(len(clip)) if data[at] != clip[at]}
    assert changed <= {*range(tkhd_at + 80, tkhd_at + 88), *range(mdat_at, mdat_at + 4)}


def test_the_clip_is_the_smallest_playable_size():
    # Given the clip / When a video of exactly its size is made / Then it is the clip (tkhd aside)
    clip = CLIP_PATH.read_bytes()
    assert len(clip) == PLAYABLE_MP4_SIZE
    data = b"".join(iter_mp4(PLAYABLE_MP4_SIZE, "task_1", resolution="720p"))
    assert len(data) == len(clip)
    assert [box for box, _ in box_tree(data)] == [b"ftyp", b"moov", b"free", b"mdat"]
    tkhd_at = data.index(b"tkhd")
    changed = {at for at in range(len(clip)) if data[at] != clip[at]}
    assert changed <= set(range(tkhd_at + 80, tkhd_at + 88))


@pytest.mark.parametrize("resolution", list(DIMENSIONS))
def test_a_video_smaller_than_the_clip_names_its_dimensions_but_has_no_frames(resolution: str):
    # Given a simulator video of a resolution, too small for the clip
    data = b"".join(iter_mp4(PLAYABLE_MP4_SIZE - 1, "task_1", resolution=resolution))

    # When its boxes are read
    moov = dict(box_tree(data))[b"moov"]

    # Then moov holds a video trak whose tkhd and avc1 say the frame size, and the helper reads it
    assert [box for box, _ in box_tree(data)] == [b"ftyp", b"moov", b"mdat"]
    assert [box for box, _ in moov] == [b"mvhd", b"trak"]  # type: ignore[attr-defined]
    width, height = DIMENSIONS[resolution]
    tkhd_at = data.index(b"tkhd")
    assert struct.unpack(">II", data[tkhd_at + 80 : tkhd_at + 88]) == (width << 16, height << 16)
    assert struct.unpack(">HH", sample_entry(data)[32:36]) == (width, height)
    assert resolution_of(data) == resolution
    assert resolution_of(data[:SMALLEST_MP4_SIZE]) == resolution


def test_the_resolutions_give_different_bytes_of_the_same_size():
    # Given one size and seed / When hashed at each resolution / Then three different files
    digests = {mp4_bytes_sha256(10_000, "task_1", resolution) for resolution in DIMENSIONS}
    assert len(digests) == 3


def test_resolution_of_refuses_what_the_simulator_did_not_make():
    # Given bytes without a track header / When read / Then refused
    with pytest.raises(ValueError, match="no moov/trak/tkhd"):
        resolution_of(b"\x00\x00\x00\x10ftypisom\x00\x00\x02\x00")
    with pytest.raises(ValueError, match="resolution must be one of"):
        next(iter_mp4(1000, "s", resolution="8k"))


# --- apimart --------------------------------------------------------------------------------------


@pytest.fixture
def apimart(monkeypatch: pytest.MonkeyPatch) -> Harness:
    return harness_for("apimart", monkeypatch)


def _generate(apimart: Harness, **fields: object) -> str:
    body = {"model": "veo3.1-fast", "prompt": "a fox", **fields}
    answer = apimart.call("POST", "/v1/videos/generations", body)
    return str(answer["data"][0]["task_id"])


def _finished_video_url(apimart: Harness, task_id: str) -> str:
    apimart.clock.advance(DELAY)
    data = apimart.call("GET", f"/v1/tasks/{task_id}")["data"]
    assert data["status"] == "completed"
    (url,) = data["result"]["videos"][0]["url"]
    return str(url)


@pytest.mark.parametrize(
    ("asked", "resolution", "path"),
    [
        ({}, "720p", ""),
        ({"resolution": "1080p"}, "1080p", "1080p/"),
        ({"resolution": "4k"}, "4k", "4k/"),
    ],
)
def test_apimart_makes_a_video_of_the_resolution_asked_for(
    apimart: Harness, asked: dict[str, str], resolution: str, path: str
):
    # Given a generation asking for a resolution (720p when none is named)
    task_id = _generate(apimart, **asked)

    # When it has finished
    url = _finished_video_url(apimart, task_id)

    # Then its URL names the resolution above 720p and its bytes have those dimensions
    assert url == f"{ORIGIN}/files/{path}{task_id}.mp4"
    video = apimart.simulator.task(task_id).video
    assert video.resolution == resolution
    assert (
        resolution_of(next(iter_mp4(video.size, video.seed, resolution=resolution))) == resolution
    )
    assert apimart.simulator.video_sha256(task_id) == mp4_bytes_sha256(
        video.size, task_id, resolution
    )


def test_apimart_remix_makes_a_video_of_its_own_resolution(apimart: Harness):
    # Given a finished 720p task
    parent_id = _generate(apimart)
    _finished_video_url(apimart, parent_id)

    # When it is remixed in 4k
    body = {"model": "veo3.1-fast", "prompt": "on", "resolution": "4k"}
    remix = apimart.call("POST", f"/v1/videos/{parent_id}/remix", body)
    remix_id = remix["data"][0]["task_id"]

    # Then the remix's video is 4k
    assert _finished_video_url(apimart, remix_id) == f"{ORIGIN}/files/4k/{remix_id}.mp4"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"resolution": "2k"}, "resolution must be one of 720p, 1080p, 4k"),
        ({"resolution": "1080p", "enable_gif": True}, "enable_gif cannot be combined"),
        ({"resolution": "4k", "enable_gif": True}, "enable_gif cannot be combined"),
    ],
)
def test_apimart_refuses_an_unknown_resolution_or_a_gif_above_720p(
    apimart: Harness, fields: dict[str, object], message: str
):
    # Given a generation with a bad resolution combination
    body = {"model": "veo3.1-fast", "prompt": "a fox", **fields}

    # When submitted
    response = apimart.respond("POST", "/v1/videos/generations", body)

    # Then it is an HTTP 400 with a message that says why, and nothing is created
    assert response.status == 400
    assert message in response.body["error"]["message"]
    assert apimart.simulator.tasks() == []


def test_apimart_remix_refuses_an_unknown_resolution(apimart: Harness):
    # Given a finished task
    parent_id = _generate(apimart)
    _finished_video_url(apimart, parent_id)

    # When remixed at 8k / Then refused with a 400
    body = {"model": "veo3.1-fast", "prompt": "on", "resolution": "8k"}
    response = apimart.respond("POST", f"/v1/videos/{parent_id}/remix", body)
    assert response.status == 400 and "resolution" in response.body["error"]["message"]


def test_apimart_progress_rises_with_elapsed_time_and_is_100_when_completed(apimart: Harness):
    # Given a task of the default delay
    task_id = _generate(apimart, resolution="1080p")

    # When it is polled along its delay
    polls = []
    for step in (0.0, 0.8, 0.4, 0.7, 0.1):
        apimart.clock.advance(step)
        data = apimart.call("GET", f"/v1/tasks/{task_id}")["data"]
        polls.append((data["status"], data["progress"]))

    # Then it is 0 while pending, then the elapsed share of the delay (below 100) while
    # processing, and 100 once completed
    assert [status for status, _ in polls] == ["pending"] + ["processing"] * 3 + ["completed"]
    progress = [percent for _, percent in polls]
    assert progress[0] == 0 and progress[-1] == 100
    for percent, expected in zip(progress[1:4], (40, 60, 95), strict=True):
        assert expected - 1 <= percent <= expected
