"""Backpressure: the host stops reading for STALL_S. The device keeps sampling on schedule (its
loop never waits on the link), drops whole frames when its ring is full, counts each drop, and
the host's sequence gaps equal the device's drops exactly (the sample ledger)."""
from __future__ import annotations

import time

import pytest

from host.hil import checks

pytestmark = [pytest.mark.virtual_board]

STALL_S = 5.0
# The virtual board's pty absorbs ~64 KiB before the device's writes block (a real USB CDC FIFO
# holds a few hundred bytes), so the stall runs with a small ring and a fast imu to overflow.
STALL_CONFIG = {"ring_bytes": 2048, "streams": {"imu": {"period_us": 1000, "batch": 25}}}
# "Keeps sampling on time": a loop that blocked on the link would lose every sample of the stall.
# We allow at most LATE_FRACTION of the window's samples to be late (loop overruns, samples marked
# missing, schedule re-anchoring): a virtual board shares the host's CPUs, it is not real-time.
LATE_FRACTION = 0.02


def wait_one_frame_per_stream(traffic, since, timeout):
    for sid in traffic.streams:
        traffic.expect("DATA", stream=sid, since=since, timeout=timeout)


@pytest.mark.parametrize("hil_config", [STALL_CONFIG], indirect=True, ids=["ring2k-imu1kHz"])
def test_host_stall_device_keeps_sampling_and_every_drop_is_accounted(dut, traffic):
    traffic.collect(0.5)
    st0 = traffic.status()
    with dut.host_stops_reading():
        time.sleep(STALL_S)
    time.sleep(0.5)  # the ring drains at link speed
    st1_frame = traffic.status_frame()
    st1 = st1_frame.status()
    slowest = max(s.period_us * s.batch for s in traffic.streams.values()) / 1e6
    wait_one_frame_per_stream(traffic, traffic.mark(), slowest + 0.5)
    # nothing may have been dropped after that STATUS (the ring is drained): check with another one
    st2 = traffic.status()
    assert st2.frames_dropped == st1.frames_dropped, "still dropping after the stall ended"

    dropped = {x.stream: x.frames_dropped - y.frames_dropped for x, y in zip(st1.streams, st0.streams)}
    print("device drops per stream:", dropped, "overruns:", st1.loop_overruns - st0.loop_overruns)
    assert sum(dropped.values()) > 0, f"the ring never overflowed in {STALL_S} s: the test proves nothing"

    led = traffic.ledger()
    assert led.verdict == "ok", "\n".join([led.total.line(), *led.total.reasons])
    info = {traffic.streams[x.stream].name: (x, traffic.streams[x.stream].batch) for x in st2.streams}
    assert {n: (L.dropped_device, L.skipped_overrun) for n, L in led.streams.items()} == {
        n: (x.frames_dropped * b, x.frames_skipped * b) for n, (x, b) in info.items()}
    assert traffic.corrupt_segments == 0

    # the device kept sampling on time through the stall (see LATE_FRACTION)
    window_us = (st1.uptime_ms - st0.uptime_ms) * 1000
    fastest = min(s.period_us for s in traffic.streams.values())
    overruns = st1.loop_overruns - st0.loop_overruns
    assert overruns <= LATE_FRACTION * window_us / fastest, f"{overruns} loop overruns in {window_us / 1e6:.1f} s"
    for x, y in zip(st1.streams, st0.streams):
        info = traffic.streams[x.stream]
        assert x.sensor_errors == y.sensor_errors
        late = x.samples_missing - y.samples_missing
        assert late <= LATE_FRACTION * window_us / info.period_us, f"{info.name}: {late} samples missing"
    for sid, fs in checks.data_by_stream(traffic.frames("DATA")).items():
        slip = checks.schedule_slip_us(fs)
        assert 0 <= slip <= LATE_FRACTION * window_us, f"{traffic.streams[sid].name}: schedule slipped {slip} us"
    assert [x.online for x in st2.streams] == [True] * len(st2.streams)
    assert traffic.boot_id == dut.boot_id, "no reset during the stall"
