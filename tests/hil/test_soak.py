"""Soak (opt-in: --soak, --soak-minutes N): every stream at its fastest sustainable rate for N
minutes while seeded random faults (host/vboard/scenario.py [random]) come and go.

Proves: zero crashes (no reset, one boot id, no UNHANDLED_EXCEPTION), exact accounting (every
host gap is a device drop or a corrupt segment on the link, per stream), every sensor back online
after the faults, and a flat free heap (the loop runs under micropython.heap_lock(), so any
allocation in the steady state would crash it).

The ledger soak runs host/testkit/faultrun.py's seeded schedules (every fault kind, resets and
port loss included) one seed after another for the soak's minutes; each recording's sample ledger
must balance exactly against the board's ground truth (tests/micropython/test_ledger_faults.py
runs three seeds of it in the default suite)."""
from __future__ import annotations

import json
import time

import pytest

from firmware import wire
from host.hil import checks
from host.hil.target import clear_faults
from host.testkit import faultrun
from host.virtual_board.scenario import ScenarioRunner, expand

pytestmark = [pytest.mark.virtual_board, pytest.mark.fault_injection, pytest.mark.soak, pytest.mark.slow]

# fastest rates the virtual board sustains together (mpu6050 1 kHz is its MIN_PERIOD_US; the ADC
# could go to 10 kHz alone but shares the loop with three I2C chips behind the shim)
MAX_RATE = {"heap_lock": True, "streams": {
    "imu": {"period_us": 1000, "batch": 25},
    "env": {"period_us": 10000, "batch": 10},
    "rh": {"period_us": 16000, "batch": 10},
    "a0": {"period_us": 1000, "batch": 50},
}}
# "drop_bytes" is left out: a lost 0x00 delimiter merges two frames into one corrupt segment, so
# losses can exceed corrupt segments and the accounting could not be exact by construction
KINDS = ["unplug", "nack", "stuck", "bit_errors", "backpressure", "freeze"]
FAULT_EVERY_S = 10.0
QUIET_TAIL_S = 15.0      # no fault starts in the last QUIET_TAIL_S (recovery + final accounting)
RECOVERY_S = 7.0
HEAP_DRIFT_MAX = 1024    # bytes: free heap may move by this much over the soak (recoveries allocate)
LEDGER_SPAN_S = 20.0     # seconds of faults per seed of the ledger soak


@pytest.mark.timeout(0)
@pytest.mark.parametrize("hil_config", [MAX_RATE], indirect=True, ids=["max-rate"])
def test_soak_max_rate_with_random_faults(dut, traffic, virtual_board, soak_minutes, hil_seed, request):
    duration = soak_minutes * 60
    span = max(1.0, duration - QUIET_TAIL_S)
    events = expand({"seed": hil_seed, "random": {"count": max(1, int(span / FAULT_EVERY_S)), "span": span,
                                                 "duration": [0.5, 3.0], "kinds": KINDS}}, "soak")
    boots = len(virtual_board.boots)
    boot = dut.boot_id
    heap: list[tuple[int, int]] = []     # (uptime ms, free heap)
    crashes: list[str] = []
    runner = ScenarioRunner(virtual_board, events, log=dut.note).start()
    cursor = traffic.mark()
    t_end = time.monotonic() + duration
    try:
        while time.monotonic() < t_end:
            time.sleep(min(5.0, max(0.0, t_end - time.monotonic())))
            new, cursor = dut.capture.frames_since(cursor)
            for f in new:
                if f.boot_id != boot:
                    crashes.append(f"frame from boot {f.boot_id:08x}: {f.type_name} seq {f.seq}")
                elif f.type == wire.T_STATUS:
                    s = f.status()
                    if f.seq > 0:  # STATUS 0 is sent before the boot's gc.collect()
                        heap.append((s.uptime_ms, s.free_heap))
                elif f.type == wire.T_EVENT and f.event().code == wire.EV_UNHANDLED_EXCEPTION:
                    crashes.append("UNHANDLED_EXCEPTION: " + f.event().text)
            traffic.drain()
            assert not crashes, crashes[:3]
            assert len(virtual_board.boots) == boots, "the board reset during the soak"
    finally:
        runner.stop()
        clear_faults(virtual_board)
    dut.note("soak: faults over, recovering")

    deadline = time.monotonic() + RECOVERY_S
    while True:
        st = traffic.status(timeout=3)
        if all(x.online for x in st.streams) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert all(x.online for x in st.streams), "every sensor back online after the faults"
    slowest = max(s.period_us * s.batch for s in traffic.streams.values()) / 1e6
    final = traffic.status()
    mark = traffic.mark()
    for sid in traffic.streams:
        traffic.expect("DATA", stream=sid, since=mark, timeout=slowest + 1)

    applied = [e for e in runner.applied if e.action != "replug" and e.args[-1:] not in ((0.0,), (False,))]
    s = traffic.stats
    led = traffic.ledger()
    tot = led.total
    lost = tot.lost_link + tot.lost_port_gone + tot.lost_recording
    figures = {
        "minutes": soak_minutes, "seed": hil_seed, "faults_applied": len(applied),
        "fault_kinds": sorted({e.action for e in applied}),
        "frames_ok": s.frames_ok,
        "crc_errors": s.crc_errors, "framing_errors": s.framing_errors, "invalid": s.invalid_frames,
        "host_gaps": s.missing, "device_dropped_samples": tot.dropped_device, "ledger": tot.as_dict(),
        "lost_in_transit": lost, "resets": len(virtual_board.boots) - boots,
        "heap_min": min(h for _, h in heap), "heap_max": max(h for _, h in heap),
        "loop_overruns": final.loop_overruns,
        "samples_missing": sum(x.samples_missing for x in final.streams),
        "sensor_errors": sum(x.sensor_errors for x in final.streams),
    }
    request.node.user_properties.append(("hil_figures", json.dumps(figures)))
    print("soak figures:", json.dumps(figures))

    assert figures["resets"] == 0 and {f.boot_id for f in traffic.frames()} == {boot}
    assert led.verdict == "ok", [tot.line(), *tot.reasons]
    assert s.invalid_frames == 0
    assert figures["heap_max"] - figures["heap_min"] <= HEAP_DRIFT_MAX, heap[:5] + heap[-5:]
    for sid, fs in checks.data_by_stream(traffic.frames("DATA", since=mark)).items():
        assert checks.out_of_range(traffic.streams[sid], traffic.physical(fs[-1])) == []


@pytest.mark.timeout(0)
def test_soak_ledger_balances_over_many_seeds(vboard_factory, tmp_path, soak_minutes, hil_seed, request):
    """The invariant of tests/micropython/test_ledger_faults.py for as many seeds as fit in the
    soak's minutes (from --hil-seed up; --seed N runs that one seed): each seed a fresh schedule of
    every fault kind, one recording, its ledger against the board's ground truth."""
    board = vboard_factory("ledger-soak")
    one = request.config.getoption("--seed", default=None)
    seed = hil_seed if one is None else one
    t_end = time.monotonic() + soak_minutes * 60
    failed: dict[int, list[str]] = {}
    runs = []
    while True:
        try:
            out = faultrun.run(board, seed, LEDGER_SPAN_S, tmp_path, log=lambda text: None)
        except AssertionError as exc:
            print(f"seed {seed}: FAILED (replay: --seed {seed}): {exc}")
            failed[seed] = [str(exc)]
        else:
            bad = faultrun.check(out)
            print(faultrun.summary(out) + (f"\n  FAILED (replay: --seed {seed}): {bad}" if bad else ""))
            runs.append({"seed": seed, "faults": out.faults, "total": out.report.total.as_dict()})
            if bad:
                failed[seed] = bad
            out.recording.unlink()
        seed += 1
        if one is not None or time.monotonic() >= t_end:
            break
    request.node.user_properties.append(("ledger_seeds", json.dumps(runs)))
    faults = sum(sum(r["faults"].values()) for r in runs)
    first = hil_seed if one is None else one
    print(f"ledger soak: {seed - first} seeds from {first}, {faults} faults, {len(failed)} failed")
    assert not failed, "failing seeds (replay one with --seed N): " + json.dumps(failed)
