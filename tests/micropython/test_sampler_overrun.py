"""Loop overruns keep the time axis exact: the firmware's own Stream, on the unix port, is driven
through stalls of every size (inside a frame, across a frame boundary, several frames long), and
every frame it emits must start where the axis puts it, with each sequence gap matched by a
counted skip and each missed slot inside a frame marked missing with its cause (overrun or
sensor) in the frame's flags and in the stream's counters, counted only once the frame is
built; and all of it allocation-free."""
from __future__ import annotations

import json

import pytest

from tests.micropython.mpy_runner import FIRMWARE, run_unix, unix_micropython

pytestmark = [
    pytest.mark.micropython,
    pytest.mark.skipif(unix_micropython() is None, reason="MicroPython unix port not installed"),
]

PERIOD = 1000
BATCH = 5

MP_CODE = r"""
import json, struct
import wire
from stream import Stream

PERIOD = @PERIOD@
BATCH = @BATCH@


FAIL_AT = (7, 8, 10, 30, 31, 33, 70)  # read numbers (1-based) that raise OSError: sensor-missing marks
ERR = OSError(5)


class Chip:
    KIND = "fake"
    SAMPLE_SIZE = 2
    MIN_PERIOD_US = 100
    FREE_RUNNING = True

    def __init__(self):
        self.n = 0

    def read_into(self, buf):
        self.n += 1
        if self.n in FAIL_AT:
            raise ERR
        buf[0] = self.n & 0xFF
        buf[1] = 0

    def start(self):
        pass


class Out:
    def __init__(self):
        self.frames = []

    def add_stream(self, sid, frame_bytes):
        pass

    def send_data(self, frame, n, sid):
        h = struct.unpack_from(wire.HEADER_FMT, frame, 0)
        flags, seq, t0, count = h[3], h[5], h[6], h[8]
        bm = wire.bitmap_offset(count, 2)
        miss = [i for i in range(count) if flags & wire.FLAG_MISSING and frame[bm + (i >> 3)] >> (i & 7) & 1]
        self.frames.append({"seq": seq, "t0": t0, "missing": miss, "flags": flags})
        return len(self.frames) % 4 != 0  # every 4th frame refused by the output


class Health:
    overruns = 0

    def offline(self, s, errno):
        pass


s = Stream(0, "x", "fake", Chip, PERIOD, BATCH, {}, b"\x01\x02\x03\x04")
s.attach(Out(), Health())
s.bind(Chip())
s.chip.online = True
s.begin(0)  # first deadline at PERIOD

# stalls (in periods late when the loop comes back) at given slot numbers of the axis
STALLS = {3: 2.3, 9: 1.0, 14: 2.5, 21: 13.7, 40: 5.0, 55: 7.2}
slot = 0
out = s.frame.out
while len(out.frames) < 20:
    late = int(STALLS.get(slot, 0) * PERIOD)
    now = s.due + late
    s.sample(now, late)
    slot += 1
c = s.counts
built = {"built": c.frames, "dropped": c.dropped, "skipped": c.skipped, "miss_overrun": c.miss_overrun,
         "miss_sensor": c.miss_sensor, "errors": c.errors, "seq": s.frame.seq,
         "overruns": s.health.overruns}
# a batch in progress with marks, then STOP: never built, its marks count nowhere
s.sample(s.due + 2 * PERIOD, 2 * PERIOD)
s.stop()
after_stop = {"built": c.frames, "miss_overrun": c.miss_overrun, "miss_sensor": c.miss_sensor}
print(json.dumps({"frames": out.frames, "counts": built, "after_stop": after_stop}))
s.begin(s.due)


# The same stalls again with the heap locked: the overrun path (marking, emitting, skipping
# whole frames as drops) must allocate nothing, like the rest of the loop.
class QuietOut:
    def __init__(self):
        self.n = 0

    def add_stream(self, sid, frame_bytes):
        pass

    def send_data(self, frame, n, sid):
        self.n += 1
        return self.n & 3 != 0


import micropython
import time

LATES = [int(STALLS.get(k, 0) * PERIOD) for k in range(80)]  # ints, made before the lock


def replay(s, lates, ticks_add):
    for late in lates:
        s.sample(ticks_add(s.due, late), late)


quiet = QuietOut()
s.attach(quiet, s.health)
s.sample(s.due, 0)  # warm: first calls may intern or cache
add = time.ticks_add
c = s.counts
before = (c.frames, c.dropped, c.skipped, c.miss_overrun, c.miss_sensor, c.errors)
s.chip.driver.n = 0  # the failing reads again, under the lock
micropython.heap_lock()
try:
    replay(s, LATES, add)
finally:
    micropython.heap_unlock()
after = (c.frames, c.dropped, c.skipped, c.miss_overrun, c.miss_sensor, c.errors)
print("HEAPLOCK-OK", quiet.n, json.dumps([a - b for a, b in zip(after, before)]))
"""


def test_overruns_keep_the_time_axis_exact_and_every_skip_is_counted():
    code = MP_CODE.replace("@PERIOD@", str(PERIOD)).replace("@BATCH@", str(BATCH))
    out = run_unix(code, path_dirs=[FIRMWARE])
    lines = out.strip().splitlines()
    assert lines[-1].startswith("HEAPLOCK-OK ") and int(lines[-1].split()[1]) > 10, out[-500:]
    # every new counter moved under the lock
    assert all(d > 0 for d in json.loads(lines[-1].split(" ", 2)[2])), lines[-1]
    res = json.loads(lines[-2])
    frames = res["frames"]
    counts = res["counts"]
    assert frames[0]["t0"] == PERIOD and frames[0]["seq"] == 0
    gaps = 0
    for a, b in zip(frames, frames[1:]):
        skipped = b["seq"] - a["seq"] - 1
        assert skipped >= 0
        gaps += skipped
        # the next frame starts where the axis puts it, skipped frames included
        assert b["t0"] - a["t0"] == (skipped + 1) * BATCH * PERIOD, (a, b)
    assert gaps == counts["skipped"] > 0  # the 13.7- and 7.2-period stalls skip whole frames
    # built frames (refused or not) plus skipped ones are the stream's seq
    assert counts["built"] == len(frames) and counts["built"] + counts["skipped"] == counts["seq"]
    assert counts["dropped"] == len(frames) // 4  # only what the output refused
    marked = sum(len(f["missing"]) for f in frames)
    assert marked == counts["miss_overrun"] + counts["miss_sensor"]
    assert counts["miss_sensor"] == counts["errors"] >= 5  # the failed reads (FAIL_AT), all in built frames
    # slots missed = every whole period of every stall; skipped frames hold BATCH of them each
    assert counts["miss_overrun"] + gaps * BATCH == 2 + 1 + 2 + 13 + 5 + 7
    assert counts["overruns"] == 6
    # the marks' causes in each frame's flags: a bitmap comes with its cause(s), never without
    causes = {f["seq"]: f["flags"] & 6 for f in frames if f["missing"]}
    assert all(f["flags"] & 1 == bool(f["missing"]) and (f["flags"] & 6 == 0) == (not f["missing"]) for f in frames)
    assert 2 in causes.values() and 4 in causes.values() and 6 in causes.values(), causes
    # a STOP discards the batch in progress: its two overrun marks were never built
    assert res["after_stop"] == {k: counts[k] for k in ("built", "miss_overrun", "miss_sensor")}
    # the first stall (2.3 periods at slot 3) misses slots 3 and 4, which close frame 0; slot 5,
    # 0.3 periods late, opens frame 1 as a real sample
    assert frames[0]["missing"] == [3, 4] and 0 not in frames[1]["missing"]
