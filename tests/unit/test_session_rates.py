"""The monitor's per-stream Hz: right for streams that send a batch every few seconds, not only
for fast ones; honest about not knowing yet and about a stall."""
from __future__ import annotations

import math

import pytest

from host.monitoring.state import StreamState


def arrivals(st: StreamState, every_s: float, batch: int, frames: int, t0: float = 100.0) -> float:
    t = t0
    for _ in range(frames):
        st._arrivals.append((t, batch))
        t += every_s
    return t - every_s  # time of the last frame


def stream(period_us: int) -> StreamState:
    return StreamState(id=1, name="env", kind="bme280", period_us=period_us, channels=[], config={})


@pytest.mark.parametrize("period_us, batch", [(100_000, 30), (100_000, 64), (5_000, 25), (1_000, 40)])
def test_rate_is_the_configured_rate_between_frames_too(period_us, batch):
    st = stream(period_us)
    every = period_us * batch / 1e6
    last = arrivals(st, every, batch, 6)
    hz = 1e6 / period_us
    for now in (last + 0.01, last + every / 2, last + every * 0.99):  # anywhere before the next frame
        assert st.rate_hz(now) == pytest.approx(hz, rel=1e-6)


def test_rate_is_unknown_before_two_frames_and_zero_after_a_stall():
    st = stream(100_000)
    assert math.isnan(st.rate_hz(100.0))
    last = arrivals(st, 3.0, 30, 1)
    assert math.isnan(st.rate_hz(last + 1))
    last = arrivals(st, 3.0, 30, 3, t0=103.0)  # 4 frames, 3 s apart
    assert st.rate_hz(last + 5.9) == pytest.approx(10.0)
    assert st.rate_hz(last + 6.1) == 0.0  # two frame intervals without a frame


def test_a_backlog_read_at_once_gives_no_rate_rather_than_a_huge_one():
    st = stream(5_000)
    arrivals(st, 0.0, 25, 5)
    assert math.isnan(st.rate_hz(100.01))


def test_the_window_follows_a_rate_change():
    st = stream(5_000)
    last = arrivals(st, 0.125, 25, 40)  # 200 Hz for 5 s
    last = arrivals(st, 0.025, 25, 200, t0=last + 0.025)  # then 1 kHz for 5 s
    assert st.rate_hz(last + 0.01) == pytest.approx(1000, rel=0.02)
