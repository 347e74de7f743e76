"""Tidy (long) exports of a recording: CSV (`export --tidy`) and Parquet (`export --parquet`).

One row per sample *and channel*, the shape pandas, Polars and DuckDB group and pivot without
knowing the streams in advance (the wide CSV needs a column per `<stream>.<channel>`)::

    t_host, boot_id, session, stream, seq, t_device_s, channel, value, unit

``t_host`` is when the frame arrived (s since the Unix epoch), ``boot_id`` the boot's id (hex),
``session`` the boot's number in the recording (1 = first seen), ``t_device_s`` the device's own
clock (unwrapped, per boot). A missing sample keeps its rows, with an empty value (CSV) or null
(Parquet), so counting rows per channel counts what the device was meant to produce.

The Parquet file carries the same columns, written a row group at a time while the recording is
streamed (memory: one row group), and in its key-value metadata (UTF-8 JSON values):
``pagerless.board``, ``pagerless.firmware``, ``pagerless.hello`` (the HELLO in force for each boot,
by boot id), ``pagerless.ledger_verdict``, ``pagerless.ledger`` (the sample ledger, the schema
`monitor stats --json` prints), ``pagerless.recording`` (path and the recording's META records).
"""
from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import IO

from host.monitoring.export import Loaded, load
from host.monitoring.session import Session
from host.monitoring.state import Batch

TIDY_COLUMNS = ["t_host", "boot_id", "session", "stream", "seq", "t_device_s", "channel", "value", "unit"]
ROW_GROUP_ROWS = 256 * 1024


def _each_batch(loaded: Loaded, fn: Callable[[Batch, Session], None], stream: str | None) -> None:
    """Hand every batch of a loaded recording to `fn`: the kept batches, or a second streaming pass
    over the bytes the first pass read (the file may have grown since)."""
    def pick(b: Batch, session: Session) -> None:
        if stream is None or b.name == stream:
            fn(b, session)

    if loaded.batches:
        for b in loaded.batches:
            pick(b, loaded.session)
    else:
        load(loaded.path, loaded.session.line_rate, on_batch=pick, end=loaded.size)


def _columns(b: Batch) -> dict[str, list]:
    """The tidy rows of one batch, column-wise: samples in order, channels within each sample."""
    names = list(b.values)
    n, k = b.count, len(names)
    t_dev = [t / 1e6 for t in b.t_us.tolist()]
    per_channel = [b.values[c].tolist() for c in names]
    values = [None if math.isnan(v) else v for i in range(n) for v in (col[i] for col in per_channel)]
    return {
        "t_host": [round(b.t_host, 6)] * (n * k), "boot_id": [f"{b.boot_id:08x}"] * (n * k),
        "session": [b.session] * (n * k), "stream": [b.name] * (n * k), "seq": [b.seq] * (n * k),
        "t_device_s": [t for t in t_dev for _ in range(k)], "channel": names * n, "value": values,
        "unit": [b.units.get(c, "") for c in names] * n,
    }


def export_tidy_csv(loaded: Loaded, out: IO[str], stream: str | None = None) -> int:
    """Write every sample of a loaded recording as tidy CSV; returns the number of rows."""
    w = csv.writer(out, lineterminator="\n")
    w.writerow(TIDY_COLUMNS)
    rows = 0

    def write(b: Batch, session: Session) -> None:
        nonlocal rows
        cols = _columns(b)
        cols["value"] = ["" if v is None else repr(float(v)) for v in cols["value"]]
        w.writerows(zip(*(cols[c] for c in TIDY_COLUMNS)))
        rows += len(cols["value"])

    _each_batch(loaded, write, stream)
    return rows


def _schema():
    import pyarrow as pa

    return pa.schema([
        ("t_host", pa.float64()), ("boot_id", pa.string()), ("session", pa.int32()),
        ("stream", pa.dictionary(pa.int32(), pa.string())), ("seq", pa.int64()), ("t_device_s", pa.float64()),
        ("channel", pa.dictionary(pa.int32(), pa.string())), ("value", pa.float64()),
        ("unit", pa.dictionary(pa.int32(), pa.string())),
    ])


def recording_metadata(loaded: Loaded, hellos: dict[str, dict]) -> dict[str, str]:
    """The Parquet key-value metadata: who produced the rows and whether the ledger balanced."""
    s = loaded.session
    ledger = s.ledger.report()
    return {
        "pagerless.board": json.dumps(s.device.board or None),
        "pagerless.firmware": json.dumps(s.device.fw or None),
        "pagerless.hello": json.dumps(hellos, default=str),
        "pagerless.ledger_verdict": json.dumps(ledger.verdict),
        "pagerless.ledger": json.dumps(ledger.as_json(), default=str),
        "pagerless.recording": json.dumps({"path": str(loaded.path), "meta": loaded.meta}, default=str),
    }


def export_parquet(loaded: Loaded, path: str | Path, stream: str | None = None,
                   row_group_rows: int = ROW_GROUP_ROWS) -> int:
    """Write every sample of a loaded recording as tidy Parquet (zstd); returns the number of rows.

    Raises OSError when `path` cannot be written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _schema()
    hellos: dict[str, dict] = {}
    pending: dict[str, list] = {c: [] for c in TIDY_COLUMNS}
    rows = 0
    with pq.ParquetWriter(str(path), schema, compression="zstd") as writer:
        def flush() -> None:
            if pending["value"]:
                writer.write_table(pa.Table.from_pydict(pending, schema=schema), row_group_size=row_group_rows)
                for col in pending.values():
                    col.clear()

        def add(b: Batch, session: Session) -> None:
            nonlocal rows
            boot = f"{b.boot_id:08x}"
            if boot not in hellos and session.device.hello is not None:
                hellos[boot] = session.device.hello
            for c, vals in _columns(b).items():
                pending[c].extend(vals)
            rows += b.count * len(b.values)
            if len(pending["value"]) >= row_group_rows:
                flush()

        _each_batch(loaded, add, stream)
        flush()
        writer.add_key_value_metadata(recording_metadata(loaded, hellos))
    return rows
