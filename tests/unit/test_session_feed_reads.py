"""Session.feed_reads (what the live monitor calls with each poll's reads) must give exactly what
feed() gives read by read: same batches, values, times and counters, however the bytes are cut
and grouped. It converts a run of DATA frames to units once per stream, so a bug there would
shift values between frames or lose one across a boot, a gap or device text."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from host.monitoring.session import Session
from host.testkit.synthetic import BOOT_ID, boot_stream, imu_batches, status

SECOND_BOOT = 0x0BADF00D


def stream_bytes() -> bytes:
    first = boot_stream(n_imu=24, skip_seqs=(5, 6, 17))
    tail = b"".join(imu_batches(6, seq0=30, missing={31: (0, 3, 9)}))
    second = boot_stream(n_imu=10, boot_id=SECOND_BOOT, text=b"Traceback (most recent call last):\r\n")
    return first + b"\x00garbage\x00" + tail + status(BOOT_ID, 2) + second


def batch_key(b) -> tuple:
    vals = tuple((k, np.nan_to_num(v, nan=-1e300).tobytes()) for k, v in sorted(b.values.items()))
    return (b.t_host, b.session, b.boot_id, b.stream, b.name, b.seq, b.gap_before, b.t_us.tobytes(),
            vals, tuple(sorted(b.units.items())), b.missing.tobytes())


def session_key(s: Session) -> tuple:
    streams = tuple((sid, st.frames, st.samples, st.samples_missing, st.gaps, tuple(st._arrivals))
                    for sid, st in sorted(s.streams.items()))
    return (streams, tuple(sorted(s.frames_by_type.items())), vars(s.stats))


def reads_of(data: bytes, cuts: list[int]) -> list[tuple[float, bytes]]:
    edges = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [(1000.0 + i * 0.01, data[a:b]) for i, (a, b) in enumerate(zip(edges, edges[1:]))]


@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=1 << 20), max_size=40),
       groups=st.lists(st.integers(min_value=1, max_value=8), min_size=1, max_size=20))
def test_feed_reads_equals_feed_one_read_at_a_time(cuts, groups):
    reads = reads_of(stream_bytes(), cuts)
    one, many = Session(), Session()
    expected = [b for t, d in reads for b in one.feed(d, t)]
    got, i, g = [], 0, 0
    while i < len(reads):
        n = groups[g % len(groups)]
        got += many.feed_reads(reads[i:i + n])
        i, g = i + n, g + 1
    assert [batch_key(b) for b in got] == [batch_key(b) for b in expected]
    assert session_key(many) == session_key(one)
    assert len(expected) > 30  # the stream really went through: two boots of batches
