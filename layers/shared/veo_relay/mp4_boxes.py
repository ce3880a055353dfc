"""The top-level box structure of an MP4 (ISO/IEC 14496-12, ISO-BMFF), checked as bytes stream by.

A file is taken as an MP4 only when its top-level boxes chain exactly from the first byte to the
last: an ``ftyp`` box first (32-bit size, 16 to 4096 bytes), then boxes whose headers are whole and
whose sizes fit (32-bit size >= 8; size 1: a 64-bit largesize >= 16 follows; size 0: the box runs
to the end of the file), with a ``moov`` and an ``mdat`` among them and no byte after the last.
Box types must be four printable ASCII characters. Only box headers are looked at (at most 16
bytes held): memory stays constant whatever the file's size. An HTML page after an ``ftyp`` box
(a polyglot), a truncated file and trailing bytes are all refused.
"""

from __future__ import annotations

import struct

__all__ = ["BoxChain", "BoxStructureError", "CutShort"]

_HEADER = 8  # 32-bit size + type
_LARGE_HEADER = 16  # + 64-bit largesize
_FTYP_MIN = 16  # header + major brand + minor version
_FTYP_MAX = 4096  # a few dozen compatible brands at most; more is not an ftyp
_SIZE_TO_END = 0
_SIZE_LARGE = 1
_REQUIRED = (b"moov", b"mdat")


class BoxStructureError(ValueError):
    """The bytes are not a well-formed MP4 at the top level."""


class CutShort(BoxStructureError):
    """The bytes end inside a box: a truncated file, or a body whose transfer was cut off."""


class BoxChain:
    """Feed it every byte of the file in order (``feed``), then call ``finish`` at its end."""

    def __init__(self, total_size: int | None) -> None:
        self._total = total_size  # the announced size (Content-Length), when there is one
        self._seen = 0  # bytes fed so far
        self._box_start = 0  # where the box whose header is being read (or the next box) starts
        self._header = bytearray()  # the bytes of that header fed so far
        self._found: set[bytes] = set()  # the types of the boxes whose headers were read
        self._to_end = False  # a size-0 box holds the rest of the file

    def feed(self, chunk: bytes | memoryview) -> None:
        base = self._seen
        self._seen += len(chunk)
        while not self._to_end:
            at = self._box_start + len(self._header) - base  # next header byte, in this chunk
            if at >= len(chunk):
                return
            self._header += chunk[at : at + self._header_length() - len(self._header)]
            if len(self._header) == self._header_length():
                self._close_header()

    def finish(self) -> None:
        """At the end of the file: the last box ends exactly there, moov and mdat were seen."""
        if not self._found:
            raise BoxStructureError(
                f"the file ({self._seen} bytes) does not start with an 'ftyp' box"
            )
        if self._header:
            raise BoxStructureError(
                f"{self._seen - self._box_start} trailing bytes at byte {self._box_start} are "
                "not a whole box"
            )
        if not self._to_end and self._box_start != self._seen:
            raise CutShort(
                f"the last box ends at byte {self._box_start}, past the end of the file "
                f"({self._seen} bytes): truncated"
            )
        missing = [t.decode() for t in _REQUIRED if t not in self._found]
        if missing:
            raise BoxStructureError(f"no {' and no '.join(missing)} box")

    def _header_length(self) -> int:
        if len(self._header) >= _HEADER and _size_field(self._header) == _SIZE_LARGE:
            return _LARGE_HEADER
        return _HEADER

    def _close_header(self) -> None:
        start, header = self._box_start, bytes(self._header)
        self._header.clear()
        size, box_type = _size_field(header), header[4:8]
        if not self._found and (box_type != b"ftyp" or not _FTYP_MIN <= size <= _FTYP_MAX):
            raise BoxStructureError(
                f"the file does not start with an 'ftyp' box of {_FTYP_MIN} to {_FTYP_MAX} bytes"
            )
        if not all(0x20 <= byte < 0x7F for byte in box_type):
            raise BoxStructureError(f"box at byte {start} has no printable type")
        name = box_type.decode("ascii")
        self._found.add(box_type)
        if size == _SIZE_TO_END:
            self._to_end = True
            if self._total is not None and self._total - start < _HEADER:
                raise BoxStructureError(f"box {name!r} at byte {start} runs past the end")
            return
        if size == _SIZE_LARGE:
            (size,) = struct.unpack(">Q", header[8:16])
            if size < _LARGE_HEADER:
                raise BoxStructureError(f"box {name!r} at byte {start} has largesize {size}")
        elif size < _HEADER:
            raise BoxStructureError(f"box {name!r} at byte {start} has size {size}")
        self._box_start = start + size
        if self._total is not None and self._box_start > self._total:
            raise BoxStructureError(
                f"box {name!r} at byte {start} ({size} bytes) runs past the end of the "
                f"{self._total}-byte file"
            )


def _size_field(header: bytes | bytearray) -> int:
    (size,) = struct.unpack(">I", header[:4])
    return int(size)
