"""The collector's Parquet store: partitioned by board, stream and day, crash-safe.

    OUT/board=<board>/stream=<stream>/day=<YYYY-MM-DD>/part-<run>-<n>.parquet
    (stream=_status and stream=_event hold the STATUS and EVENT messages; no board stream starts with _)

Rows are buffered in memory and written once per flush interval, one file per partition per
flush: written under a temporary name, fsynced, renamed, and the directory fsynced.  A kill -9
therefore loses at most the rows of the interval not yet flushed, and a file under its final
name is always complete; temporary files a crash left behind are removed on start.  A write
that fails (the disk is full) drops that file's rows and counts them (`lost_collector`), one
line per cause; the collector carries on.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from host.fleet.topics import safe

TMP_SUFFIX = ".tmp"
_DATA_FIXED = ("t_host", "t_recv", "boot_id", "session", "dev_seq", "t_us", "missing")


def _day(t: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(t))


class Store:
    """Args:
        out: the output folder (created).
        run: this collector run's id, in every file name.
        warn: called with one line per new kind of write failure.
    """

    def __init__(self, out: str | Path, run: str, warn=lambda line: None) -> None:
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.run = run
        self.warn = warn
        self._buf: dict[tuple, dict[str, list]] = {}   # (board, stream, day, columns) -> columns
        self._rows: dict[tuple, int] = {}
        self._files = 0
        self.stored: dict[str, int] = {}         # data samples per board written
        self.buffered: dict[str, int] = {}
        self.lost_collector: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.removed_tmp = self._clean()

    def _clean(self) -> int:
        n = 0
        for p in self.out.rglob(f"*{TMP_SUFFIX}"):
            try:
                p.unlink()
                n += 1
            except OSError:
                pass
        return n

    # -- rows
    def data(self, board: str, stream: str, msg: dict, t_recv: float) -> None:
        n = msg["n"]
        if not n:
            return
        values = msg["values"]
        chans = tuple(sorted(values))
        key = (board, safe(stream), _day(float(msg.get("t", t_recv))), chans, True)
        cols = self._buf.get(key)
        if cols is None:
            cols = self._buf[key] = {k: [] for k in (*_DATA_FIXED, *chans)}
        t0, dt = int(msg.get("t0_us", 0)), int(msg.get("dt_us", 0))
        miss = set(msg.get("missing") or ())
        cols["t_host"] += [float(msg.get("t", t_recv))] * n
        cols["t_recv"] += [t_recv] * n
        cols["boot_id"] += [str(msg.get("boot_id", ""))] * n
        cols["session"] += [int(msg.get("session", 0))] * n
        cols["dev_seq"] += [int(msg.get("dev_seq", 0))] * n
        cols["t_us"] += [t0 + dt * i for i in range(n)]
        cols["missing"] += [i in miss for i in range(n)] if miss else [False] * n
        for ch in chans:
            cols[ch] += values[ch]
        self._rows[key] = self._rows.get(key, 0) + n
        self.buffered[board] = self.buffered.get(board, 0) + n

    def record(self, board: str, stream: str, msg: dict, t_recv: float) -> None:
        """A STATUS or EVENT message as one row (nested fields as JSON text)."""
        row = {"t_host": float(msg.get("t", t_recv)), "t_recv": t_recv}
        for k, v in msg.items():
            if k in ("t", "pub", "ps"):
                continue
            row[k] = json.dumps(v) if isinstance(v, list | dict) else v
        cols_key = tuple(sorted(row))
        key = (board, stream, _day(row["t_host"]), cols_key, False)
        cols = self._buf.setdefault(key, {k: [] for k in cols_key})
        for k in cols_key:
            cols[k].append(row[k])
        self._rows[key] = self._rows.get(key, 0) + 1

    # -- files
    def flush(self) -> int:
        """Write every buffered partition as a new closed file; returns files written."""
        buf, rows = self._buf, self._rows
        self._buf, self._rows = {}, {}
        written = 0
        for key, cols in buf.items():
            board, stream, day, _, is_data = key
            n = rows[key]
            if is_data:
                self.buffered[board] -= n
            try:
                self._write(board, stream, day, cols)
                written += 1
                if is_data:
                    self.stored[board] = self.stored.get(board, 0) + n
            except (OSError, pa.ArrowException) as e:
                why = getattr(e, "strerror", None) or str(e)
                if why not in self.errors:
                    self.warn(f"cannot write {board}/{stream} ({why}): rows dropped and counted")
                self.errors[why] = self.errors.get(why, 0) + 1
                if is_data:
                    self.lost_collector[board] = self.lost_collector.get(board, 0) + n
        return written

    def _write(self, board: str, stream: str, day: str, cols: dict) -> None:
        d = self.out / f"board={board}" / f"stream={stream}" / f"day={day}"
        d.mkdir(parents=True, exist_ok=True)
        self._files += 1
        final = d / f"part-{self.run}-{self._files:06d}.parquet"
        tmp = final.with_name(final.name + TMP_SUFFIX)
        table = pa.table(cols)
        try:
            with open(tmp, "wb") as f:
                pq.write_table(table, f, compression="zstd")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
        except BaseException:
            try:
                tmp.unlink()
            except OSError:
                pass
            raise
        fsync_dir(d)

    def write_json(self, rel: str, obj: dict) -> None:
        """A small JSON file replaced atomically (ledgers, collector state)."""
        final = self.out / rel
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(final.name + TMP_SUFFIX)
        try:
            with open(tmp, "w") as f:
                json.dump(obj, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
        except OSError as e:
            why = e.strerror or str(e)
            if why not in self.errors:
                self.warn(f"cannot write {rel} ({why})")
            self.errors[why] = self.errors.get(why, 0) + 1
            try:
                tmp.unlink()
            except OSError:
                pass


def fsync_dir(d: Path) -> None:
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
