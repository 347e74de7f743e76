"""Backpressure: the host stops reading for STALL_S. The device keeps sampling on schedule (its
loop never waits on the link), drops whole frames when its ring is full, counts each drop, and
the host's sequence gaps equal the device's drops exactly (the sample ledger)."""
from __future__ import annotations

import time

import pytest

from host.hil import checks
from host.hil.traffic import HilError

pytestmark = [pytest.mark.virtual_board]

STALL_S = 5.0
# The simulated boards' links absorb several KiB before the device's writes block (a real USB CDC
# FIFO holds a few hundred bytes), so the stall runs with a small ring and a fast imu to overflow.
STALL_CONFIG = {"ring_bytes": 2048, "streams": {"imu": {"period_us": 1000, "batch": 25}}}
# "Keeps sampling on time" is judged against the same device's own record over a window of the
# same length just before the stall, with the host reading: a loop that waited on the link would
# lose every sample from the moment its ring filled (a few % of the stall in), whatever the CPU,
# while a loop that shares a busy host's CPUs loses about as much in both windows.  So the share
# of samples the device took on time during the stall must be at least ON_TIME_RATIO of that share
# in the reference window (a blocked loop scores ~0.05; the slack covers load that varies between
# the two windows).  Both come from STATUS counters over device time, none from host wall time.
ON_TIME_RATIO = 0.5
DRAIN_STATUS_MAX = 20  # STATUS reports (0.5 s of device time apart) for the drops to stop


def wait_one_frame_per_stream(traffic, since, timeout):
    for sid in traffic.streams:
        traffic.expect("DATA", stream=sid, since=since, timeout=timeout)


def on_time_share(traffic, a, b) -> float:
    """Of the samples the device produced between STATUS a and b, the share not lost to lateness
    (marked missing by an overrun, or in a frame an overrun skipped)."""
    produced = late = 0
    for x, y in zip(b.streams, a.streams):
        batch = traffic.streams[x.stream].batch
        produced += ((x.frames_built - y.frames_built) + (x.frames_skipped - y.frames_skipped)) * batch
        late += (x.missing_overrun - y.missing_overrun) + (x.frames_skipped - y.frames_skipped) * batch
    return 1 - late / produced if produced else 0.0


# a wait for a command's answer, not a judgement: after the stall the answer queues behind the
# backlog, a busy host reads it late, and while the ring is still full the ACK or the STATUS itself
# may be refused (counted in the global frames_dropped): ask again, ASKS times at most
ANSWER_WAIT_S = 5.0
ASKS = 4


def ask_status(traffic):
    for _ in range(ASKS - 1):
        try:
            return traffic.status(timeout=ANSWER_WAIT_S)
        except HilError:
            pass
    return traffic.status(timeout=ANSWER_WAIT_S)


def status_later(traffic, st, ms=500):
    """The device's next STATUS at least `ms` of its own time after `st`."""
    while True:
        nxt = ask_status(traffic)
        if nxt.uptime_ms - st.uptime_ms >= ms:
            return nxt
        time.sleep((ms - (nxt.uptime_ms - st.uptime_ms)) / 1000)


@pytest.mark.parametrize("hil_config", [STALL_CONFIG], indirect=True, ids=["ring2k-imu1kHz"])
def test_host_stall_device_keeps_sampling_and_every_drop_is_accounted(dut, traffic):
    traffic.collect(0.5)
    ref0 = ask_status(traffic)
    ref1 = status_later(traffic, ref0, int(STALL_S * 1000))  # the reference window, host reading
    st0 = ref1
    with dut.host_stops_reading():
        traffic.wait(STALL_S)  # on the board's clock (emulated seconds on the emulated RP2040)
    st1 = ask_status(traffic)
    # the ring drains at link speed: then the drops stop, and stay stopped for a STATUS period
    for _ in range(DRAIN_STATUS_MAX):
        st2 = status_later(traffic, st1)
        if st2.frames_dropped == st1.frames_dropped:
            break
        st1 = st2
    assert st2.frames_dropped == st1.frames_dropped, "still dropping long after the stall ended"
    slowest = max(s.period_us * s.batch for s in traffic.streams.values()) / 1e6
    wait_one_frame_per_stream(traffic, traffic.mark(), slowest + 0.5)

    dropped = {x.stream: x.frames_dropped - y.frames_dropped for x, y in zip(st1.streams, st0.streams)}
    print("device drops per stream:", dropped, "overruns:", st1.loop_overruns - st0.loop_overruns)
    assert sum(dropped.values()) > 0, f"the ring never overflowed in {STALL_S} s: the test proves nothing"

    # the device kept sampling on time through the stall, as well as it did with the host reading
    ref, stall = on_time_share(traffic, ref0, ref1), on_time_share(traffic, st0, st1)
    print(f"on time: {ref:.3f} of samples with the host reading, {stall:.3f} during the stall")
    assert ref > 0, "the device took no sample on time even with the host reading"
    assert stall >= ON_TIME_RATIO * ref, f"on time {stall:.3f} during the stall vs {ref:.3f} before it"
    by = checks.data_by_stream(traffic.frames("DATA"))
    for x in st1.streams:  # the stall is no sensor's business
        info = traffic.streams[x.stream]
        assert checks.sensor_trouble(info.kind, by.get(x.stream, []), x) == [], info.name
    # the time axis stays exact (missed slots are marked or skipped, never re-anchored)
    for sid, fs in checks.data_by_stream(traffic.frames("DATA")).items():
        assert checks.schedule_slip_us(fs) == 0, f"{traffic.streams[sid].name}: schedule slipped"
    assert [x.online for x in st2.streams] == [True] * len(st2.streams)
    assert traffic.boot_id == dut.boot_id, "no reset during the stall"

    # every drop accounted: stopped streams leave the counters still, so the ledger and the
    # device's last STATUS are judged on the same frames
    traffic.stop_streams()
    final = ask_status(traffic)
    led = traffic.ledger()
    assert led.verdict == "ok", "\n".join([led.total.line(), *led.total.reasons])
    info = {traffic.streams[x.stream].name: (x, traffic.streams[x.stream].batch) for x in final.streams}
    assert {n: (L.dropped_device, L.skipped_overrun) for n, L in led.streams.items()} == {
        n: (x.frames_dropped * b, x.frames_skipped * b) for n, (x, b) in info.items()}
    assert traffic.corrupt_segments == 0
