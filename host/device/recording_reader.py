"""Reading a recording, streamed in chunks, whatever the file's size.

`open_recording` streams a file of any size in chunks (memory: one chunk plus the largest record),
yielding each `Record` and, at the very place bytes were skipped, a `Damage` marker, so a consumer can
tell what the damage cost (the monitor counts frames lost there as lost to the recording, not to the
link). `read_recording` is the same reader collected into a list, for small files. Damage before the
tail (a flipped bit on disk) is reported as a corrupt region; the reader resynchronises on the next
record whose magic and CRC check out, so one bad record does not cost the rest of the file. A torn
tail (what a crash left) ends the records; `repair` cuts it off so appending can continue.
"""
from __future__ import annotations

import contextlib
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from host.device.recording_format import (CRC_PART, FILE_HEADER_SIZE, KINDS, MAGIC_BYTES, MAX_PAYLOAD,
                                          REC_HEADER, REC_HEADER_SIZE, RECORD_MAGIC, Kind, Record,
                                          RecordingError, check_file_header)


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
        magic, kind, flags, n, t_ns, crc = REC_HEADER.unpack_from(self._buf, i)
        if magic != RECORD_MAGIC or n > MAX_PAYLOAD or kind not in KINDS:
            return None
        if not self._fill(pos + REC_HEADER_SIZE + n):
            return None
        i = pos - self._base + REC_HEADER_SIZE
        payload = bytes(self._buf[i:i + n])
        if zlib.crc32(payload, zlib.crc32(CRC_PART.pack(kind, flags, n, t_ns))) != crc:
            return None
        return Record(Kind(kind), t_ns, payload, pos)

    def _resync(self, start: int) -> tuple[int, Record] | None:
        """The next intact record at or after `start`, found by its magic."""
        pos = start
        while True:
            self._keep = pos
            i = self._buf.find(MAGIC_BYTES, max(pos - self._base, 0))
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
        check_file_header(bytes(self._buf[:FILE_HEADER_SIZE]), self._path)
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
