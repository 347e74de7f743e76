"""The firmware's whole steady-state loop runs under micropython.heap_lock() on the virtual
board for 100,000 passes while faults are injected (unplug/replug, NACKs, a stuck bus,
backpressure that makes the ring drop) and commands arrive.  Any allocation would raise
MemoryError, which the firmware reports as an UNHANDLED_EXCEPTION event: the test fails on
that event, on a traceback, or when the end-of-run summary line is missing.  The IMU starts at
the chip's own rate (1 kHz), so it reads bursts from the MPU-6050's FIFO (NACKs, an offline
chip and its recovery included), until SET_PERIOD moves it to per-sample reads (NACKs again)."""
from __future__ import annotations

import json
import time

import pytest

from firmware import wire
from host.testkit.fwboard import FIRMWARE, boot

pytestmark = [pytest.mark.virtual_board, pytest.mark.fault_injection, pytest.mark.micropython]

ITERATIONS = 100_000


def test_firmware_loop_runs_100k_passes_under_heap_lock_with_faults(vboard_factory):
    board = vboard_factory(link_rate="usb")
    cfg = json.loads((FIRMWARE / "config.json").read_text())
    cfg.update({"heap_lock": True, "max_iterations": ITERATIONS, "idle_us_max": 100, "ring_bytes": 2048,
                "status_period_ms": 250})
    cfg["streams"][3]["period_us"] = 1000
    cfg["streams"][0]["period_us"] = 1000  # the chip's sample period: burst reads from its FIFO
    r = boot(board, cfg)

    def crashed():
        return [e for e in r.events() if e.code == wire.EV_UNHANDLED_EXCEPTION]

    def step(seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            assert not crashed(), crashed()[0].text
            time.sleep(0.05)

    try:
        r.wait(lambda: r.of(wire.T_STATUS), what="first STATUS")
        board.unplug("bme280")
        step(0.8)
        # offline takes 5 failed reads of the device's loop, which a busy host slows: wait for it
        r.wait(lambda: crashed() or any(e.code == wire.EV_SENSOR_OFFLINE for e in r.events()), what="SENSOR_OFFLINE")
        board.replug("bme280")
        board.set_nack_rate("mpu6050", 0.3)
        step(0.8)
        board.set_nack_rate("mpu6050", 0.0)
        board.set_bus_stuck(True)
        step(0.3)
        board.set_bus_stuck(False)
        r.send(wire.OP_PING, 1)
        r.send(wire.OP_SET_PERIOD, 2, 0, (4000).to_bytes(4, "little"))
        r.send(wire.OP_SEND_HELLO, 3)
        r.send(0x77, 4)
        board.set_nack_rate("mpu6050", 0.3)  # per-sample reads now (SET_PERIOD 4000)
        step(0.5)
        board.set_nack_rate("mpu6050", 0.0)
        board.set_backpressure(True)
        step(4.0)  # long enough to fill the pty buffers and then the 2 kB ring
        board.set_backpressure(False)
        # 100,000 passes take ~15 s on an idle host and several times that on a busy one: a wait
        r.wait(lambda: "PAGERLESS-SUMMARY" in r.text or crashed(), timeout=150, what="the end-of-run summary")
        time.sleep(0.3)
    finally:
        r.close()
    assert not crashed(), crashed()[0].text
    assert "MemoryError" not in r.text and "Traceback" not in r.text, r.text[-2000:]
    line = [ln for ln in r.text.splitlines() if ln.startswith("PAGERLESS-SUMMARY ")][0]
    summary = json.loads(line.split(" ", 1)[1])
    print("heap-locked run:", summary)
    assert summary["heap_lock"] is True and summary["iterations"] == ITERATIONS
    assert min(summary["free_heap_locked"]) > 0  # measured on the device at the lock and at its end
    assert summary["commands"] == 4 and summary["recoveries"] >= 1
    assert summary["frames_dropped"] > 0  # backpressure made the ring drop, under the lock
    ev = {e.code for e in r.events()}
    assert {wire.EV_SENSOR_OFFLINE, wire.EV_SENSOR_ONLINE} <= ev
    acks = {a.token: a.reason for a in r.acks()}
    assert acks == {1: 0, 2: 0, 3: 0, 4: wire.R_UNKNOWN_OPCODE}
    assert sum(s["missing_overrun"] + s["missing_sensor"] for s in summary["streams"]) > 0
    assert len(board.boots) == 2  # no reset: nothing escaped the loop
