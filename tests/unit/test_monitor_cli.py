"""host/monitor.py CLI: help, one-line errors, replay/export/plot/stats on synthetic recordings."""
from __future__ import annotations

import csv
import io
import json
import math
import os
import pty
import subprocess
import sys
import tty
from pathlib import Path

import pytest

from host import monitor
from host.testkit import synthetic
from host.device.recording import Recorder

ROOT = Path(__file__).resolve().parents[2]
T0_NS = 1_700_000_000 * 10**9


def _record(path: Path, data: bytes, chunk: int = 97, link_events: bool = False) -> Path:
    with Recorder(path) as r:
        r.meta({"port": "synthetic", "identity": "path:synthetic"}, t_ns=T0_NS)
        for k, i in enumerate(range(0, len(data), chunk)):
            r.rx(data[i:i + chunk], t_ns=T0_NS + (k + 1) * 1_000_000)
            if link_events and k == 3:
                r.link("disconnected", "test", t_ns=T0_NS + (k + 1) * 1_000_000 + 1)
                r.link("reconnected", "test", t_ns=T0_NS + (k + 1) * 1_000_000 + 2)
    return path


@pytest.fixture
def rec_with_gap(tmp_path: Path) -> Path:
    return _record(tmp_path / "gap.pglrec", synthetic.boot_stream(n_imu=20, skip_seqs=(5,)), link_events=True)


def _run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)


def test_cli_help_as_script_and_module() -> None:
    for argv in (["host/monitor.py", "--help"], ["-m", "host.monitor", "--help"]):
        p = _run(*argv)
        assert p.returncode == 0
        for word in ("replay", "export", "plot", "stats", "--record", "jsonl"):
            assert word in p.stdout


def test_cli_live_help_lists_options(capsys) -> None:
    with pytest.raises(SystemExit) as e:
        monitor.main(["live", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for opt in ("--port", "--baud", "--record", "--format", "--duration", "--frames"):
        assert opt in out


def test_cli_missing_port_is_one_line_exit_2(capsys, tmp_path: Path) -> None:
    assert monitor.main(["--port", str(tmp_path / "ttyNOPE"), "--format", "jsonl"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such port" in err and "Traceback" not in err


def test_cli_busy_port_is_one_line_exit_2(capsys) -> None:
    master, slave = pty.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    from host.device.link import open_serial
    holder = open_serial(path, 115200)  # the "first monitor"
    try:
        assert monitor.main(["--port", path, "--format", "jsonl", "--duration", "0.1"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "busy" in err
    finally:
        holder.close()
        os.close(master)
        os.close(slave)


@pytest.mark.parametrize("content, words", [
    (None, "no such recording"),
    (b"not a recording at all", "not a pagerless recording"),
])
def test_cli_bad_recording_is_one_line_exit_2(capsys, tmp_path: Path, content, words) -> None:
    path = tmp_path / "x.pglrec"
    if content is not None:
        path.write_bytes(content)
    for cmd in (["stats", str(path)], ["export", str(path), "--csv", str(tmp_path / "o.csv")],
                ["plot", str(path), "-o", str(tmp_path / "o.png")], ["replay", str(path), "--format", "text"]):
        assert monitor.main(cmd) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and words in err, (cmd, err)


def test_cli_subprocess_error_has_no_traceback(tmp_path: Path) -> None:
    p = _run("-m", "host.monitor", "export", str(tmp_path / "none.pglrec"), "--csv", "-")
    assert p.returncode == 2
    assert p.stderr.startswith("monitor.py: error:") and "Traceback" not in p.stderr


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_cli_export_gives_physical_values_and_gaps(rec_with_gap: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    assert monitor.main(["export", str(rec_with_gap), "--csv", str(out)]) == 0
    rows = _read_csv(out)
    imu = [r for r in rows if r["stream"] == "imu"]
    a0 = [r for r in rows if r["stream"] == "a0"]
    assert len(imu) == 19 * 10 and len(a0) == 4 * 5
    # known raw values -> physical units (MPU-6050 at +-2 g / +-250 deg/s)
    for r in imu:
        k = int(r["seq"]) * 10 + int(r["index"])
        assert float(r["imu.accel_x_g"]) == pytest.approx(1638 * (k % 10) / 16384.0)
        assert float(r["imu.accel_z_g"]) == pytest.approx(1.0)
        assert float(r["imu.gyro_x_dps"]) == pytest.approx(k % 5)
        assert float(r["imu.temperature_c"]) == pytest.approx(36.53)
        assert r["a0.voltage_v"] == ""
        assert float(r["t_device_s"]) == pytest.approx(k / 1000.0)
    assert float(a0[7]["a0.voltage_v"]) == pytest.approx(3.3 * (65535 * 7 // 100) / 65535)
    # the lost frame (seq 5) is a visible gap: no rows, gap_before on the next frame, time jumps
    seqs = sorted({int(r["seq"]) for r in imu})
    assert 5 not in seqs and seqs == [s for s in range(20) if s != 5]
    first6 = next(r for r in imu if r["seq"] == "6" and r["index"] == "0")
    assert first6["gap_before"] == "1"
    assert all(r["gap_before"] == "0" for r in imu if r is not first6)
    times = [float(r["t_device_s"]) for r in imu]
    jumps = [b - a for a, b in zip(times, times[1:])]
    assert max(jumps) == pytest.approx(0.011)


def test_cli_export_missing_samples_are_empty_cells(tmp_path: Path) -> None:
    from host.protocol.encoder import encode_hello
    data = encode_hello(synthetic.BOOT_ID, 0, synthetic.hello_info())
    data += b"".join(synthetic.imu_batches(3, seq0=0, missing={1: (2, 3)}))
    rec = _record(tmp_path / "m.pglrec", data)
    out = tmp_path / "m.csv"
    assert monitor.main(["export", str(rec), "--csv", str(out), "--stream", "imu"]) == 0
    rows = _read_csv(out)
    assert len(rows) == 30 and "a0.voltage_v" not in rows[0]
    missing = [(r["seq"], r["index"]) for r in rows if r["missing"] == "1"]
    assert missing == [("1", "2"), ("1", "3")]
    assert all(r["imu.accel_z_g"] == "" for r in rows if r["missing"] == "1")


def test_cli_export_unknown_stream_is_an_error(rec_with_gap: Path, tmp_path: Path, capsys) -> None:
    assert monitor.main(["export", str(rec_with_gap), "--csv", str(tmp_path / "o.csv"), "--stream", "x"]) == 2
    assert "no stream named 'x'" in capsys.readouterr().err


def test_cli_plot_writes_png_with_gap(rec_with_gap: Path, tmp_path: Path) -> None:
    out = tmp_path / "plot.png"
    assert monitor.main(["plot", str(rec_with_gap), "-o", str(out)]) == 0
    data = out.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 10_000
    from host.monitoring.export import load
    from host.monitoring.plot import _series
    segs = _series(load(rec_with_gap, keep=True).batches)[("imu", "accel_x_g")]
    assert len(segs) == 1
    x, y = segs[0]
    assert int(sum(math.isnan(v) for v in y)) == 1  # exactly one break: the lost frame


def test_cli_plot_two_boots_are_separate_segments(tmp_path: Path) -> None:
    data = synthetic.boot_stream(n_imu=6) + synthetic.boot_stream(n_imu=6, boot_id=0x0BADBEEF)
    rec = _record(tmp_path / "two.pglrec", data)
    from host.monitoring.export import load
    from host.monitoring.plot import _series
    segs = _series(load(rec, keep=True).batches)[("imu", "accel_x_g")]
    assert len(segs) == 2 and all(len(x) == 60 for x, _ in segs)
    assert monitor.main(["plot", str(rec), "-o", str(tmp_path / "two.png")]) == 0


def test_cli_plot_without_samples_is_an_error(tmp_path: Path, capsys) -> None:
    rec = _record(tmp_path / "empty.pglrec", b"just text\r\n")
    assert monitor.main(["plot", str(rec), "-o", str(tmp_path / "e.png")]) == 2
    assert "no samples" in capsys.readouterr().err


def test_cli_stats_reports_counters_and_reconciliation(rec_with_gap: Path, capsys) -> None:
    assert monitor.main(["stats", str(rec_with_gap), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    link = s["link"]
    assert link["sessions"] == 1 and link["crc_errors"] == 0 and link["missing"] == 1 and link["link_events"] == 2
    assert s["schema"] == "pagerless.ledger/1" and s["verdict"] == "ok" and len(s["boots"]) == 1
    imu = s["streams"]["imu"]
    assert (imu["produced"], imu["delivered"], imu["dropped_device"], imu["unexplained"]) == (200, 190, 10, 0)
    assert s["total"]["produced"] == 220 and s["total"]["balanced"]
    assert monitor.main(["stats", str(rec_with_gap)]) == 0
    text = capsys.readouterr().out
    assert "reconciliation: ok" in text and "stream imu" in text
    assert "total imu: produced 200 = delivered 190 + dropped_device 10" in text


def test_cli_replay_jsonl_one_record_per_sample(rec_with_gap: Path, capsys) -> None:
    assert monitor.main(["replay", str(rec_with_gap), "--format", "jsonl"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    samples = [x for x in lines if x["type"] == "sample"]
    logs = [x for x in lines if x["type"] == "log"]
    assert len(samples) == 190 + 20
    assert samples[1]["values"]["accel_x_g"] == pytest.approx(0.1, abs=1e-3)
    assert any("disconnected" in x["text"] for x in logs)
    assert any("MicroPython" in x["text"] for x in logs)


def test_cli_replay_frames_limit(rec_with_gap: Path, capsys) -> None:
    assert monitor.main(["replay", str(rec_with_gap), "--format", "text", "--frames", "3"]) == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if " seq=" in x]
    assert len(lines) == 3 and "accel_x_g=" in lines[0] and " g" in lines[0]


def test_cli_replay_warns_about_torn_tail(rec_with_gap: Path, capsys) -> None:
    with open(rec_with_gap, "ab") as f:
        f.write(b"\x5a\xa5\x00\x00\xff")  # half a record header: what a crash leaves
    assert monitor.main(["replay", str(rec_with_gap), "--format", "csv"]) == 0
    cap = capsys.readouterr()
    assert "torn tail of 5 bytes" in cap.err
    rows = list(csv.DictReader(io.StringIO(cap.out)))
    assert len(rows) == 210


def test_cli_live_headless_records_and_replays(tmp_path: Path) -> None:
    """Live over a pty: jsonl on stdout, --frames stops it, the recording replays the same samples."""
    master, slave = pty.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    rec = tmp_path / "live.pglrec"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "host.monitor", "--port", path, "--record", str(rec),
                             "--format", "jsonl", "--frames", "8", "--duration", "20"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        import select
        ready, _, _ = select.select([master], [], [], 15)  # the monitor asks for HELLO once it is open
        assert ready, "monitor sent nothing"
        hello_cmd = os.read(master, 1024)
        from host.protocol.decoder import Decoder
        cmds = [f.command() for f in Decoder().feed(hello_cmd)]
        assert [c.opcode for c in cmds] == [4]  # SEND_HELLO
        os.write(master, synthetic.boot_stream(n_imu=8))
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        os.close(master)
        os.close(slave)
    assert proc.returncode == 0, err
    assert "recorded" in err
    live = [json.loads(x) for x in out.splitlines()]
    live_samples = [x for x in live if x["type"] == "sample"]
    assert len(live_samples) == 4 * 10 + 4 * 5  # --frames 8: 4 imu batches, then 4 a0 batches
    replay = _run("-m", "host.monitor", "replay", str(rec), "--format", "jsonl")
    rs = [json.loads(x) for x in replay.stdout.splitlines() if '"sample"' in x]
    assert [x["values"] for x in rs[:60]] == [x["values"] for x in live_samples]
    from host.device.recording import Kind, read_recording
    records, report = read_recording(rec)
    assert report.clean and records[0].kind == Kind.META
    assert any(r.kind == Kind.TX for r in records)  # the SEND_HELLO asked for on connect


def test_link_reconnects_to_same_board_under_new_name() -> None:
    """A fake port vanishes (OSError); the locator later finds the same board under a new path."""
    from host.device.link import Link, LinkError

    class FakePort:
        def __init__(self, chunks: list[bytes]) -> None:
            self.chunks = chunks
            self.in_waiting = 0

        def read(self, n: int = 1) -> bytes:
            if not self.chunks:
                raise OSError(5, "Input/output error")
            return self.chunks.pop(0)

        def write(self, data: bytes) -> int:
            return len(data)

        def close(self) -> None:
            pass

    where = {"path": None}
    opened = []

    def opener(path: str, baud: int) -> FakePort:
        if path == "/dev/gone":
            raise LinkError("gone")
        opened.append(path)
        return FakePort([b"one"] if len(opened) == 1 else [b"two"])

    link = Link("/dev/ttyACM0", locate=lambda: where["path"], opener=opener, retry_interval=0.0)
    link.open()
    assert link.read() == b"one"
    assert link.read() == b"" and not link.connected
    assert link.read(0.001) == b""  # board absent: keeps waiting
    where["path"] = "/dev/ttyACM1"
    link.read(0.001)
    assert link.connected and link.read() == b"two"
    events = [(e.event, e.detail) for e in link.events()]
    assert [e for e, _ in events] == ["connected", "disconnected", "reconnected"]
    assert "new port name" in events[2][1] and link.path == "/dev/ttyACM1"
    assert opened == ["/dev/ttyACM0", "/dev/ttyACM1"]


# ---------------------------------------------------------------- issue 15: what a new user trips over

def test_cli_help_names_the_command_as_typed() -> None:
    p = _run("host/monitor.py", "--help")
    assert p.stdout.startswith("usage: monitor.py ") and "\n  monitor.py replay FILE" in p.stdout
    exe = Path(sys.executable).parent / "pagerless-monitor"
    p = subprocess.run([str(exe), "replay", "--help"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout.startswith("usage: pagerless-monitor replay ")
    p = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60)
    assert "\n  pagerless-monitor --format jsonl" in p.stdout and "\n  monitor " not in p.stdout


@pytest.mark.parametrize("argv, words", [
    (["--duration", "-1"], "--duration: '-1'"), (["live", "--frames", "0"], "--frames: '0'"),
    (["replay", "x.pglrec", "--speed", "-1"], "--speed: '-1'"), (["--duration", "nan"], "'nan'"),
    (["--baud", "fast"], "'fast' is not a number"), (["plot", "x", "-o", "x.png", "--dpi", "0"], "--dpi"),
])
def test_cli_bad_numbers_are_one_line_exit_2(argv, words, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        monitor.main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and ": error: argument " in err and words in err, err


def test_cli_plot_unknown_extension_is_a_user_error(rec_with_gap: Path, tmp_path: Path, capsys) -> None:
    assert monitor.main(["plot", str(rec_with_gap), "-o", str(tmp_path / "out.xyz")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot write a .xyz file" in err and ".png" in err
    assert "internal error" not in err and not (tmp_path / "out.xyz").exists()


def _loaded_with_streams_reversed(path: Path):
    """The recording's batches with every a0 batch before the first imu one (announced: imu, a0)."""
    from host.monitoring.export import load

    loaded = load(path, keep=True)
    return loaded, [b for b in loaded.batches if b.name == "a0"] + [b for b in loaded.batches if b.name != "a0"]


def test_plot_panels_in_announced_order_and_title_clear_of_them(rec_with_gap: Path) -> None:
    from host.monitoring.plot import Series, figure

    loaded, batches = _loaded_with_streams_reversed(rec_with_gap)
    series = Series()
    for b in batches:
        series.add(b)
    fig = figure(series, loaded.session, title=str(rec_with_gap))
    labels = [ax.get_ylabel().split("\n")[0] for ax in fig.axes]
    announced = [st.name for st in loaded.session.streams.values()]
    assert announced == ["imu", "a0"] and labels.index("a0") > max(i for i, n in enumerate(labels) if n == "imu")
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    title, first = fig._suptitle.get_window_extent(r), fig.axes[0].get_tightbbox(r)
    assert title.y0 >= first.y1, (title, first)  # display coordinates: y grows upwards
    import matplotlib.pyplot as plt
    plt.close(fig)


def test_plot_time_axis_is_device_time_from_the_first_sample() -> None:
    """Attached to a running board: the first frame seen (imu, 100 ms batches) holds samples from
    t=5 s on its clock; the env frame that follows holds 6.4 s of samples from t=0. The axis starts at
    env's first sample, not at the first frame's arrival (which put env at -5 s)."""
    import numpy as np

    from host.monitoring.plot import Series
    from host.monitoring.state import Batch

    T = 1_700_000_000.0

    def batch(name, t_us, t_host, seq):
        n = len(t_us)
        return Batch(t_host, 1, 7, 0 if name == "imu" else 1, name, seq, 0, np.asarray(t_us, np.int64),
                     {"v": np.ones(n)}, {"v": "x"}, np.zeros(n, bool))

    s = Series()
    s.add(batch("imu", range(5_000_000, 5_100_000, 10_000), T + 5.1, 0))  # arrives first
    s.add(batch("env", range(0, 6_400_000, 100_000), T + 6.4, 0))
    s.add(batch("imu", range(5_100_000, 5_200_000, 10_000), T + 5.2, 1))
    segs = s.segments()
    (xe, _), = segs[("env", "v")]
    (xi, _), = segs[("imu", "v")]
    assert xe[0] == pytest.approx(0.0) and xe[-1] == pytest.approx(6.3)
    assert xi[0] == pytest.approx(5.0) and xi[-1] == pytest.approx(5.19)
