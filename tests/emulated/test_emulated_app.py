"""Our app on the emulated RP2040 from a cold power-on: the boot's first bytes, and the hot loop
allocation-free on the real 32-bit VM (micropython.heap_lock(), free heap flat over the run).

The flash is laid out on the host (host/testkit/erp_app.py: what `flash.py deploy` writes), so
each test is one power-on. A cold boot of our app costs ~1.1 emulated seconds of CPU before its
first byte (USB up at 0.06 s; compiling boot.py/main.py 0.23 s; .mpy imports, config checks and
sensor set-up 0.8 s): a host that listens for one emulated second hears nothing, which is what
the cycle bench's first attempt took for silence.
"""
from __future__ import annotations

import json
import re
import time

import pytest

from firmware import wire
from host.testkit.erp_app import app_tree, write_flash
from host.testkit.fwboard import FIRMWARE, Reader

pytestmark = pytest.mark.slow

SUMMARY = re.compile(r"PAGERLESS-SUMMARY (\{.*\})\r?\n")  # complete once its line ended (the REPL banner follows)
BOOT_BUDGET_S = 3.0  # emulated seconds from power-on to HELLO (measured 1.12-1.17)


def _wait(board, r: Reader, cond, wall: float, what: str) -> None:
    end = time.monotonic() + wall
    while not cond():
        if "Traceback" in r.text:
            pytest.fail(f"{what}: the app crashed on the emulated RP2040:\n{r.text[-1500:]}")
        crash = next((e.text for e in r.events() if e.code == wire.EV_UNHANDLED_EXCEPTION), None)
        if crash is not None:  # the app reports it, then resets: the run would start over
            pytest.fail(f"{what}: the app crashed on the emulated RP2040 at {board.emulated_seconds():.2f} "
                        f"emulated s:\n{crash}")
        if time.monotonic() > end:
            pytest.fail(f"{what}: not within {wall:.0f} s wall ({board.emulated_seconds():.2f} emulated s); "
                        f"text so far {r.text[-500:]!r}")
        time.sleep(0.2)


@pytest.mark.timeout(900)
def test_cold_boot_sends_boot_and_hello(rp2_image, tmp_path, erp_factory):
    write_flash(tmp_path / "b", rp2_image, app_tree())
    board = erp_factory(tmp_path / "b", register=False)
    r = Reader(board.port)
    try:
        _wait(board, r, lambda: r.of(wire.T_HELLO), 600, "HELLO after a cold boot")
        at = board.emulated_seconds()
        hello = r.of(wire.T_HELLO)[0].hello()
    finally:
        r.close()
    print(f"cold boot to HELLO: {at:.3f} emulated s")
    assert at < BOOT_BUDGET_S
    assert hello["mcu"] == "rp2040" and hello["reset_cause"] == wire.RC_POWER_ON
    events = [f.event().code for f in r.of(wire.T_EVENT)]
    assert wire.EV_BOOT in events


@pytest.mark.timeout(900)  # 98-111 s wall measured at load 5-8
def test_hot_loop_under_heap_lock_free_heap_flat(rp2_image, tmp_path, erp_factory):
    cfg = json.loads((FIRMWARE / "config.json").read_text())
    # a STATUS a second: the 64 warm-up passes before the lock now span ~0.5 emulated s (idle wake-ups
    # once per housekeeping_us), so at 200 ms a STATUS from before the lock was judged as a loop one
    cfg.update({"heap_lock": True, "max_iterations": 1200, "status_period_ms": 1000, "watchdog": False})
    for s in cfg["streams"]:  # the chip samples at its stream's 5 ms, so the imu reads FIFO bursts:
        if s["sensor"] == "mpu6050":  # a STATUS pass (> 5 emulated ms here) then costs it no slot
            s.setdefault("settings", {}).update({"sample_rate_div": 4})
    write_flash(tmp_path / "b", rp2_image, app_tree(cfg))
    t0 = time.monotonic()
    # every cycle emulated: idle fast-forward keys on timer reads, and the loop's own reads of the
    # clock mid-pass can be taken for a spin, so the firmware would see its work take longer
    board = erp_factory(tmp_path / "b", register=False, fast_forward=False)
    r = Reader(board.port)
    try:
        _wait(board, r, lambda: SUMMARY.search(r.text), 840, "the run's summary")
        emulated = board.emulated_seconds()
    finally:
        r.close()
    summary = json.loads(SUMMARY.search(r.text).group(1))
    statuses = [f.status() for f in r.of(wire.T_STATUS)]
    print(f"{summary['iterations']} passes, {summary['samples']} samples in {emulated:.2f} emulated s, "
          f"{time.monotonic() - t0:.0f} s wall; busy {summary['busy_us'] / max(summary['samples'], 1):.0f} us/sample; "
          f"(uptime ms, free heap, overruns) per STATUS "
          f"{[(s.uptime_ms, s.free_heap, s.loop_overruns) for s in statuses]}")
    assert summary["heap_lock"] is True and summary["heap_locked"] is True  # an allocation would raise
    assert summary["samples"] > 0
    assert all(s.streams and all(st.online for st in s.streams) for s in statuses[1:])
    # the first is sent at boot, before the loop locks the heap; the last after run() returned and
    # unlocked it (firmware/main.py: the final STATUS the host balances with, then the summary)
    loop = statuses[1:-1]
    assert len(loop) >= 4, f"only {len(loop)} STATUS frames from the loop"
    # under heap_lock STATUS measures free_heap once per lock (docs/protocol.md); the device's own
    # gc.mem_free() as the lock engaged and as the loop left it is the measured figure
    assert len({s.free_heap for s in loop}) == 1, "free heap moved under heap_lock"
    at_lock, at_end = summary["free_heap_locked"]
    assert at_lock == at_end > 0, f"free heap under the lock: {at_lock} at its start, {at_end} at its end"
    # judged last, so a loop too slow for its schedule still shows the allocation proof above
    assert summary["overruns"] == 0, f"the loop overran on the RP2040: {summary['overruns']}, per stream " \
        f"{[(x['id'], x['missing_overrun'], x['skipped']) for x in summary['streams']]} (id, missing, skipped)"
