"""`monitor stats`, `export` and `plot` stream through a recording: their peak memory does not grow with
the file (a 60 MB recording within 100 MB RSS, measured on the child process), and the plot keeps only
what it draws, spikes and gaps included.

By hand, for a bigger file: `python -m tests.unit.test_monitor_bounded big.rec 200` writes a 200 MB
recording; then `/usr/bin/time -v pagerless-monitor stats big.rec`."""
from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from host.device.recording import Recorder
from host.monitoring import plot as plot_mod
from host.monitoring.plot import Series
from host.monitoring.state import Batch
from host.protocol.encoder import encode_hello
from host.testkit import synthetic

ROOT = Path(__file__).resolve().parents[2]
T0_NS = 1_700_000_000 * 10**9
BLOCK = 1024        # frames per generated block: seq (u16) wraps exactly at a block boundary
BATCH = 25
PERIOD_US = 1000


def write_recording(path: Path, megabytes: float, chunk: int = 4096) -> int:
    """A recording of one boot streaming IMU frames (synthetic values, seq wrapping), written by the
    Recorder in port-sized chunks, one block of frames in memory at a time. Returns its size."""
    hello = encode_hello(synthetic.BOOT_ID, 0, synthetic.hello_info(imu_period_us=PERIOD_US, imu_batch=BATCH))
    pending = bytearray(hello)
    t_ns = T0_NS
    target = int(megabytes * 1e6)
    written = 0
    block = 0
    with Recorder(path, sync_interval=5.0) as rec:
        while written < target:
            frames = synthetic.imu_batches(BLOCK, batch=BATCH, period_us=PERIOD_US, seq0=(block * BLOCK) % 65536,
                                           t0_us=block * BLOCK * BATCH * PERIOD_US)
            pending += b"".join(frames)
            block += 1
            while len(pending) >= chunk:
                rec.rx(bytes(pending[:chunk]), t_ns=t_ns)
                del pending[:chunk]
                t_ns += 10**6
                written += chunk
        if pending:
            rec.rx(bytes(pending), t_ns=t_ns)
    return path.stat().st_size


# A small launcher runs the monitor and reports the rusage of its one child. Asked directly, the kernel
# would report this (large) test process's high-water RSS too: a child inherits it through fork/exec.
_LAUNCHER = ("import resource, subprocess, sys; "
             "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode; "
             "print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def _peak_rss_mb(*args: str) -> tuple[float, subprocess.CompletedProcess]:
    """Run `python -m host.monitor ARGS`; its own peak RSS in MB and how it ended."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    p = subprocess.run([sys.executable, "-c", _LAUNCHER, sys.executable, "-m", "host.monitor", *args], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=600)
    rc, kb = (int(v) for v in p.stdout.split())
    return kb / 1024, subprocess.CompletedProcess(args, rc, None, p.stderr)


@pytest.mark.slow
@pytest.mark.timeout(900)  # ~1.5 min alone (export formats 4 million CSV rows); a loaded machine doubles it
def test_stats_export_plot_of_a_60mb_recording_stay_within_100mb_rss(tmp_path: Path) -> None:
    rec = tmp_path / "big.rec"
    size = write_recording(rec, 60)
    assert size > 60e6
    for args in (["stats", str(rec)], ["export", str(rec), "--csv", os.devnull],
                 ["plot", str(rec), "-o", str(tmp_path / "big.png")]):
        rss, p = _peak_rss_mb(*args)
        assert p.returncode == 0, p.stderr
        assert rss < 100, f"monitor {args[0]}: peak RSS {rss:.0f} MB for a {size / 1e6:.0f} MB recording"
    assert (tmp_path / "big.png").stat().st_size > 10_000


def _batch(session: int, seq: int, t_us: np.ndarray, y: np.ndarray, gap: int = 0) -> Batch:
    return Batch(1_700_000_000.0 + t_us[0] / 1e6, session, 1, 0, "imu", seq, gap, t_us, {"v": y}, {"v": "g"},
                 np.zeros(len(y), bool))


def test_plot_keeps_a_bounded_number_of_points_with_spikes_and_gaps() -> None:
    s = Series()
    n_frames, per = 4000, 250  # a million samples
    spike_at = 777_777
    for j in range(n_frames):
        k = np.arange(j * per, (j + 1) * per)
        y = np.sin(k / 5000.0)
        if j * per <= spike_at < (j + 1) * per:
            y[spike_at - j * per] = 50.0
        if j == 1000:
            y[10] = np.nan  # a missing sample
        s.add(_batch(1, j if j < 2000 else j + 3, k * 1000, y, gap=3 if j == 2000 else 0))
    (x, y), = s.segments()[("imu", "v")]
    assert len(x) <= plot_mod._KEEP
    assert np.nanmax(y) == 50.0 and np.nanmin(y) == pytest.approx(-1.0, abs=1e-3)
    assert int(np.isnan(y).sum()) >= 2  # the missing sample and the lost frames both break the line
    assert np.all(np.diff(x) >= 0)
    assert x[0] == 0.0 and x[-1] == pytest.approx((n_frames * per - 1) / 1000)


def test_plot_keeps_every_point_of_a_short_recording_and_boots_apart() -> None:
    s = Series()
    for boot in (1, 2):
        for j in range(10):
            k = np.arange(j * 10, j * 10 + 10)
            s.add(_batch(boot, j, k * 1000 + boot * 10**7, k.astype(float)))
    segs = s.segments()[("imu", "v")]
    assert [len(x) for x, _ in segs] == [100, 100]
    assert all(not any(math.isnan(v) for v in y) for _, y in segs)


if __name__ == "__main__":
    out = Path(sys.argv[1])
    print(f"{out}: {write_recording(out, float(sys.argv[2])) / 1e6:.1f} MB")
