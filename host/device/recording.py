"""Crash-safe, append-only recording of everything a port produced.

A recording keeps the bytes exactly as they came from the port (chunks, including device text and line
noise), so a replay feeds the very same decoder the live monitor used. Link events (disconnect,
reconnect) and commands sent to the board are recorded alongside, each in its own checksummed record.
The monitor (`--record`) and the HIL plugin (one `<test>.rec` per test) both write it through
`host.device.reader.Reader`; `monitor replay`, `stats`, `export` and `plot` read it.

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

Durability: `Recorder` writes through a buffered file, and flushes + fsyncs at least every
`sync_interval` seconds (0.5 s by default) and on close. A `kill -9` therefore loses at most the
records written since the last sync; earlier records are never rewritten (the file is only ever
appended to), so they stay intact. The tail a crash leaves behind (a half-written record) is "torn":
the reader stops at the last intact record and reports the torn byte count; `Recorder` cuts it
off before appending a new session to an existing file. Damage *before* the tail (a flipped bit on
disk) is reported as a corrupt region; the reader resynchronises on the next record whose magic and
CRC check out, so one bad record does not cost the rest of the file.

Reading: `open_recording` streams a file of any size in chunks (memory: one chunk plus the largest
record), yielding each `Record` and, at the very place bytes were skipped, a `Damage` marker, so a
consumer can tell what the damage cost (the monitor counts frames lost there as lost to the recording,
not to the link). `read_recording` is the same reader collected into a list, for small files.
"""
from __future__ import annotations

import contextlib
import enum
import json
import os
import struct
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

FILE_MAGIC = b"PGLSREC\x00"
FORMAT_VERSION = 1
_FILE_HEADER = struct.Struct("<8sHH")
FILE_HEADER_SIZE = _FILE_HEADER.size + 4  # + crc32

RECORD_MAGIC = 0xA55A
_REC_HEADER = struct.Struct("<HBBIQI")  # magic, kind, flags, length, t_ns, crc32
REC_HEADER_SIZE = _REC_HEADER.size  # 20
_CRC_PART = struct.Struct("<BBIQ")  # kind, flags, length, t_ns: what the CRC covers besides the payload
MAX_PAYLOAD = 1 << 24  # 16 MiB: a chunk read from a port is never close to this

_MAGIC_BYTES = struct.pack("<H", RECORD_MAGIC)


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


@dataclass(slots=True)
class ReadReport:
    """What `read_recording` found besides the records."""
    records: int = 0
    intact_end: int = FILE_HEADER_SIZE     # offset just past the last intact record
    torn_bytes: int = 0                    # bytes after the last intact record (crash leftovers)
    corrupt: list[tuple[int, int]] = field(default_factory=list)  # (offset, length) skipped mid-file

    @property
    def corrupt_bytes(self) -> int:
        return sum(n for _, n in self.corrupt)

    @property
    def clean(self) -> bool:
        return self.torn_bytes == 0 and not self.corrupt


def file_header() -> bytes:
    head = _FILE_HEADER.pack(FILE_MAGIC, FORMAT_VERSION, 0)
    return head + struct.pack("<I", zlib.crc32(head))


def encode_record(kind: int, payload: bytes, t_ns: int) -> bytes:
    """One record, header and payload, as it sits in the file."""
    n = len(payload)
    if n > MAX_PAYLOAD:
        raise ValueError(f"record payload of {n} bytes exceeds {MAX_PAYLOAD}")
    crc = zlib.crc32(payload, zlib.crc32(_CRC_PART.pack(kind, 0, n, t_ns)))
    return _REC_HEADER.pack(RECORD_MAGIC, kind, 0, n, t_ns, crc) + payload


def _check_file_header(data: bytes | memoryview, path: object) -> None:
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


@dataclass(frozen=True, slots=True)
class Damage:
    """Bytes of the file skipped where it is damaged: mid-file (`torn` False; the reader carried on at
    the next intact record) or at the end (`torn` True: what a crash left). Yielded in record order, so
    whatever the skipped bytes held was received after the record before and before the record after.

    t_before_ns: host time of the last intact record before (0 if none); t_after_ns: of the next one
    (None for a torn tail). `t` is the time to file the damage under: the next record's, else the
    previous one's.
    """
    offset: int
    nbytes: int
    t_before_ns: int
    t_after_ns: int | None

    @property
    def torn(self) -> bool:
        return self.t_after_ns is None

    @property
    def t(self) -> float:
        return (self.t_before_ns if self.t_after_ns is None else self.t_after_ns) / 1e9


_KINDS = frozenset(int(k) for k in Kind)
CHUNK_SIZE = 1 << 20


class RecordingReader:
    """Iterates the records of an open recording, reading it `chunk_size` bytes at a time.

    Yields `Record`s and `Damage` markers in file order and fills `report` as it goes (complete once
    the iteration has ended). Memory stays at one chunk plus the largest record (<= MAX_PAYLOAD), also
    while resynchronising over a damaged region of any length. Raises RecordingError when the file
    header is wrong (on the first `next`).

    Args:
        f: a binary file positioned at the start of the recording.
        path: for messages.
        end: read no further than this offset (a file still being appended to reads as it was).
    """

    def __init__(self, f: BinaryIO, path: object = "<file>", chunk_size: int = CHUNK_SIZE,
                 end: int | None = None) -> None:
        self.report = ReadReport()
        self.size = 0  # bytes of the file read so far (the whole file, once iterated)
        self._f = f
        self._path = path
        self._chunk = max(chunk_size, REC_HEADER_SIZE)
        self._end = end
        self._buf = bytearray()
        self._base = 0     # file offset of _buf[0]
        self._keep = 0     # bytes before this offset are no longer needed
        self._eof = False

    # -- buffer
    def _more(self) -> bool:
        if self._eof:
            return False
        cut = self._keep - self._base
        if cut > 0:
            del self._buf[:cut]
            self._base += cut
        n = self._chunk
        if self._end is not None:
            n = min(n, self._end - self._base - len(self._buf))
        data = self._f.read(n) if n > 0 else b""
        if not data:
            self._eof = True
            return False
        self._buf += data
        self.size = self._base + len(self._buf)
        return True

    def _fill(self, upto: int) -> bool:
        """Make the bytes before file offset `upto` available; False if the file ends first."""
        while self._base + len(self._buf) < upto:
            if not self._more():
                return False
        return True

    # -- records
    def _record_at(self, pos: int) -> Record | None:
        if not self._fill(pos + REC_HEADER_SIZE):
            return None
        i = pos - self._base
        magic, kind, flags, n, t_ns, crc = _REC_HEADER.unpack_from(self._buf, i)
        if magic != RECORD_MAGIC or n > MAX_PAYLOAD or kind not in _KINDS:
            return None
        if not self._fill(pos + REC_HEADER_SIZE + n):
            return None
        i = pos - self._base + REC_HEADER_SIZE
        payload = bytes(self._buf[i:i + n])
        if zlib.crc32(payload, zlib.crc32(_CRC_PART.pack(kind, flags, n, t_ns))) != crc:
            return None
        return Record(Kind(kind), t_ns, payload, pos)

    def _resync(self, start: int) -> tuple[int, Record] | None:
        """The next intact record at or after `start`, found by its magic."""
        pos = start
        while True:
            self._keep = pos
            i = self._buf.find(_MAGIC_BYTES, max(pos - self._base, 0))
            if i < 0:
                pos = max(pos, self._base + len(self._buf) - 1)  # a magic may straddle the chunk end
                self._keep = pos
                if not self._more():
                    return None
                continue
            pos = self._base + i
            rec = self._record_at(pos)
            if rec is not None:
                return pos, rec
            pos += 1

    def __iter__(self) -> Iterator[Record | Damage]:
        rep = self.report
        self._fill(FILE_HEADER_SIZE)
        _check_file_header(bytes(self._buf[:FILE_HEADER_SIZE]), self._path)
        pos = rep.intact_end = FILE_HEADER_SIZE
        t_last = 0
        while True:
            self._keep = pos
            if not self._fill(pos + 1):
                rep.torn_bytes = 0
                return
            rec = self._record_at(pos)
            if rec is None:
                found = self._resync(pos + 1)
                if found is None:
                    self._fill(1 << 62)  # to the end: the torn tail's length
                    rep.torn_bytes = self.size - pos
                    yield Damage(pos, rep.torn_bytes, t_last, None)
                    return
                nxt, rec = found
                rep.corrupt.append((pos, nxt - pos))
                yield Damage(pos, nxt - pos, t_last, rec.t_ns)
                pos = nxt
            rep.records += 1
            pos += REC_HEADER_SIZE + len(rec.payload)
            rep.intact_end = pos
            t_last = rec.t_ns
            yield rec


@contextlib.contextmanager
def open_recording(path: str | os.PathLike, chunk_size: int = CHUNK_SIZE,
                   end: int | None = None) -> Iterator[RecordingReader]:
    """`with open_recording(path) as rd: for item in rd: ...`: a `RecordingReader` over the file at
    `path`, closed on exit. Raises RecordingError when the file cannot be opened."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise RecordingError(f"{path}: no such recording") from None
    except IsADirectoryError:
        raise RecordingError(f"{path}: is a directory, not a recording") from None
    except OSError as e:
        raise RecordingError(f"{path}: cannot read recording ({e.strerror or e})") from None
    with f:
        yield RecordingReader(f, path, chunk_size, end)


def read_recording(path: str | os.PathLike) -> tuple[list[Record], ReadReport]:
    """All intact records of the file at `path`, and what was skipped (small files: it keeps every
    record in memory; stream large ones with `open_recording`). Never modifies the file."""
    with open_recording(path) as rd:
        try:
            records = [x for x in rd if isinstance(x, Record)]
        except OSError as e:
            raise RecordingError(f"{path}: cannot read recording ({e.strerror or e})") from None
    return records, rd.report


def repair(path: str | os.PathLike) -> ReadReport:
    """Cut a torn tail off the file (what a crash left behind) so appending can continue. Returns
    the report; corrupt regions mid-file are left in place (the reader skips them)."""
    with open_recording(path) as rd:
        for _ in rd:
            pass
    report = rd.report
    if report.torn_bytes:
        with open(path, "r+b") as f:
            f.truncate(report.intact_end)
            f.flush()
            os.fsync(f.fileno())
    return report


class Recorder:
    """Appends records to a recording; safe against `kill -9` up to the last sync.

    Args:
        path: the recording; created with a header if absent or empty, otherwise repaired (torn tail
            cut) and appended to, so one file can hold several sessions.
        sync_interval: seconds between flush + fsync (at most; `poll()` or any write checks it).
        clock_ns: host wall clock in ns (injectable for tests).
    """

    def __init__(self, path: str | os.PathLike, sync_interval: float = 0.5,
                 clock_ns=time.time_ns) -> None:
        self.path = Path(path)
        self.sync_interval = sync_interval
        self._clock_ns = clock_ns
        self.repaired: ReadReport | None = None
        self.records_written = 0
        self.bytes_written = 0
        self.syncs = 0
        try:
            exists = self.path.exists() and self.path.stat().st_size > 0
            if exists:
                self.repaired = repair(self.path)
            self._f = open(self.path, "ab", buffering=1 << 16)
            if not exists:
                self._f.write(file_header())
                self._sync()
                _fsync_dir(self.path)
        except RecordingError:
            raise
        except OSError as e:
            raise RecordingError(f"{self.path}: cannot record ({e.strerror or e})") from None
        self._last_sync = time.monotonic()

    def write(self, kind: Kind, payload: bytes, t_ns: int | None = None) -> None:
        rec = encode_record(kind, payload, self._clock_ns() if t_ns is None else t_ns)
        self._f.write(rec)
        self.records_written += 1
        self.bytes_written += len(rec)
        self.poll()

    def rx(self, data: bytes, t_ns: int | None = None) -> None:
        """Bytes read from the port, exactly as received."""
        self.write(Kind.RX, data, t_ns)

    def tx(self, data: bytes, t_ns: int | None = None) -> None:
        """Bytes written to the port."""
        self.write(Kind.TX, data, t_ns)

    def meta(self, info: dict, t_ns: int | None = None) -> None:
        self.write(Kind.META, json.dumps(info, sort_keys=True).encode(), t_ns)

    def link(self, event: str, detail: str = "", t_ns: int | None = None) -> None:
        self.write(Kind.LINK, json.dumps({"event": event, "detail": detail}).encode(), t_ns)

    def poll(self) -> bool:
        """Sync if the interval has passed; call this regularly even when no data comes in."""
        if time.monotonic() - self._last_sync >= self.sync_interval:
            self._sync()
            return True
        return False

    def sync(self) -> None:
        self._sync()

    def _sync(self) -> None:
        self._f.flush()
        os.fsync(self._f.fileno())
        self._last_sync = time.monotonic()
        self.syncs += 1

    def close(self) -> None:
        if not self._f.closed:
            try:
                self._sync()
            finally:
                self._f.close()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
