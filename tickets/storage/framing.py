"""How the log's records sit in its files: each framed by its length and a CRC-32 of its bytes, so a
record cut short by a crash is told from corruption; and positions, one integer
`generation << 40 | offset`, so that positions compare as numbers."""

from __future__ import annotations

import struct
import zlib

FILE_MAGIC = b"TICKETLOG1\n"
HEADER = struct.Struct("<II")  # payload length, CRC-32 of the payload
MAX_RECORD = 64 * 1024 * 1024
OFFSET_BITS = 40


def position(generation: int, offset: int) -> int:
    """One comparable number for (generation, offset)."""
    return generation << OFFSET_BITS | offset


def split(at: int) -> tuple[int, int]:
    return at >> OFFSET_BITS, at & ((1 << OFFSET_BITS) - 1)


def frame(payload: bytes) -> bytes:
    """A record as it is written: length, checksum, payload."""
    return HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def unframe(data: bytes, start: int) -> tuple[list[tuple[int, bytes]], int]:
    """The whole records in data[start:], each with the offset just past it, and where parsing stopped."""
    records = []
    at = start
    while at + HEADER.size <= len(data):
        length, checksum = HEADER.unpack_from(data, at)
        end = at + HEADER.size + length
        if not 0 < length <= MAX_RECORD or end > len(data):  # zeros are never a record: payloads are JSON
            break
        payload = data[at + HEADER.size : end]
        if zlib.crc32(payload) != checksum:
            break
        records.append((end, payload))
        at = end
    return records, at


def whole_record_after(data: bytes, start: int) -> bool:
    """Whether a record with a good checksum begins anywhere after `start`."""
    for at in range(start + 1, len(data) - HEADER.size + 1):
        length, checksum = HEADER.unpack_from(data, at)
        end = at + HEADER.size + length
        if 0 < length <= len(data) - at - HEADER.size and zlib.crc32(data[at + HEADER.size : end]) == checksum:
            return True
    return False
