"""The decoder's inlined path for plain DATA frames (Decoder._segments) gives exactly what the
general path (_segment, _validate, _track) gives: the same frames, field for field, and the same
counters, over a stream with gaps, duplicates, bitmaps, reboots, corrupt segments and text."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware import wire
from host.protocol.decoder import Decoder
from host.protocol.encoder import encode_data, encode_hello, encode_status
from host.protocol.frames import Status, StreamStatus

HELLO = {
    "board": "t", "ticks_period": 1 << 30,
    "streams": [{"id": 0, "name": "a", "kind": "analog", "period_us": 100, "batch": 5,
                 "sample_format": "<H", "sample_size": 2, "channels": [["v", "raw"]], "config": {}},
                {"id": 3, "name": "b", "kind": "analog", "period_us": 100, "batch": 4,
                 "sample_format": "<H", "sample_size": 2, "channels": [["v", "raw"]], "config": {}}],
}


class GeneralOnly(Decoder):
    def _segments(self, parts, out):
        for seg in parts:
            if seg:
                self._segment(seg, out)


def _stream(seed: int) -> bytes:
    r = random.Random(seed)
    out = []
    for boot in (0x1111, 0x2222):
        out.append(encode_hello(boot, 0, HELLO))
        seq = {0: 0, 3: 0}
        for i in range(60):
            sid = r.choice((0, 3, 7))  # 7: not announced
            n = 5 if sid == 0 else 4
            s = seq.setdefault(sid, 0)
            seq[sid] = (s + r.choice((1, 1, 1, 2, 0))) & 0xFFFF  # in order, gaps, duplicates
            miss = (r.randrange(n),) if r.random() < 0.2 else ()
            f = encode_data(sid, boot, s, (i * 700 + r.randrange(-50, 50)) % (1 << 30), 100,
                            bytes(r.randrange(256) for _ in range(2 * n)), 2, missing=miss)
            if r.random() < 0.05:
                f = f[:5] + bytes([f[5] ^ 0x40]) + f[6:]  # corrupt
            out.append(f)
            if r.random() < 0.05:
                out.append(b"some text\r\n")
            if r.random() < 0.05:
                out.append(encode_status(boot, i, Status(i, 1, 0, i, 0, 1, 0, 0,
                                                         [StreamStatus(0, True, 0, i, 0, 0, 0, 0)])))
    return b"".join(out)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10_000), st.integers(1, 600))
def test_inlined_path_equals_general_path(seed, chunk):
    data = _stream(seed)
    a, b = Decoder(), GeneralOnly()
    fa, fb = [], []
    for i in range(0, len(data), chunk):
        fa += a.feed(data[i:i + chunk])
        fb += b.feed(data[i:i + chunk])
    assert [repr(x) for x in fa] == [repr(x) for x in fb]
    assert a.stats == b.stats
    assert sum(1 for x in fa if getattr(x, "type", None) == wire.T_DATA) > 10
