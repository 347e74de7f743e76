"""Streams: every stream at its configured rate (within RATE_TOLERANCE over RATE_WINDOW_S), values
in physical range, and an unbroken sequence and schedule over a sustained run."""
from __future__ import annotations

import time

import pytest

from host.hil import checks

pytestmark = [pytest.mark.virtual_board]

RATE_WINDOW_S = 3.0        # measuring window (slow streams: at least 3 frames at 1 frame/s)
RATE_TOLERANCE = 0.05      # +-5 % of 1 / period_us, in device time and in host time
CONTINUITY_S = 10.0        # sustained run for the sequence test
# A virtual board is a process on a shared host, not a real-time system: a scheduling hiccup of a
# few ms shows up as a loop overrun and a sample marked missing. Sequence gaps must be zero; late
# samples are bounded instead.
MAX_MISSING_FRACTION = 0.01
MAX_OVERRUNS = 5


def test_every_stream_delivers_its_configured_rate_with_values_in_range(dut, traffic):
    since = traffic.mark()
    time.sleep(RATE_WINDOW_S + 0.3)
    timed = [(t, f) for t, f in dut.capture.timed_since(since) if f.type == 1]
    problems = []
    for sid, info in sorted(traffic.streams.items()):
        mine = [(t, f) for t, f in timed if f.stream == sid]
        assert len(mine) >= 3, f"{info.name}: only {len(mine)} DATA frames in {RATE_WINDOW_S} s"
        r = checks.rate(info, mine)
        print(r)
        for which in ("device", "host"):
            if abs(r.error(which)) > RATE_TOLERANCE:
                problems.append(f"{r} -> {which} rate off by more than {RATE_TOLERANCE:.0%}")
        for _, f in mine:
            assert f.period_us == info.period_us
            problems += checks.out_of_range(info, traffic.physical(f), f" seq {f.seq}")
    assert not problems, "\n".join(problems)


def test_sequence_and_schedule_unbroken_over_a_sustained_run(dut, traffic):
    frames = traffic.collect(CONTINUITY_S)
    st = traffic.status()
    by_stream = checks.data_by_stream(traffic.frames("DATA"))
    assert set(by_stream) == set(traffic.streams), "every stream delivered DATA"
    for sid, fs in by_stream.items():
        info = traffic.streams[sid]
        assert fs[0].seq == 0, f"{info.name}: the first DATA frame after boot has seq 0"
        assert checks.seq_gaps(fs) == [], f"{info.name}: sequence gaps"
        assert checks.schedule_breaks(fs) == [], f"{info.name}: sampling schedule slipped"
        missing = sum(f.data().missing_count() for f in fs)
        samples = sum(f.count for f in fs)
        assert missing <= MAX_MISSING_FRACTION * samples, f"{info.name}: {missing} of {samples} samples missing"
        expected = CONTINUITY_S * 1e6 / (info.period_us * info.batch)
        got = len([f for f in frames if f.type == 1 and f.stream == sid])
        assert got >= int(expected * 0.9), f"{info.name}: {got} frames in {CONTINUITY_S} s, expected ~{expected:.0f}"
    s = traffic.stats
    assert (s.missing, s.duplicates, s.crc_errors, s.framing_errors, s.invalid_frames) == (0, 0, 0, 0, 0)
    assert st.frames_dropped == 0 and all(x.frames_dropped == 0 and x.sensor_errors == 0 for x in st.streams)
    assert st.loop_overruns <= MAX_OVERRUNS, f"{st.loop_overruns} loop overruns on a healthy board"
    assert traffic.ledger().verdict == "ok"
