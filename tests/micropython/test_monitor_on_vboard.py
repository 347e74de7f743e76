"""The monitor against a streaming virtual board: it survives the port vanishing and coming back
under a new name (same board, same recording), and the recording replays and exports."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from host.testkit.fwboard import install
from host.device.recording import Kind, read_recording

pytestmark = [pytest.mark.virtual_board, pytest.mark.fault_injection]
ROOT = Path(__file__).resolve().parents[2]


def _holds(pid: int, path: str) -> bool:
    """Whether process `pid` still has `path` open (a deleted pty node reads "path (deleted)")."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(path):
                return True
        except OSError:
            pass
    return False


def test_monitor_reconnects_to_the_same_board_and_keeps_recording(vboard, tool_env, tmp_path):
    install(vboard.fs)
    vboard.power_cycle()
    vboard.wait_boot(2)
    rec = tmp_path / "run.rec"
    mon = subprocess.Popen([sys.executable, "host/monitor.py", "live", "--port", "virtual", "--format", "jsonl",
                            "--duration", "7", "--record", str(rec)], cwd=ROOT, env=tool_env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(2.5)
    old_port = vboard.port
    vboard.disconnect()  # the USB port vanishes...
    # (the monitor lets go of the dead port, freeing its name once its fd is closed; on a busy
    # host that can take a while, and a name still held would not be taken below)
    deadline = time.monotonic() + 10
    while _holds(mon.pid, old_port) and time.monotonic() < deadline:
        time.sleep(0.05)
    spare = os.openpty()  # ...and its name is taken meanwhile, so it comes back under another
    time.sleep(0.5)
    vboard.reconnect()
    out, err = mon.communicate(timeout=30)
    for fd in spare:
        os.close(fd)
    assert mon.returncode == 0, err
    assert vboard.port != old_port and vboard.link.stats.reconnects == 1

    records, report = read_recording(rec)
    assert report.clean
    links = [r.json()["event"] for r in records if r.kind == Kind.LINK]
    assert "disconnected" in links and links.index("disconnected") < len(links) - 1  # came back
    t_gone = next(r.t for r in records if r.kind == Kind.LINK and r.json()["event"] == "disconnected")
    assert any(r.kind == Kind.RX and r.t > t_gone + 0.5 for r in records), (links, err)  # data after

    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert len({r.get("stream") for r in rows}) >= 4  # every stream arrived

    # the same recording replays through the same decoder and exports physical values
    csv_out = tmp_path / "run.csv"
    r = subprocess.run([sys.executable, "host/monitor.py", "export", str(rec), "--csv", str(csv_out)],
                       cwd=ROOT, env=tool_env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    with open(csv_out) as f:
        header = next(csv.reader(f))
    assert any("temperature_c" in h for h in header) and any("accel_z_g" in h for h in header)
