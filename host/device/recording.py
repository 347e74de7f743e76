"""Crash-safe, append-only recording of everything a port produced.

A recording keeps the bytes exactly as they came from the port (chunks, including device text and line
noise), so a replay feeds the very same decoder the live monitor used. Link events (disconnect,
reconnect) and commands sent to the board are recorded alongside, each in its own checksummed record.
The monitor (`--record`) and the HIL plugin (one `<test>.rec` per test) both write it through
`host.device.reader.Reader`; `monitor replay`, `stats`, `export` and `plot` read it.

Durability: `Recorder` writes through a buffered file, and flushes + fsyncs at least every
`sync_interval` seconds (0.5 s by default) and on close. A `kill -9` therefore loses at most the
records written since the last sync; earlier records are never rewritten (the file is only ever
appended to), so they stay intact. The tail a crash leaves behind (a half-written record) is "torn":
the reader stops at the last intact record and reports the torn byte count; `Recorder` cuts it
off before appending a new session to an existing file.

The format is in `host.device.recording_format`; reading, damage and repair in
`host.device.recording_reader`. This module re-exports both: `host.device.recording` is the one
import a caller needs.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from host.device.recording_format import (FILE_HEADER_SIZE, FILE_MAGIC, FORMAT_VERSION, MAX_PAYLOAD,
                                          REC_HEADER_SIZE, RECORD_MAGIC, Kind, Record, RecordingError,
                                          encode_record, file_header)
from host.device.recording_reader import (CHUNK_SIZE, Damage, ReadReport, RecordingReader, open_recording,
                                          read_recording, repair)

__all__ = ["CHUNK_SIZE", "FILE_HEADER_SIZE", "FILE_MAGIC", "FORMAT_VERSION", "MAX_PAYLOAD", "REC_HEADER_SIZE",
           "RECORD_MAGIC", "Damage", "Kind", "ReadReport", "Record", "Recorder", "RecordingError",
           "RecordingReader", "encode_record", "file_header", "open_recording", "read_recording", "repair"]


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
