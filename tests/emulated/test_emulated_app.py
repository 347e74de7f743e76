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

BOOT_BUDGET_S = 3.0  # emulated seconds from power-on to HELLO (measured 1.12-1.17)


def _wait(board, r: Reader, cond, wall: float, what: str) -> None:
    end = time.monotonic() + wall
    while not cond():
        if "Traceback" in r.text:
            pytest.fail(f"{what}: the app crashed on the emulated RP2040:\n{r.text[-1500:]}")
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


@pytest.mark.timeout(1800)
def test_hot_loop_under_heap_lock_free_heap_flat(rp2_image, tmp_path, erp_factory):
    cfg = json.loads((FIRMWARE / "config.json").read_text())
    cfg.update({"heap_lock": True, "max_iterations": 1200, "status_period_ms": 200, "watchdog": False})
    write_flash(tmp_path / "b", rp2_image, app_tree(cfg))
    board = erp_factory(tmp_path / "b", register=False)
    r = Reader(board.port)
    try:
        _wait(board, r, lambda: "PAGERLESS-SUMMARY " in r.text and r.text.rstrip().endswith("}"), 1700,
              "the run's summary")
        emulated = board.emulated_seconds()
    finally:
        r.close()
    summary = json.loads(re.search(r"PAGERLESS-SUMMARY (\{.*\})", r.text).group(1))
    statuses = [f.status() for f in r.of(wire.T_STATUS)]
    print(f"{summary['iterations']} passes, {summary['samples']} samples in {emulated:.2f} emulated s; "
          f"free heap per STATUS {[s.free_heap for s in statuses]}")
    assert summary["heap_lock"] is True and summary["heap_locked"] is True  # an allocation would raise
    assert summary["samples"] > 0 and summary["overruns"] == 0
    assert all(s.streams and all(st.online for st in s.streams) for s in statuses[1:])
    loop = statuses[1:]  # the first is sent at boot, before the loop locks the heap
    assert len(loop) >= 4, f"only {len(loop)} STATUS frames from the loop"
    assert len({s.free_heap for s in loop}) == 1, "free heap moved under heap_lock"
