"""Boards -> broker -> collector on 127.0.0.1, against amqtt (started here) and Debian's mosquitto
(where it is installed): the ledger balances across the hop (also over a broker restart and an
overflowing offline queue), DuckDB reads the Parquet with the ledger's counts, bad input and
faults are one line or a counted reject."""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from host.fleet.broker import LocalBroker, available, free_port
from host.fleet.collect import Collector
from host.fleet.topics import parse_url
from host.testkit.fleetsim import SimBoard

duckdb = pytest.importorskip("duckdb")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["amqtt", "mosquitto"])
def broker(request):
    why = available(request.param)
    if why:
        pytest.skip(why)
    with LocalBroker(request.param) as b:
        yield b


class Running:
    """A collector on its own thread, stopped and flushed by `stop()`."""

    def __init__(self, url, out, flush=0.3):
        self.col = Collector(url, out, flush_interval=flush)
        self.col.start()
        self._stop = False
        self.t = threading.Thread(target=self.col.run, kwargs={"stop": lambda: self._stop}, daemon=True)
        self.t.start()

    def stop(self):
        self._stop = True
        self.t.join(10)
        self.col.close()


def _run_boards(boards, seconds, during=None):
    t_end = time.time() + seconds
    mid = False
    while time.time() < t_end:
        now = time.time()
        for b in boards:
            b.step(now)
        if during and not mid and now > t_end - seconds / 2:
            mid = True
            during()
        time.sleep(0.05)


def _settle(col, names, timeout=20.0):
    """Wait (bounded) until every board's final ledger arrived and nothing is left in a gap."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        reps = {n: col.hop.board_report(n) for n in names}
        if all(r["final"] and r["verdict"] != "pending" for r in reps.values()):
            return reps
        time.sleep(0.2)
    return {n: col.hop.board_report(n) for n in names}


def _duck_counts(out):
    rows = duckdb.sql(f"select board, count(*) from read_parquet('{out}/board=*/stream=*/day=*/*.parquet', "
                      "hive_partitioning=true, union_by_name=true) where stream not like '\\_%' escape '\\' "
                      "group by board").fetchall()
    return dict(rows)


def _check(col, out, names, reps):
    counts = _duck_counts(out)
    for n in names:
        r = reps[n]
        hop = r["hop"]
        assert r["verdict"] == "ok" and r["unexplained"] == 0 and hop["balanced"], json.dumps(r, indent=1)
        st = col.board_state(n, time.time())["collector"]
        assert st["stored"] == st["received_all"] == hop["received"] == counts[n], (n, st, counts, r["final"])
        assert hop["host_samples"] == hop["published"] + hop["lost_before_broker"] + hop["held"]
    return counts


def _boards(url, n, **kw):
    t0 = time.time()
    bs = [SimBoard(url, f"sim-{i}", 0x1000 + i, t0, **kw) for i in range(n)]
    for b in bs:
        b.publisher.start()
    return bs


def test_boards_through_the_broker_balance_and_duckdb_counts_them(broker, tmp_path):
    url = parse_url(broker.url("lab"))
    run = Running(url, tmp_path)
    boards = _boards(url, 2)
    _run_boards(boards, 2.5)
    for b in boards:
        b.close()
    reps = _settle(run.col, ["sim-0", "sim-1"])
    run.stop()
    counts = _check(run.col, tmp_path, ["sim-0", "sim-1"], reps)
    assert all(c >= 500 for c in counts.values())
    assert reps["sim-0"]["hop"]["lost_broker"] == 0
    # the physical values made it: accel_z is 1 g, the analog channel half of vref
    z = duckdb.sql(f"select avg(accel_z_g) from read_parquet('{tmp_path}/board=sim-0/stream=imu/*/*.parquet')").fetchall()[0]
    assert abs(z[0] - 1.0) < 1e-3
    out = subprocess.run([sys.executable, "-m", "host.fleet", "status", str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "sim-0" in out.stdout and "ledger ok" in out.stdout, out.stdout + out.stderr


def test_broker_restart_mid_stream_leaves_nothing_unexplained(broker, tmp_path):
    url = parse_url(broker.url("lab"))
    run = Running(url, tmp_path)
    boards = _boards(url, 2)
    _run_boards(boards, 5.0, during=lambda: broker.restart(0.8))
    for b in boards:
        b.close()
    reps = _settle(run.col, ["sim-0", "sim-1"])
    run.stop()
    _check(run.col, tmp_path, ["sim-0", "sim-1"], reps)
    assert run.col.disconnects >= 1
    assert all(r["hop"]["received"] + r["hop"]["lost_broker"] == r["hop"]["published"] for r in reps.values())


def test_offline_queue_overflow_is_lost_before_the_broker_and_balances(broker, tmp_path):
    url = parse_url(broker.url("lab"))
    run = Running(url, tmp_path)
    boards = _boards(url, 1, queue_limit=4)

    def outage():
        broker.stop()
        t = time.time() + 1.5
        while time.time() < t:
            boards[0].step(time.time())
            time.sleep(0.05)
        broker.start()

    _run_boards(boards, 4.0, during=outage)
    time.sleep(1.0)  # the publisher's reconnect (paho backs off up to 2 s)
    _run_boards(boards, 1.0)
    boards[0].close()
    reps = _settle(run.col, ["sim-0"])
    run.stop()
    _check(run.col, tmp_path, ["sim-0"], reps)
    assert reps["sim-0"]["hop"]["lost_before_broker"] > 0


def _fleet(*args, timeout=30):
    return subprocess.run([sys.executable, "-m", "host.fleet", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_unreachable_broker_and_refused_credentials_are_one_line(tmp_path):
    r = _fleet("collect", f"mqtt://127.0.0.1:{free_port()}/lab", "--out", str(tmp_path), "--duration", "1")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "unreachable" in r.stderr, r.stderr
    r = subprocess.run([sys.executable, "host/monitor.py", "live", "--port", "loop://", "--format", "jsonl",
                        "--duration", "1", "--publish", f"mqtt://127.0.0.1:{free_port()}/lab"], cwd=ROOT,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "unreachable" in r.stderr and "Traceback" not in r.stderr, r.stderr
    if available("amqtt"):
        pytest.skip(available("amqtt"))
    with LocalBroker("amqtt", users={"alice": "right"}) as b:
        r = _fleet("collect", b.url("lab").replace("mqtt://", "mqtt://alice:wrong@"), "--out", str(tmp_path),
                   "--duration", "1")
        assert r.returncode == 2 and "refused" in r.stderr and r.stderr.count("\n") == 1, r.stderr
        r = _fleet("collect", b.url("lab"), "--out", str(tmp_path), "--duration", "0.5", "--username", "alice",
                   "--password", "right")
        assert r.returncode == 0, r.stderr


def test_foreign_and_malformed_messages_are_counted_rejects_and_a_full_disk_is_counted(tmp_path, monkeypatch):
    col = Collector(parse_url("mqtt://127.0.0.1:1/lab"), tmp_path, warn=lambda line: None)
    t = time.time()
    for topic, payload in [("lab/b/hello", b"\xff\xfe"), ("lab/b/data/imu", b"[1,2]"), ("lab/b/nonsense", b"{}"),
                           ("lab/b/data/imu", json.dumps({"pub": "p", "seq": 0, "ps": 0, "t": t, "n": 1,
                                                          "values": {"v": [1, 2]}}).encode())]:
        col.handle(t, topic, payload, False)
    assert sum(col.rejects.values()) == 4 and len(col.rejects) == 4
    good = {"pub": "p", "seq": 0, "ps": 0, "t": t, "n": 3, "values": {"v": [1.0, None, 2.0]}, "missing": [1]}
    col.handle(t, "lab/b/data/imu", json.dumps(good).encode(), False)
    col.handle(t, "lab/b/data/imu", json.dumps(good).encode(), False)  # a QoS 1 duplicate

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(col.store, "_write", full)
    col.flush()
    st = col.board_state("b", time.time())
    assert st["collector"]["lost_collector"] == 3 and st["collector"]["stored"] == 0 and st["duplicates"] == 1
    monkeypatch.undo()
    col.flush()
    assert json.loads((tmp_path / "_ledger" / "b.json").read_text())["collector"]["lost_collector"] == 3


def test_kill_9_mid_collection_leaves_only_complete_files(broker, tmp_path):
    url = parse_url(broker.url("lab"))
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "host.fleet", "collect", str(url), "--out", str(out),
                             "--flush", "0.1"], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        assert "collecting" in proc.stderr.readline()  # started (a busy host may take seconds to import)
        boards = _boards(url, 2)
        deadline = time.time() + 30
        _run_boards(boards, 1.0)
        while not list(out.rglob("*.parquet")) and time.time() < deadline:
            _run_boards(boards, 0.5)  # still publishing: the kill lands mid-collection
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    for b in boards:
        b.close()
    files = list(out.rglob("*.parquet"))
    # what matters is that files were closed before the kill and each of them is whole
    assert files, proc.stderr.read()
    import pyarrow.parquet as pq

    for f in files:
        pq.read_table(f)  # every closed file is whole
    assert sum(_duck_counts(out).values()) > 0
    (files[0].parent / (files[0].name + ".tmp")).write_bytes(b"PAR1 torn")
    r = _fleet("collect", str(url), "--out", str(out), "--duration", "0.3")
    assert r.returncode == 0 and "unfinished file(s) a crash left" in r.stderr, r.stderr


def test_a_board_closing_while_the_broker_restarts_waits_for_the_reconnect(broker):
    """close() waits (bounded) for the whole queue, not only while connected: a board closing just
    after a broker restart, before paho's back-off reconnected it, still hands its final ledger to
    the broker (whether a collector gets it depends on which client reconnects first: not judged)."""
    url = parse_url(broker.url("lab"))
    boards = _boards(url, 1)
    _run_boards(boards, 1.0)
    broker.stop()
    time.sleep(1.5)  # paho's back-off grows to 0.8-1.6 s meanwhile
    boards[0].step(time.time())
    broker.start()
    line = boards[0].close(timeout=15)
    assert "not acknowledged" not in line and boards[0].publisher.connects == 2, line


def test_a_board_closing_while_the_broker_is_down_says_so_in_its_summary(broker):
    url = parse_url(broker.url("lab"))
    boards = _boards(url, 1)
    _run_boards(boards, 0.5)
    broker.stop()
    line = boards[0].close()  # its "offline" publish is never queued: a summary, not a traceback
    assert line.startswith("published ") and "sim-0" in line, line
