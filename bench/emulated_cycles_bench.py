"""Firmware cost in emulated RP2040 cycles: `python -m bench.emulated_cycles_bench [--runs 2]`.

Our firmware and bench/naive_main.py on the same emulated RP2040 (host/emulated_rp2040: the user's
MicroPython UF2, $PAGERLESS_RP2_UF2 or --image), the same simulated chips and seed, every sensor at
its driver's MIN_PERIOD_US. Each firmware is installed once into its own board folder's flash
(the files `flash.py deploy` writes, laid into littlefs by host/testkit/erp_app.py); every measured
run then powers that flash on afresh with idle fast-forward off and no host input, so the emulation
is deterministic: the figures of two runs must be identical, and the bench says so. Each run also
reports when the first byte arrived (emulated s: the cold boot, ~1.1 s for ours).

Figures are the devices' own loop-work counters in emulated microseconds (the clock is 125 MHz, so
x125 is cycles): ours `busy_us / samples` from its PAGERLESS-SUMMARY after `max_iterations` passes
(heap_lock on), the naive's `busy_us / samples` from its first stats line (one emulated second).
Target (issue 14): ours at least 20x cheaper per sample; exit 1 on a miss or on runs that disagree.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench import measure
from host.emulated_rp2040.board import EmulatedBoard
from host.emulated_rp2040.image import require_image
from host.testkit.erp_app import app_tree, write_flash
from host.testkit.fwboard import FIRMWARE, Reader

ROOT = Path(__file__).resolve().parents[1]
NAIVE = ROOT / "bench" / "naive_main.py"
MIN_PERIODS = {"mpu6050": 1000, "bme280": 9800, "sht31": 16000, "analog": 100}
CYCLES_PER_US = 125
TARGET = 20.0
PASSES = 300


def _config() -> dict:
    cfg = json.loads((FIRMWARE / "config.json").read_text())
    for s in cfg["streams"]:
        s["period_us"] = MIN_PERIODS[s["sensor"]]
    cfg.update({"heap_lock": True, "max_iterations": PASSES, "watchdog": False})
    return cfg


def prepare(folder: Path, image: Path, which: str) -> None:
    """The board folder's flash with one firmware installed (host/testkit/erp_app.py: the files
    `flash.py deploy` writes, laid into littlefs on the host; a raw-REPL deploy takes minutes here)."""
    if which == "ours":
        tree = app_tree(_config())
    else:
        tree = {k: v for k, v in app_tree().items() if k.startswith("sensors/")}
        tree["main.py"] = NAIVE.read_bytes()
    write_flash(folder, image, tree)


def run(template: Path, image: Path, which: str, timeout: float) -> dict:
    """Power the prepared flash on in a fresh folder; the device's own figures."""
    with tempfile.TemporaryDirectory(prefix="erp-cycles-") as tmp:
        shutil.copy(template / "flash.bin", Path(tmp) / "flash.bin")
        board = EmulatedBoard(tmp, image=image, register=False, fast_forward=False).start()
        r = Reader(board.port)
        t0 = time.monotonic()
        try:
            r.wait(lambda: r.frames or r.text, timeout=timeout, what=f"{which}'s first byte")
            boot = board.emulated_seconds()
            key = "PAGERLESS-SUMMARY " if which == "ours" else '{"stats"'
            r.wait(lambda: key in r.text and r.text.rstrip().endswith("}") or "Traceback" in r.text,
                   timeout=timeout, what=f"{which}'s figures")
            emulated, wall = board.emulated_seconds(), time.monotonic() - t0
        finally:
            r.close()
            board.stop()
    if "Traceback" in r.text:
        raise RuntimeError(f"{which} crashed on the emulated RP2040:\n{r.text[-2000:]}")
    if which == "ours":
        fig = json.loads(re.search(r"PAGERLESS-SUMMARY (\{.*\})", r.text).group(1))
    else:
        fig = json.loads(re.search(r'(\{"stats".*\})', r.text).group(1))["stats"]
    return {"samples": fig["samples"], "busy_us": fig["busy_us"], "heap_locked": fig.get("heap_locked"),
            "us_per_sample": fig["busy_us"] / max(fig["samples"], 1), "emulated_s": emulated, "wall_s": wall,
            "boot_s": boot}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.emulated_cycles_bench", description=__doc__.split("\n")[0])
    p.add_argument("--image", help="MicroPython RP2040 UF2 (default: $PAGERLESS_RP2_UF2)")
    p.add_argument("--runs", type=int, default=2, help="runs of each firmware (identical when deterministic)")
    p.add_argument("--timeout", type=float, default=3600.0, help="wall seconds allowed per run")
    args = p.parse_args(argv)
    image = require_image(args.image)
    measure.header(f"Emulated RP2040 cycles per sample: ours vs naive ({image.name})")
    results: dict[str, list[dict]] = {"ours": [], "naive": []}
    with tempfile.TemporaryDirectory(prefix="erp-cycles-bench-") as tmp:
        for which in results:
            t0 = time.monotonic()
            prepare(Path(tmp) / which, image, which)
            print(f"{which}: flash prepared in {time.monotonic() - t0:.1f} s wall", flush=True)
        for i in range(args.runs):
            for which in results:
                res = run(Path(tmp) / which, image, which, args.timeout)
                results[which].append(res)
                print(f"{which} run {i + 1}: {res['samples']} samples, {res['us_per_sample']:.3f} emulated us "
                      f"= {res['us_per_sample'] * CYCLES_PER_US:,.0f} cycles per sample, heap_locked "
                      f"{res['heap_locked']}, first byte at {res['boot_s']:.3f} emulated s, {res['emulated_s']:.3f} emulated s in {res['wall_s']:.0f} s wall",
                      flush=True)
    targets = measure.Targets()
    for which, runs in results.items():
        keys = [(r["samples"], r["busy_us"]) for r in runs]
        if len(set(keys)) != 1:
            targets.fail(f"{which} deterministic", f"runs disagree: (samples, busy_us) {keys}")
        else:
            print(f"{which}: {len(runs)} runs agree exactly: {keys[0][0]} samples, {keys[0][1]} busy us")
    ours, naive = results["ours"][0]["us_per_sample"], results["naive"][0]["us_per_sample"]
    ratio = naive / ours if ours else 0.0
    print(f"cycles per sample: ours {ours * CYCLES_PER_US:,.0f}, naive {naive * CYCLES_PER_US:,.0f}, "
          f"ratio {ratio:.1f}x")
    targets.check("naive / ours cycles per sample (issue 14)", ratio, ">=", TARGET, "x", "{:.1f}")
    if results["ours"][0]["heap_locked"] is not True:
        targets.fail("ours under heap_lock", f"heap_locked {results['ours'][0]['heap_locked']}")
    return targets.exit_code()


if __name__ == "__main__":
    sys.exit(main())
