"""main.py on the virtual board streams all four sensors at their configured rates: every
sequence continuous, values in physical range, HELLO and CALIB present."""
from __future__ import annotations

import time

import numpy as np
import pytest

from firmware import wire
from host.sensors import units
from host.monitoring.ledger import Ledger
from host.testkit.fwboard import boot

pytestmark = pytest.mark.virtual_board

RANGES = {
    "temperature_c": (0, 50), "pressure_pa": (80_000, 110_000), "humidity_rh": (0, 100),
    "voltage_v": (0, 3.3),
}


def test_firmware_streams_four_sensors_continuously_in_range(vboard_factory):
    board = vboard_factory(link_rate="usb")
    r = boot(board)
    try:
        # the shipped batches make the slow streams send one frame every few seconds
        r.wait(lambda: len(r.of(wire.T_STATUS)) >= 3 and len({f.stream for f in r.of(wire.T_DATA)}) == 4,
               timeout=15, what="three STATUS frames and DATA of every stream")
        time.sleep(0.3)
    finally:
        r.close()
    hello = r.of(wire.T_HELLO)
    assert hello and hello[0].seq == 0
    info = hello[0].hello()
    assert [s["kind"] for s in info["streams"]] == ["mpu6050", "bme280", "sht31", "analog"]
    assert info["ticks_period"] == 1 << 30 and info["firmware"] and info["protocol"] == wire.VERSION == 2
    calibs = {f.stream: f.body for f in r.of(wire.T_CALIB)}
    assert set(calibs) == {0, 1, 2, 3} and len(calibs[1]) == 33
    assert r.dec.stats.missing == 0 and r.dec.stats.corrupt_segments == 0
    led = Ledger()
    for f in r.frames:
        led.frame(f)
    assert led.report().verdict in ("ok", "pending") and not led.report().total.unexplained
    streams = {s["id"]: s for s in info["streams"]}
    missing_total = samples_total = 0
    for sid, s in streams.items():
        frames = [f for f in r.of(wire.T_DATA) if f.stream == sid]
        assert frames, f"no DATA for {s['name']}"
        seqs = [f.seq for f in frames]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), f"{s['name']}: gaps in {seqs}"
        assert all(f.period_us == s["period_us"] and f.count == s["batch"] for f in frames)
        # consecutive frames follow each other exactly in time (deadlines do not drift)
        for a, b in zip(frames, frames[1:]):
            assert b.t_us - a.t_us == a.count * a.period_us
        raw = b"".join(f.data().samples for f in frames)
        missing = np.array([f.data().is_missing(i) for f in frames for i in range(f.count)], dtype=bool)
        missing_total += int(missing.sum())
        samples_total += len(missing)
        phys = units.to_physical(s["kind"], raw, calibs.get(sid, b""), s["config"], missing=missing)
        for name, arr in phys.items():
            arr = arr[~missing]
            if name in RANGES:
                lo, hi = RANGES[name]
                assert np.all((arr >= lo) & (arr <= hi)), f"{s['kind']} {name} out of range: {arr[:5]}"
        if s["kind"] == "mpu6050":
            g = np.sqrt(phys["accel_x_g"] ** 2 + phys["accel_y_g"] ** 2 + phys["accel_z_g"] ** 2)[~missing]
            assert np.all(np.abs(g - 1) < 0.2), g[:5]
    # rates: samples per second of device time match the configured period
    span_s = (r.of(wire.T_STATUS)[-1].t_us - hello[0].t_us) / 1e6
    imu = sum(f.count for f in r.of(wire.T_DATA) if f.stream == 0)
    assert imu >= 0.8 * span_s * 200
    st = r.of(wire.T_STATUS)[-1].status()
    assert st.frames_dropped == 0
    assert all(x.online and x.sensor_errors == 0 for x in st.streams)
    # The VM shares two cores with the simulated bus and this test: now and then it is held up
    # past a deadline. The firmware must then say so: the slot goes out marked missing and the
    # overrun is counted, never a silently shifted sample. Rare, not routine.
    if missing_total:
        assert st.loop_overruns > 0, "samples missing with no overrun and no sensor error"
    assert missing_total <= 0.02 * samples_total, f"{missing_total} of {samples_total} samples missing"
