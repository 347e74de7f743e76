"""Recordings -> samples in physical units: loading, CSV export, and the machine-readable outputs.

Output formats (live monitor when stdout is not a terminal, and `export`):

* ``csv``: one row per **sample**. Columns: ``t_host`` (s since epoch, when the frame arrived),
  ``session`` (1 = first boot seen), ``boot_id`` (hex), ``stream``, ``seq``, ``index`` (sample in
  frame), ``t_device_s`` (device time, unwrapped, per session), ``gap_before`` (DATA frames of this
  stream lost just before this frame; non-zero only on a frame's first sample), ``missing`` (0/1),
  then one column per ``<stream>.<channel>`` (channel names carry the unit: ``imu.accel_x_g``).
  Missing samples have empty value cells. Live, the columns are fixed by the first HELLO.
* ``jsonl``: one object per sample ``{"type": "sample", ...same fields..., "values": {channel: value}}``
  (null for missing), plus ``{"type": "log", "source": ..., "text": ...}`` for device events, device
  text and link events.
* ``text``: for people reading a pipe: one line per DATA frame (local wall-clock time of arrival,
  ``2024-05-01 14:03:07.412``, stream, seq, count, last sample's values with units) and one per log line.
* tidy CSV and Parquet (``export --tidy`` / ``--parquet``): host/monitoring/tidy.py.
"""
from __future__ import annotations

import csv
import datetime
import io
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

from host.device.recording import Damage, Kind, ReadReport, Record, open_recording
from host.monitoring.session import Session
from host.monitoring.state import Batch, LogLine

FIXED_COLUMNS = ["t_host", "session", "boot_id", "stream", "seq", "index", "t_device_s", "gap_before",
                 "missing"]


@dataclass
class Loaded:
    """A recording decoded end to end in one pass: the session as it stands at the end, what the reader
    found, and what stats needs of the records. Records and batches are kept only by `load(keep=True)`
    (small files: tests, the HIL evidence check), so memory does not grow with the file."""
    session: Session
    report: ReadReport
    path: str = ""
    size: int = 0                    # bytes read: a second pass reads no further (the file may grow)
    meta: list[dict] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)   # records per Kind name
    t_first: float = 0.0
    t_last: float = 0.0
    records: list[Record] = field(default_factory=list)
    batches: list[Batch] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return self.t_last - self.t_first


def apply_record(session: Session, rec: Record | Damage) -> list[Batch]:
    """Feed one item of a recording into a session (the same path the live monitor takes)."""
    if isinstance(rec, Damage):
        session.recording_damage(rec)
        return []
    if rec.kind == Kind.RX:
        return session.feed(rec.payload, rec.t)
    if rec.kind == Kind.LINK:
        try:
            ev = rec.json()
            session.link_event(str(ev.get("event", "?")), str(ev.get("detail", "")), rec.t)
        except ValueError:
            session.note("unreadable link event in recording", rec.t)
    elif rec.kind == Kind.META:
        try:
            m = rec.json()
            session.note(f"recording session: port {m.get('port', '?')} board {m.get('identity', '?')}",
                         rec.t)
        except ValueError:
            pass
    return []


READS_PER_FEED = 64  # consecutive RX records decoded together (Session.feed_reads: units once per run)


def load(path: str | os.PathLike, line_rate: float | None = None,
         on_batch: Callable[[Batch, Session], None] | None = None, keep: bool = False,
         end: int | None = None) -> Loaded:
    """Decode a recording in one streaming pass, handing each batch to `on_batch` as it is decoded.
    Memory is independent of the file's size unless `keep` (every record and batch kept on the result).
    Raises RecordingError for a file that is not a recording."""
    session = Session(line_rate=line_rate)
    out = Loaded(session, ReadReport(), str(path))
    kinds = dict.fromkeys((k.name for k in Kind), 0)

    def emit(batches: list[Batch]) -> None:
        if keep:
            out.batches.extend(batches)
        if on_batch is not None:
            for b in batches:
                on_batch(b, session)

    reads: list[tuple[float, bytes]] = []
    with open_recording(path, end=end) as rd:
        for rec in rd:
            if isinstance(rec, Record):
                if keep:
                    out.records.append(rec)
                kinds[rec.kind.name] += 1
                if rd.report.records == 1:
                    out.t_first = rec.t
                out.t_last = rec.t
                if rec.kind == Kind.RX:
                    reads.append((rec.t, rec.payload))
                    if len(reads) >= READS_PER_FEED:
                        emit(session.feed_reads(reads))
                        reads = []
                    continue
                if rec.kind == Kind.META:
                    try:
                        out.meta.append(rec.json())
                    except ValueError:
                        pass
            if reads:
                emit(session.feed_reads(reads))
                reads = []
            emit(apply_record(session, rec))
    if reads:
        emit(session.feed_reads(reads))
    emit(session.finish(out.t_last))
    out.report, out.size, out.kinds = rd.report, rd.size, kinds
    return out


def channel_columns(session: Session) -> list[str]:
    cols = []
    for st in session.streams.values():
        cols += [f"{st.name}.{c.name}" for c in st.channels]
    return cols


def _num(v: float) -> str:
    return "" if math.isnan(v) else repr(float(v))


def sample_rows(b: Batch) -> list[dict]:
    """One dict per sample of a batch (fixed fields + 'values')."""
    rows = []
    names = list(b.values)
    cols = [b.values[n].tolist() for n in names]
    t_us = b.t_us.tolist()
    miss = b.missing.tolist()
    for i in range(b.count):
        rows.append({
            "t_host": round(b.t_host, 6), "session": b.session, "boot_id": f"{b.boot_id:08x}",
            "stream": b.name, "seq": b.seq, "index": i, "t_device_s": t_us[i] / 1e6,
            "gap_before": b.gap_before if i == 0 else 0, "missing": int(miss[i]),
            "values": {n: cols[k][i] for k, n in enumerate(names)},
        })
    return rows


class CsvSink:
    """Wide CSV, one row per sample; columns fixed when the first batch (after HELLO) arrives."""

    def __init__(self, out: IO[str], columns: list[str] | None = None) -> None:
        self._out = out
        self._w = csv.writer(out, lineterminator="\n")
        self.columns = columns
        self._header_done = False
        self.rows = 0

    def batch(self, b: Batch, session: Session) -> None:
        if self.columns is None:
            self.columns = channel_columns(session)
        if not self._header_done:
            self._w.writerow(FIXED_COLUMNS + self.columns)
            self._header_done = True
        index = {c: k for k, c in enumerate(self.columns)}
        for r in sample_rows(b):
            vals = [""] * len(self.columns)
            for n, v in r["values"].items():
                k = index.get(f"{b.name}.{n}")
                if k is not None:
                    vals[k] = _num(v)
            self._w.writerow([r["t_host"], r["session"], r["boot_id"], r["stream"], r["seq"], r["index"],
                              r["t_device_s"], r["gap_before"], r["missing"], *vals])
            self.rows += 1

    def log(self, line: LogLine) -> None:
        pass  # CSV carries samples only; events go to stderr in the CLI


class JsonlSink:
    def __init__(self, out: IO[str]) -> None:
        self._out = out
        self.rows = 0

    def batch(self, b: Batch, session: Session) -> None:
        for r in sample_rows(b):
            r["values"] = {n: (None if math.isnan(v) else v) for n, v in r["values"].items()}
            self._out.write(json.dumps({"type": "sample", **r}, allow_nan=False) + "\n")
            self.rows += 1

    def log(self, line: LogLine) -> None:
        self._out.write(json.dumps({"type": "log", "t_host": round(line.t, 6), "source": line.source,
                                    "text": line.text}) + "\n")


def wall_clock(t: float) -> str:
    """Host time (s since the epoch) as local wall-clock time with milliseconds, ISO-like."""
    return datetime.datetime.fromtimestamp(t).isoformat(sep=" ", timespec="milliseconds")


class TextSink:
    def __init__(self, out: IO[str]) -> None:
        self._out = out
        self.rows = 0

    def batch(self, b: Batch, session: Session) -> None:
        parts = []
        for n, arr in b.values.items():
            v = arr[-1] if len(arr) else math.nan
            parts.append(f"{n}={v:.4g} {b.units.get(n, '')}".rstrip())
        gap = f" gap={b.gap_before}" if b.gap_before else ""
        miss = int(b.missing.sum())
        miss_s = f" missing={miss}" if miss else ""
        self._out.write(f"{wall_clock(b.t_host)} {b.name} seq={b.seq} n={b.count}{gap}{miss_s} | "
                        + "  ".join(parts) + "\n")
        self.rows += 1

    def log(self, line: LogLine) -> None:
        self._out.write(f"{wall_clock(line.t)} [{line.source}] {line.text}\n")


def make_sink(fmt: str, out: IO[str]):
    if fmt == "csv":
        return CsvSink(out)
    if fmt == "jsonl":
        return JsonlSink(out)
    if fmt == "text":
        return TextSink(out)
    raise ValueError(f"unknown format {fmt!r} (csv, jsonl, text)")


def export_csv(loaded: Loaded, out: IO[str], stream: str | None = None) -> int:
    """Write every sample of a loaded recording as wide CSV; returns the number of rows.

    The columns are every channel of every stream the whole recording names, which `loaded` (the
    first pass) knows; the rows come from a second streaming pass over the same bytes."""
    cols = channel_columns(loaded.session)
    if stream is not None:
        cols = [c for c in cols if c.split(".", 1)[0] == stream]
    sink = CsvSink(out, cols)

    def row(b: Batch, session: Session) -> None:
        if stream is None or b.name == stream:
            sink.batch(b, session)

    if loaded.batches:
        for b in loaded.batches:
            row(b, loaded.session)
    else:
        load(loaded.path, loaded.session.line_rate, on_batch=row, end=loaded.size)
    if not sink._header_done:
        sink._w.writerow(FIXED_COLUMNS + cols)
    return sink.rows


def stats_text(loaded: Loaded, path: str) -> str:
    """Human summary of a recording: records, sessions, streams, link counters, reconciliation."""
    s = loaded.session
    st = s.stats
    rep = loaded.report
    buf = io.StringIO()
    p = buf.write
    dur = loaded.duration
    kinds = loaded.kinds
    p(f"recording {path}: {rep.records} records ({', '.join(f'{k} {n}' for k, n in kinds.items() if n)}), "
      f"{dur:.1f} s\n")
    if rep.torn_bytes:
        p(f"  torn tail: {rep.torn_bytes} bytes after the last intact record (crash leftovers)\n")
    for off, n in rep.corrupt:
        p(f"  corrupt: {n} bytes skipped at offset {off}\n")
    d = s.device
    p(f"board {d.board or '?'} fw {d.fw or '?'}; boot sessions {st.sessions}; link events {s.link_events}\n")
    p(f"link: {st.bytes} bytes, {st.frames_ok} frames ok, {st.crc_errors} CRC errors, "
      f"{st.framing_errors} framing errors, {st.invalid_frames} invalid, {st.text_bytes} text bytes, "
      f"{st.duplicates} duplicates, {st.missing} frames missing\n")
    if d.uptime_ms is not None:
        p(f"device: uptime {d.uptime_ms / 1000:.1f} s, free heap {d.free_heap}, loop overruns "
          f"{d.loop_overruns}, reset cause {d.reset_cause}, frames sent {d.frames_sent}, "
          f"dropped {d.frames_dropped}\n")
    for x in s.streams.values():
        p(f"stream {x.name} ({x.kind}, {x.nominal_hz:g} Hz nominal): {x.frames} frames, {x.samples} samples, "
          f"{x.gaps} frames missing, {x.samples_missing} samples missing, device dropped {x.device_dropped}\n")
    led = s.ledger.report()
    p("sample ledger (samples; docs/protocol.md, Sample ledger):\n")
    for b in led.boots:
        p(f"  boot {b['boot_id']} (session {b['session']}{', seen from its start' if b['from_boot'] else ''}): "
          f"{b['verdict']}\n")
        for name, x in b["streams"].items():
            p(f"    {name}: {_ledger_line(x)}\n")
    for name, x in led.streams.items():
        p(f"  total {name}: {x.line()}\n")
    p(f"  total: {led.total.line()}\n")
    for why in led.total.reasons:
        p(f"    {why}\n")
    p(f"reconciliation: {led.verdict}\n")
    return buf.getvalue()


def _ledger_line(d: dict) -> str:
    from host.monitoring.ledger_lines import LINE_NAMES

    parts = [f"{k} {d[k]}" for k in LINE_NAMES[1:] if d[k]]
    return f"produced {d['produced']} = " + (" + ".join(parts) or "0") + ("" if d["balanced"] else " (UNBALANCED)")
