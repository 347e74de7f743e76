"""The recording file format: the file header, the checksummed record and its kinds, shared by
the writer (`host.device.recording.Recorder`) and the reader (`host.device.recording_reader`).

File layout (all integers little-endian)::

    file header, 16 bytes:
        magic    8s   b"PGLSREC\\x00"
        version  u16  FORMAT_VERSION (1)
        reserved u16  0
        crc32    u32  of the 12 bytes before it
    records, each:
        magic    u16  0xA55A
        kind     u8   Kind.RX | Kind.TX | Kind.META | Kind.LINK
        flags    u8   0
        length   u32  payload length (<= MAX_PAYLOAD)
        t_ns     u64  host wall-clock time of the chunk, ns since the Unix epoch
        crc32    u32  of kind, flags, length, t_ns and the payload
        payload  length bytes
"""
from __future__ import annotations

import enum
import json
import struct
import zlib
from dataclasses import dataclass

FILE_MAGIC = b"PGLSREC\x00"
FORMAT_VERSION = 1
_FILE_HEADER = struct.Struct("<8sHH")
FILE_HEADER_SIZE = _FILE_HEADER.size + 4  # + crc32

RECORD_MAGIC = 0xA55A
REC_HEADER = struct.Struct("<HBBIQI")  # magic, kind, flags, length, t_ns, crc32
REC_HEADER_SIZE = REC_HEADER.size  # 20
CRC_PART = struct.Struct("<BBIQ")  # kind, flags, length, t_ns: what the CRC covers besides the payload
MAX_PAYLOAD = 1 << 24  # 16 MiB: a chunk read from a port is never close to this

MAGIC_BYTES = struct.pack("<H", RECORD_MAGIC)


class Kind(enum.IntEnum):
    RX = 0    # bytes as read from the port
    TX = 1    # bytes written to the port (commands)
    META = 2  # JSON: a session starts (port, baud, board identity, tool version)
    LINK = 3  # JSON: link event ({"event": "disconnected" | "reconnected" | ..., "detail": ...})


class RecordingError(Exception):
    """A recording cannot be read at all (not a recording, unknown version, unreadable)."""


@dataclass(frozen=True, slots=True)
class Record:
    kind: Kind
    t_ns: int
    payload: bytes
    offset: int  # file offset of the record header

    @property
    def t(self) -> float:
        """Host time in seconds since the epoch."""
        return self.t_ns / 1e9

    def json(self) -> dict:
        """The payload of a META or LINK record as a dict."""
        return json.loads(self.payload.decode("utf-8"))


def file_header() -> bytes:
    head = _FILE_HEADER.pack(FILE_MAGIC, FORMAT_VERSION, 0)
    return head + struct.pack("<I", zlib.crc32(head))


def encode_record(kind: int, payload: bytes, t_ns: int) -> bytes:
    """One record, header and payload, as it sits in the file."""
    n = len(payload)
    if n > MAX_PAYLOAD:
        raise ValueError(f"record payload of {n} bytes exceeds {MAX_PAYLOAD}")
    crc = zlib.crc32(payload, zlib.crc32(CRC_PART.pack(kind, 0, n, t_ns)))
    return REC_HEADER.pack(RECORD_MAGIC, kind, 0, n, t_ns, crc) + payload


def check_file_header(data: bytes | memoryview, path: object) -> None:
    if len(data) < FILE_HEADER_SIZE:
        if bytes(data[: len(FILE_MAGIC)]) == FILE_MAGIC[: len(data)] and len(data) > 0:
            raise RecordingError(f"{path}: recording header is truncated ({len(data)} bytes)")
        raise RecordingError(f"{path}: not a pagerless recording (file too short)")
    magic, version, _ = _FILE_HEADER.unpack_from(data, 0)
    if magic != FILE_MAGIC:
        raise RecordingError(f"{path}: not a pagerless recording (bad magic)")
    (crc,) = struct.unpack_from("<I", data, _FILE_HEADER.size)
    if crc != zlib.crc32(bytes(data[: _FILE_HEADER.size])):
        raise RecordingError(f"{path}: recording header is corrupt (CRC mismatch)")
    if version != FORMAT_VERSION:
        raise RecordingError(f"{path}: recording format version {version} is not supported "
                             f"(this tool reads version {FORMAT_VERSION})")


KINDS = frozenset(int(k) for k in Kind)
