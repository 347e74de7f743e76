"""The session's live rate trackers stay bounded however long a run is, even when no view ever asks for a
rate (headless output, replay, export): they hold the last RATE_WINDOW_S, not one entry per frame."""
from __future__ import annotations

import pytest

from host.monitoring import state as session_mod
from host.monitoring.session import Session
from host.protocol.encoder import encode_hello
from host.testkit import synthetic

FRAMES = 100_000
PER_READ = 10
READ_EVERY_S = 0.01  # 1,000 frames/s of host time: 100 s in all


def test_trackers_stay_bounded_over_1e5_frames_without_a_view() -> None:
    s = Session()
    t = 1_700_000_000.0
    s.feed(encode_hello(synthetic.BOOT_ID, 0, synthetic.hello_info(imu_period_us=1000, imu_batch=1)), t)
    frames = synthetic.imu_batches(FRAMES, batch=1, period_us=1000)
    peak = {"bytes": 0, "frames": 0, "arrivals": 0}
    for i in range(0, FRAMES, PER_READ):
        t += READ_EVERY_S
        s.feed(b"".join(frames[i:i + PER_READ]), t)
        imu = s.streams[0]
        peak["bytes"] = max(peak["bytes"], len(s._bytes_win))
        peak["frames"] = max(peak["frames"], len(s._frames_win))
        peak["arrivals"] = max(peak["arrivals"], len(imu._arrivals))
    assert imu.frames == FRAMES
    reads_in_window = session_mod.RATE_WINDOW_S / READ_EVERY_S
    assert peak["bytes"] <= reads_in_window + 2 and peak["frames"] <= reads_in_window + 2
    assert peak["arrivals"] <= reads_in_window * PER_READ + PER_READ
    # and the rates read from what is kept are still right
    assert imu.rate_hz(t) == pytest.approx(1000, rel=0.02)
    assert s.frames_per_s(t) == pytest.approx(1000, rel=0.02)
