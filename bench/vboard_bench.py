"""The virtual board as a board: how fast it boots, and how many I2C transactions its shim serves
beside what a real 400 kHz bus allows.

    python -m bench.vboard_bench [--boots N] [--reads N]

Boot: power-cycle N times; each time from the power-on call to the first byte that main.py prints
arriving on the pty (VM start, boot.py, main.py). I2C: a loop of 14-byte `readfrom_mem_into`
(an MPU-6050 accel/temp/gyro burst) under `heap_lock()` on the VM, in both bus modes. The baseline
is the bus itself: at 400 kHz that read is 17 bytes of 9 clocks plus START/STOP (~0.39 ms,
shared/FACTS.md), about 2,560 reads/s. The simulated bus keeps that wire time (docs/virtual-board.md),
so the target is that it is never faster than the real bus; the instant bus (benches) has none.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import serial

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import measure  # noqa: E402
from host.testkit.probes import I2C_READ_LOOP  # noqa: E402  (the repo root is on the path now)

READ_BYTES = 14  # what I2C_READ_LOOP reads
BUS_HZ = 400_000
REAL_READS_PER_S = BUS_HZ / ((READ_BYTES + 3) * 9 + 3)  # addr+reg+addr, 9 clocks a byte, START/rSTART/STOP

MARK_MAIN = "print('MAIN-UP')\n"


def boot_times(board, n: int) -> list[float]:
    (board.fs / "main.py").write_text(MARK_MAIN)
    out = []
    with serial.Serial(board.port, timeout=0.005) as ser:
        for _ in range(n):
            ser.reset_input_buffer()
            t0 = time.perf_counter()
            board.power_cycle()
            seen = b""
            while b"MAIN-UP" not in seen:
                seen += ser.read(256)
                if time.perf_counter() - t0 > 10:
                    raise SystemExit("vboard_bench: main.py did not run within 10 s of power-on")
            out.append(time.perf_counter() - t0)
            time.sleep(0.05)
    return out


def read_rate(board, n: int) -> float:
    from mpremote.transport_serial import SerialTransport

    (board.fs / "main.py").unlink(missing_ok=True)
    t = SerialTransport(board.port, baudrate=115200)
    try:
        t.enter_raw_repl(soft_reset=False)
        out, err = t.exec_raw(I2C_READ_LOOP % n, timeout=120)
        t.exit_raw_repl()
    finally:
        t.close()
    if err:
        raise SystemExit(f"vboard_bench: the read loop raised on the board: {err.decode(errors='replace')[-300:]}")
    us = int(out.split()[-1])
    return n / (us / 1e6)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.vboard_bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--boots", type=int, default=20, help="power cycles to time (default 20)")
    ap.add_argument("--reads", type=int, default=20_000, help="I2C reads per bus mode (default 20000)")
    args = ap.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="vboard-bench-"))
    os.environ["PAGERLESS_HOME"] = str(work / "home")
    from host.virtual_board.board import VirtualBoard

    rows = []
    with VirtualBoard(work / "sim", name="bench-sim", register=False) as board:
        board.wait_boot(1)
        boots = boot_times(board, args.boots)
        sim = read_rate(board, args.reads)
    with VirtualBoard(work / "instant", name="bench-instant", register=False, bus_mode="instant") as board:
        board.wait_boot(1)
        instant = read_rate(board, args.reads)
    rows.append(("14-byte register reads/s, simulated bus", sim, REAL_READS_PER_S))
    rows.append(("14-byte register reads/s, instant bus (bench)", instant, REAL_READS_PER_S))

    measure.header("vboard_bench: virtual board, reads under heap_lock()")
    print(f"power-on to main.py's first output: median {statistics.median(boots) * 1e3:.1f} ms, "
          f"p90 {sorted(boots)[int(0.9 * (len(boots) - 1))] * 1e3:.1f} ms, max {max(boots) * 1e3:.1f} ms "
          f"over {len(boots)} boots")
    print(f"{'measure':<48}{'virtual':>12}{'400 kHz bus':>14}{'ratio':>9}")
    for name, ours, base in rows:
        print(f"{name:<48}{ours:>12,.0f}{base:>14,.0f}{ours / base:>8.1f}x")
    targets = measure.Targets()
    # the simulated bus models I2C wire time (docs/virtual-board.md): never faster than the real bus
    targets.check("simulated-bus 14-byte reads/s vs a real 400 kHz bus (wire time kept)", sim / REAL_READS_PER_S,
                  "<=", 1.0, "x")
    return targets.exit_code()

if __name__ == "__main__":
    sys.exit(main())
