"""The fleet at scale: synthetic boards -> one broker -> one collector, all on 127.0.0.1.

    python -m bench.fleet_bench [--broker amqtt|mosquitto] [--levels 50,100,200,400] [--seconds 8]

Each board publishes the default config's imu and a0 streams (200 + 100 samples/s, 8 + 0.67 DATA
messages/s) plus a ledger message a second, as `host.testkit.fleetsim.LoadBoard` (the payloads
`monitor --publish` sends, without decoding frames, so hundreds of boards fit in this process).
Boards are added level by level; at each level, after a warm-up, the bench measures over a window
what the collector (a `fleet collect` child process writing Parquet) took in: messages/s and
samples/s, the end-to-end latency (publisher's send -> collector's handling) p50/p99, and the CPU
of the broker and the collector per 1,000 samples/s.  A level is sustained when the collector
took >= 97 % of the samples offered with p99 latency under 1 s; the ceiling is the highest level
sustained.  Target: 200 boards sustained (exit 1 on a miss).  Every loop is bounded in time.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from host.fleet.broker import LocalBroker, available
from host.fleet.topics import parse_url
from host.testkit.fleetsim import A0_BATCH, A0_PERIOD_US, IMU_BATCH, IMU_PERIOD_US, LoadBoard

TARGET_BOARDS = 200
SUSTAINED = 0.97
P99_LIMIT_MS = 1000.0
SAMPLES_PER_BOARD = 1e6 / IMU_PERIOD_US + 1e6 / A0_PERIOD_US
MSGS_PER_BOARD = 1e6 / (IMU_PERIOD_US * IMU_BATCH) + 1e6 / (A0_PERIOD_US * A0_BATCH) + 1.0
_TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / _TICK


def collector_state(out: Path) -> dict:
    try:
        return json.loads((out / "_collector.json").read_text())
    except (OSError, ValueError):
        return {}


def publish_boards(url: str, first: int, count: int, seconds: float) -> int:
    """A child's job: `count` LoadBoards for `seconds`; prints the samples it lost before the broker."""
    u = parse_url(url)
    t0 = time.time()
    boards = [LoadBoard(u, f"load-{first + i:04d}", t0 + (i % 10) * 0.01) for i in range(count)]
    for b in boards:
        b.start()
    until = t0 + seconds
    while time.time() < until:
        now = time.time()
        for b in boards:
            b.step(now)
        time.sleep(max(0.0, 0.1 - (time.time() - now)))
    print(json.dumps({"lost_before_broker": sum(b.publisher.lost_samples for b in boards)}), flush=True)
    for b in boards:
        b.publisher.client.disconnect()
        b.publisher.client.loop_stop()
    return 0


def run_level(url: str, n: int, procs: int, seconds: float, warmup: float, out: Path, pids: dict) -> dict:
    share = [n // procs + (1 if i < n % procs else 0) for i in range(procs)]
    kids = [subprocess.Popen([sys.executable, "-m", "bench.fleet_bench", "--child", url, str(sum(share[:i])),
                              str(k), str(warmup + seconds + 0.5)], stdout=subprocess.PIPE, text=True)
            for i, k in enumerate(share) if k]
    try:
        time.sleep(warmup)
        s0, c0 = collector_state(out), {k: cpu_s(p) for k, p in pids.items()}
        p50s, p99s = [], []
        t0 = time.time()
        while time.time() < t0 + seconds:
            time.sleep(1.0)
            lat = collector_state(out).get("latency_ms") or {}
            if lat.get("p50") is not None:
                p50s.append(lat["p50"])
                p99s.append(lat["p99"])
        s1, c1 = collector_state(out), {k: cpu_s(p) for k, p in pids.items()}
        span = (s1.get("written") or time.time()) - (s0.get("written") or t0)
        lost = sum(json.loads(k.communicate(timeout=60)[0].strip().splitlines()[-1])["lost_before_broker"]
                   for k in kids)
    finally:
        for k in kids:
            if k.poll() is None:
                k.kill()
    samples = (s1.get("samples", 0) - s0.get("samples", 0)) / span
    msgs = (s1.get("messages", 0) - s0.get("messages", 0)) / span
    cpu = {k: (c1[k] - c0[k]) / span for k in pids}
    offered = n * SAMPLES_PER_BOARD
    return {"boards": n, "offered_samples_s": offered, "samples_s": samples, "messages_s": msgs,
            "p50_ms": statistics.median(p50s) if p50s else None, "p99_ms": max(p99s) if p99s else None,
            "cpu_broker": cpu["broker"], "cpu_collector": cpu["collector"],
            "cpu_per_1k": (cpu["broker"] + cpu["collector"]) / (samples / 1000) if samples else None,
            "lost_before_broker": lost,
            "sustained": samples >= SUSTAINED * offered and p99s and max(p99s) < P99_LIMIT_MS}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.fleet_bench", description=__doc__.split("\n\n")[0])
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--child":
        return publish_boards(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
    ap.add_argument("--broker", choices=("amqtt", "mosquitto"), default=None,
                    help="default: mosquitto when installed, else amqtt")
    ap.add_argument("--procs", type=int, default=2, help="publisher processes (default 2)")
    ap.add_argument("--flush", type=float, default=5.0, help="the collector's flush interval, s (default 5)")
    ap.add_argument("--levels", default="50,100,200,400", help="boards at each level, ascending")
    ap.add_argument("--seconds", type=float, default=8.0, help="measuring window per level")
    ap.add_argument("--warmup", type=float, default=3.0)
    a = ap.parse_args(argv)
    if a.broker is None:
        a.broker = "mosquitto" if available("mosquitto") is None else "amqtt"
    why = available(a.broker)
    if why:
        print(f"fleet_bench: {why}", file=sys.stderr)
        return 2
    levels = sorted(int(x) for x in a.levels.split(","))
    out = Path(tempfile.mkdtemp(prefix="pagerless-fleet-bench-"))
    rows = []
    with LocalBroker(a.broker) as broker:
        url = parse_url(broker.url("bench"))
        col = subprocess.Popen([sys.executable, "-m", "host.fleet", "collect", str(url), "--out", str(out),
                                "--flush", str(a.flush)], stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 15
            while not collector_state(out) and time.time() < deadline:
                time.sleep(0.1)
            pids = {"broker": broker.proc.pid, "collector": col.pid}
            for level in levels:
                r = run_level(str(url), level, a.procs, a.seconds, a.warmup, out, pids)
                rows.append(r)
                print(f"{r['boards']:>5} boards: {r['messages_s']:>8.0f} msg/s {r['samples_s']:>9.0f} samples/s "
                      f"(offered {r['offered_samples_s']:.0f})  latency p50 {r['p50_ms']} ms p99 {r['p99_ms']} ms  "
                      f"CPU broker {r['cpu_broker']:.2f} collector {r['cpu_collector']:.2f} core = "
                      f"{r['cpu_per_1k'] or float('nan'):.3f} core per 1,000 samples/s"
                      f"{'' if r['sustained'] else '  NOT SUSTAINED'}"
                      + (f"  lost before the broker {r['lost_before_broker']}" if r["lost_before_broker"] else ""),
                      flush=True)
                if not r["sustained"]:
                    break
        finally:
            col.terminate()
            try:
                col.wait(15)
            except subprocess.TimeoutExpired:
                col.kill()
    ok = [r["boards"] for r in rows if r["sustained"]]
    ceiling = max(ok) if ok else 0
    print(f"ceiling ({a.broker}, this machine, publishers in {a.procs} processes beside it): {ceiling} boards "
          f"(~{ceiling * SAMPLES_PER_BOARD:.0f} samples/s, ~{ceiling * MSGS_PER_BOARD:.0f} msg/s)"
          + ("" if rows and not rows[-1]["sustained"] else " or more (highest level tried)"))
    met = ceiling >= TARGET_BOARDS
    print(f"target: {TARGET_BOARDS} boards at the default config's rates sustained "
          f"(>= {SUSTAINED:.0%} of samples, p99 < {P99_LIMIT_MS:.0f} ms): {'met' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
