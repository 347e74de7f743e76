"""The HIL plugin's pure parts: per-worker ports, config overrides and the link summary; and, in a
subprocess, the plugin itself running two virtual boards in parallel under pytest-xdist."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from host.hil.plugin import merge_config, worker_port
from host.hil.report import PROPERTY, LinkSummary

ROOT = Path(__file__).resolve().parents[2]


def test_one_port_serves_every_worker():
    assert worker_port("/dev/ttyACM0", "gw3") == "/dev/ttyACM0"
    assert worker_port("virtual", "main") == "virtual"


def test_a_port_list_gives_each_worker_its_own_board():
    spec = "/dev/ttyACM0, /dev/ttyACM1,/dev/ttyUSB0"
    assert [worker_port(spec, w) for w in ("gw0", "gw1", "gw2")] == ["/dev/ttyACM0", "/dev/ttyACM1", "/dev/ttyUSB0"]
    assert worker_port(spec, "main") == "/dev/ttyACM0"  # no xdist: the first board


@pytest.mark.parametrize("spec, worker, message", [
    ("/dev/ttyACM0,/dev/ttyACM1", "gw2", "needs one more"),
    ("/dev/ttyACM0,/dev/ttyACM0", "gw0", "distinct"),
    ("/dev/ttyACM0,", "gw0", "non-empty"),
])
def test_bad_port_lists_fail_with_one_line(spec, worker, message):
    with pytest.raises(pytest.fail.Exception, match=message):
        worker_port(spec, worker)


def test_config_overrides_patch_streams_by_name_and_reject_unknown_ones():
    base = {"ring_bytes": 8192, "streams": [{"name": "imu", "period_us": 5000, "batch": 25},
                                            {"name": "a0", "period_us": 10000}]}
    out = merge_config(base, {"ring_bytes": 0, "streams": {"imu": {"period_us": 1000}}})
    assert out["ring_bytes"] == 0  # a falsy value is a value
    assert out["streams"][0] == {"name": "imu", "period_us": 1000, "batch": 25}
    assert out["streams"][1] == base["streams"][1] and base["streams"][0]["period_us"] == 5000
    with pytest.raises(ValueError, match="unknown streams"):
        merge_config(base, {"streams": {"gps": {}}})


def test_link_summary_names_each_board_and_reconciles():
    s = LinkSummary()
    row = {"frames_ok": 10, "crc_errors": 0, "framing_errors": 0, "invalid_frames": 0, "host_gaps": 2,
           "device_dropped": 2, "reconciled": "exact"}
    s.add("t.py::test_a", [(PROPERTY, json.dumps(dict(row, board="hil-gw0 /dev/pts/3")))])
    s.add("t.py::test_b", [(PROPERTY, json.dumps(dict(row, board="hil-gw1 /dev/pts/4", reconciled="NO")))])
    s.add("t.py::test_c", [(PROPERTY, "not json")])
    lines = s.lines()
    assert "hil-gw0 /dev/pts/3" in lines[1] and "hil-gw1 /dev/pts/4" in lines[2]
    assert "1 NOT reconciled" in lines[3] and re.search(r"\b20\b", lines[3])
    assert lines[4] == "boards: 2 (hil-gw0 /dev/pts/3: 1 tests, hil-gw1 /dev/pts/4: 1 tests)"


PARALLEL_TESTS = '''
import pytest

@pytest.mark.parametrize("n", range(4))
def test_dut_streams(dut, traffic, n):
    hello = traffic.expect("HELLO")
    assert hello.hello()["board"]
'''


@pytest.mark.slow
@pytest.mark.virtual_board
def test_xdist_runs_one_virtual_board_per_worker(tmp_path):
    """`pytest -n 2` in any folder (the plugin loads through its pytest11 entry point) gives each worker
    its own virtual board: both boards appear in the summary, and each test leaves its recording."""
    (tmp_path / "test_parallel.py").write_text(PARALLEL_TESTS)
    env = dict(os.environ, PYTHONPATH=str(ROOT), PAGERLESS_HOME=str(tmp_path / "home"))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "-p", "no:cacheprovider",
         "--rootdir", str(tmp_path), "-c", os.devnull, "--hil-reports", str(tmp_path / "reports"),
         str(tmp_path / "test_parallel.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "4 passed" in out, out[-3000:]
    boards = re.search(r"^boards: (\d+) \((.*)\)$", out, re.M)
    assert boards and boards.group(1) == "2", out[-3000:]
    assert "hil-gw0" in boards.group(2) and "hil-gw1" in boards.group(2)
    recordings = sorted(p.name for p in (tmp_path / "reports").glob("*.rec"))
    assert recordings == [f"test_parallel.py__test_dut_streams[{n}].rec" for n in range(4)]
