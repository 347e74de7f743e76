"""monitor export: tidy CSV, Parquet that pandas and DuckDB read, and --format text's wall-clock times."""
from __future__ import annotations

import csv
import datetime
import json
import re
from pathlib import Path

import pytest

from host import monitor
from host.device.recording import Recorder
from host.protocol.encoder import encode_hello
from host.testkit import synthetic

T0_NS = 1_700_000_000 * 10**9
IMU_CHANNELS = 7  # accel xyz, gyro xyz, temperature


def _record(path: Path, data: bytes, chunk: int = 97) -> Path:
    with Recorder(path) as r:
        r.meta({"port": "synthetic", "identity": "path:synthetic"}, t_ns=T0_NS)
        for k, i in enumerate(range(0, len(data), chunk)):
            r.rx(data[i:i + chunk], t_ns=T0_NS + (k + 1) * 1_000_000)
    return path


@pytest.fixture
def two_boots(tmp_path: Path) -> Path:
    """Two boots, a lost frame in the first and two missing samples in the second."""
    data = synthetic.boot_stream(n_imu=20, skip_seqs=(5,))
    data += encode_hello(0xB0B0B0B0, 0, synthetic.hello_info())
    data += b"".join(synthetic.imu_batches(3, seq0=0, boot_id=0xB0B0B0B0, missing={1: (2, 3)}))
    return _record(tmp_path / "two.pglrec", data)


def _tidy(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_tidy_csv_one_row_per_sample_and_channel(two_boots: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "tidy.csv"
    assert monitor.main(["export", str(two_boots), "--csv", str(out), "--tidy"]) == 0
    rows = _tidy(out)
    assert list(rows[0]) == ["t_host", "boot_id", "session", "stream", "seq", "t_device_s", "channel", "value",
                             "unit"]
    imu = [r for r in rows if r["stream"] == "imu"]
    assert len(imu) == (19 * 10 + 3 * 10) * IMU_CHANNELS
    assert len([r for r in rows if r["stream"] == "a0"]) == 4 * 5
    assert {r["boot_id"] for r in rows} == {f"{synthetic.BOOT_ID:08x}", "b0b0b0b0"}
    z = [r for r in imu if r["channel"] == "accel_z_g" and r["value"]]
    assert all(float(r["value"]) == pytest.approx(1.0) and r["unit"] == "g" for r in z)
    empty = [r for r in imu if r["value"] == ""]
    assert len(empty) == 2 * IMU_CHANNELS and {r["boot_id"] for r in empty} == {"b0b0b0b0"}
    assert {r["seq"] for r in imu if r["boot_id"] != "b0b0b0b0"} == {str(s) for s in range(20) if s != 5}
    assert f"wrote {len(rows)} rows" in capsys.readouterr().err


def test_parquet_reads_back_in_pandas_and_duckdb_with_the_csv_row_count(two_boots: Path, tmp_path: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    pd = pytest.importorskip("pandas")
    csv_out, pq_out = tmp_path / "tidy.csv", tmp_path / "out.parquet"
    assert monitor.main(["export", str(two_boots), "--csv", str(csv_out), "--tidy", "--parquet", str(pq_out)]) == 0
    n_csv = len(_tidy(csv_out))

    df = pd.read_parquet(pq_out)
    assert len(df) == n_csv and list(df.columns) == list(_tidy(csv_out)[0])
    assert df["value"].isna().sum() == 2 * IMU_CHANNELS

    con = duckdb.connect()
    (n_duck,) = con.execute("SELECT count(*) FROM read_parquet(?)", [str(pq_out)]).fetchone()
    assert n_duck == n_csv
    per_boot = dict(con.execute("SELECT boot_id, count(*) FROM read_parquet(?) WHERE stream = 'imu' "
                                "GROUP BY boot_id", [str(pq_out)]).fetchall())
    assert per_boot == {f"{synthetic.BOOT_ID:08x}": 190 * IMU_CHANNELS, "b0b0b0b0": 30 * IMU_CHANNELS}
    kv = dict(con.execute("SELECT decode(key), decode(value) FROM parquet_kv_metadata(?)",
                          [str(pq_out)]).fetchall())
    assert json.loads(kv["pagerless.board"]) == synthetic.hello_info()["board"]
    assert set(json.loads(kv["pagerless.hello"])) == {f"{synthetic.BOOT_ID:08x}", "b0b0b0b0"}
    ledger = json.loads(kv["pagerless.ledger"])
    assert json.loads(kv["pagerless.ledger_verdict"]) == ledger["verdict"]
    assert json.loads(kv["pagerless.recording"])["meta"][0]["port"] == "synthetic"


def test_parquet_is_written_in_row_groups(two_boots: Path, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from host.monitoring.export import load
    from host.monitoring.tidy import export_parquet

    out = tmp_path / "small_groups.parquet"
    rows = export_parquet(load(two_boots), out, row_group_rows=500)
    meta = pq.ParquetFile(out).metadata
    assert meta.num_rows == rows and meta.num_row_groups >= rows // 1000
    assert max(meta.row_group(i).num_rows for i in range(meta.num_row_groups)) < 1000


def test_export_needs_an_output_and_tidy_needs_csv(two_boots: Path, tmp_path: Path, capsys) -> None:
    assert monitor.main(["export", str(two_boots)]) == 2
    assert monitor.main(["export", str(two_boots), "--tidy", "--parquet", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "--csv" in err[0] and "--tidy" in err[1]


def test_export_parquet_unwritable_is_one_line(two_boots: Path, tmp_path: Path, capsys) -> None:
    assert monitor.main(["export", str(two_boots), "--parquet", str(tmp_path / "no" / "dir.parquet")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot write" in err


def test_text_format_shows_local_wall_clock_times(two_boots: Path, capsys) -> None:
    assert monitor.main(["replay", str(two_boots), "--format", "text"]) == 0
    lines = capsys.readouterr().out.splitlines()
    first_rx = datetime.datetime.fromtimestamp(T0_NS / 1e9 + 0.001)  # local time, as a person reads it
    stamp = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) ")
    assert lines and all(stamp.match(x) for x in lines)
    times = [datetime.datetime.fromisoformat(stamp.match(x).group(1)) for x in lines]
    assert abs((times[0] - first_rx).total_seconds()) < 1.0
    assert not any(re.match(r"^1700000\d{3}\.", x) for x in lines)  # no raw epoch seconds
