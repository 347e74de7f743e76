"""Proof at scale: four virtual boards, each watched by `monitor --publish`, through one broker
(restarted in the middle) to one collector; every board's ledger balances across the hop with
0 unexplained, and DuckDB counts exactly the samples the ledgers say were received."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from host.fleet.broker import LocalBroker, available
from host.fleet.collect import Collector
from host.fleet.topics import parse_url
from host.testkit.fwboard import install

duckdb = pytest.importorskip("duckdb")
pytestmark = [pytest.mark.virtual_board, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
BOARDS = 4
RUN_S = 12.0


@pytest.mark.parametrize("kind", ["amqtt", "mosquitto"])
def test_four_virtual_boards_through_one_broker_with_a_restart(kind, vboard_factory, tool_env, tmp_path):
    why = available(kind)
    if why:
        pytest.skip(why)
    boards = [vboard_factory(name=f"vb{i}") for i in range(BOARDS)]
    for b in boards:
        install(b.fs)
        b.power_cycle()
    for b in boards:
        b.wait_boot(2, timeout=30)
    with LocalBroker(kind) as broker:
        url = parse_url(broker.url("lab"))
        out = tmp_path / "fleet"
        col = Collector(url, out, flush_interval=0.5)
        col.start()
        stop = False
        th = threading.Thread(target=col.run, kwargs={"stop": lambda: stop}, daemon=True)
        th.start()
        mons = [subprocess.Popen([sys.executable, "host/monitor.py", "live", "--port", f"vb{i}", "--format", "jsonl",
                                  "--duration", str(RUN_S), "--publish", str(url)], cwd=ROOT, env=tool_env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                for i in range(BOARDS)]
        try:
            time.sleep(RUN_S / 2)
            broker.restart(1.0)
            errs = [m.communicate(timeout=RUN_S + 30)[1] for m in mons]
        finally:
            for m in mons:
                if m.poll() is None:
                    m.kill()
        assert all(m.returncode == 0 for m in mons), errs
        names = sorted(col.hop.boards)
        assert len(names) == BOARDS and all(n.startswith("virtual-VB-") for n in names), (names, errs)
        deadline = time.time() + 20
        while time.time() < deadline and not all(col.hop.board_report(n)["final"] for n in names):
            time.sleep(0.2)
        stop = True
        th.join(15)
        col.close()
    assert col.disconnects >= 1  # the restart happened under the collector too
    counts = dict(duckdb.sql(f"select board, count(*) from read_parquet('{out}/board=*/stream=*/day=*/*.parquet', "
                             "hive_partitioning=true, union_by_name=true) where stream not in ('_status', '_event') "
                             "group by board").fetchall())
    for n in names:
        rep = col.board_state(n, time.time())
        hop, host = rep["hop"], rep["host"]
        assert rep["final"] and rep["unexplained"] == 0 and hop["balanced"], json.dumps(rep, indent=1) + "".join(errs)
        assert rep["verdict"] == "ok", rep
        assert host["produced"] > 0 and hop["received"] > 0.5 * hop["published"], rep
        assert counts[n] == rep["collector"]["stored"] == hop["received"], (counts, rep)
