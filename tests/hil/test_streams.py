"""Streams: every stream at its configured rate (within RATE_TOLERANCE over RATE_WINDOW_S), values
in physical range, and an unbroken sequence and schedule over a sustained run."""
from __future__ import annotations

import time

import pytest

from firmware import wire
from host.hil import checks

pytestmark = [pytest.mark.virtual_board]

RATE_WINDOW_S = 3.0        # measuring window (slow streams: at least 3 frames at 1 frame/s)
RATE_TOLERANCE = 0.05      # +-5 % of 1 / period_us in device time; the device clock vs the host's
CONTINUITY_S = 10.0        # sustained run for the sequence test
# A virtual board is a process on a shared host, not a real-time system: a host busy elsewhere
# delays its loop, and the device marks each slot it missed (cause OVERRUN) or skips a frame made
# only of missed slots (counted in frames_skipped).  So these tests bound nothing by host wall
# time: the schedule is judged in device time (exact), lateness by the device's own counts (every
# late sample accounted, each with its cause), and the device clock against the host's through
# round trips whose width bounds the host's delay.


def timed_status(traffic) -> tuple[float, float, int]:
    """(host time sent, host time seen, uptime_ms) of a STATUS the device built in between: the
    first one after SEND_STATUS's ACK (an earlier periodic STATUS may still be in flight). Host
    time is the target's clock (traffic.clock): wall time for a board, the emulator's own clock
    for the emulated RP2040 (0.01-0.05x real time)."""
    clock = traffic.clock
    since = traffic.mark()
    sent = clock()
    traffic.send("SEND_STATUS")
    while True:
        fs = traffic.frames(since=since)
        i = next((k for k, f in enumerate(fs) if f.type == wire.T_ACK), None)
        st = next((f for f in fs[i + 1:] if f.type == wire.T_STATUS), None) if i is not None else None
        if st is not None:
            return sent, clock(), st.status().uptime_ms
        assert clock() - sent < 5, "no STATUS after SEND_STATUS's ACK"
        time.sleep(0.005)


def test_every_stream_delivers_its_configured_rate_with_values_in_range(dut, traffic):
    a = timed_status(traffic)
    since = traffic.mark()
    end = traffic.clock() + RATE_WINDOW_S + 0.3
    while traffic.clock() < end:
        time.sleep(0.02)
    b = timed_status(traffic)
    lo, hi = checks.clock_ratio(a, b)
    print(f"device clock / host clock in [{lo:.4f}, {hi:.4f}]")
    assert lo <= 1 + RATE_TOLERANCE and hi >= 1 - RATE_TOLERANCE, f"device clock off: ratio in [{lo}, {hi}]"
    timed = [(t, f) for t, f in dut.capture.timed_since(since) if f.type == wire.T_DATA]
    x_of = {x.stream: x for x in traffic.status().streams}
    problems = []
    for sid, info in sorted(traffic.streams.items()):
        mine = [(t, f) for t, f in timed if f.stream == sid]
        assert len(mine) >= 3, f"{info.name}: only {len(mine)} DATA frames in {RATE_WINDOW_S} s"
        r = checks.rate(info, mine)
        print(r, f"slots {r.slot_hz:.4g} Hz")
        problems += [f"{info.name}: {p}" for p in checks.sensor_trouble(info.kind, [f for _, f in mine], x_of[sid])]
        if abs(r.error("slots")) > RATE_TOLERANCE:
            problems.append(f"{r} -> sample slots {r.slot_hz:.4g} Hz, off by more than {RATE_TOLERANCE:.0%}")
        for _, f in mine:
            assert f.period_us == info.period_us
            problems += checks.out_of_range(info, traffic.physical(f), f" seq {f.seq}")
    assert not problems, "\n".join(problems)


def test_sequence_and_schedule_unbroken_over_a_sustained_run(dut, traffic):
    traffic.collect(CONTINUITY_S)
    traffic.stop_streams()  # the counters stand still: the ledger and the last STATUS see the same frames
    st = traffic.status()
    by_stream = checks.data_by_stream(traffic.frames("DATA"))
    assert set(by_stream) == set(traffic.streams), "every stream delivered DATA"
    skipped = {x.stream: x.frames_skipped for x in st.streams}
    for sid, fs in by_stream.items():
        info = traffic.streams[sid]
        # seq counts from 0 at boot: frames before the first one seen are missing too (a loop a
        # busy host held up past the first frame's slots skips it, and counts it)
        gaps = fs[0].seq + sum(n for _, n in checks.seq_gaps(fs))
        assert gaps == skipped[sid], f"{info.name}: {gaps} frames missing, the device skipped {skipped[sid]}"
        assert checks.schedule_breaks(fs) == [], f"{info.name}: sampling schedule slipped"
        marked = sum(f.data().missing_count() for f in fs)
        x = st.streams[sid]
        assert checks.sensor_trouble(info.kind, fs, x) == [], info.name
        assert marked == x.missing_overrun + x.missing_sensor, \
            f"{info.name}: {marked} samples marked, device counted {x.missing_overrun + x.missing_sensor}"
        assert (fs[-1].seq + 1) * info.batch * info.period_us >= CONTINUITY_S * 1e6 * 0.9, \
            f"{info.name}: {fs[-1].seq + 1} frames cover less than the run (device time)"
    s = traffic.stats
    assert (s.duplicates, s.crc_errors, s.framing_errors, s.invalid_frames) == (0, 0, 0, 0)
    assert st.frames_dropped == 0 and all(x.frames_dropped == 0 for x in st.streams)
    late = sum(x.missing_overrun + x.frames_skipped * traffic.streams[x.stream].batch for x in st.streams)
    assert st.loop_overruns <= late, f"{st.loop_overruns} overruns but only {late} samples late"
    led = traffic.ledger()
    assert led.verdict == "ok", led.total.line()
    assert led.total.dropped_device == led.total.lost_link == led.total.not_reported == 0, led.total.line()
