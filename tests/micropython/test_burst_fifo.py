"""Burst reads from a chip's FIFO keep every sample attributed: the firmware's own Stream, on the
unix port, reads a fake FIFO whose samples carry their index (the chip takes sample k one period
after sample k-1, from its last restart), and each frame must hold, slot by slot, the sample the
schedule puts there or a missing mark with its cause: a late read leaves the next frame's samples
in the FIFO, a chip running fast has its extra oldest samples dropped (counted), a short FIFO
waits for the chip (its phase) up to WAIT periods and only then marks the last slots SENSOR, an
overflow sends the frame all OVERRUN, skips the frames that ended before the restart and marks
the next frame's slots due before it, a failed read or an offline chip sends the frame SENSOR
and restarts the FIFO, slots due while a slow restart ran are OVERRUN; one transaction per full
frame; and all of it allocation-free under heap_lock."""
from __future__ import annotations

import json

import pytest

from tests.micropython.mpy_runner import FIRMWARE, run_unix, unix_micropython

pytestmark = [
    pytest.mark.micropython,
    pytest.mark.skipif(unix_micropython() is None, reason="MicroPython unix port not installed"),
]

MP_CODE = r"""
import json, struct
import micropython
import wire
from stream import Stream

P = 1000
B = 10
SS = 4
ERR = OSError(5)


class Fifo:
    KIND = "fake"
    SAMPLE_SIZE = 4
    MIN_PERIOD_US = 100
    FREE_RUNNING = True
    FIFO_BYTES = 1024
    FIFO_PERIOD_US = P

    def __init__(self):
        self.made = 0  # samples the chip took (their indices: 0, 1, ...)
        self.head = 0  # index of the oldest sample in the FIFO
        self.override = -1  # a count to report instead (overflow)
        self.starts = 0
        self.fail = False
        self.reads = 0

    def read_into(self, buf):
        raise ERR

    def start(self):
        pass

    def fifo_start(self):
        self.starts += 1
        self.head = self.made

    def fifo_overflowed(self):
        return False

    def fifo_count(self):
        if self.fail:
            raise ERR
        if self.override >= 0:
            return self.override
        return (self.made - self.head) * SS

    def fifo_read_into(self, buf):
        self.reads += 1
        for j in range(len(buf) // SS):
            v = self.head + j
            buf[j * SS] = (v >> 8) & 0xFF
            buf[j * SS + 1] = v & 0xFF
        self.head += len(buf) // SS


class Out:
    def __init__(self):
        self.frames = []

    def add_stream(self, sid, frame_bytes):
        pass

    def send_data(self, frame, n, sid):
        h = struct.unpack_from(wire.HEADER_FMT, frame, 0)
        flags, seq, t0, count = h[3], h[5], h[6], h[8]
        bm = wire.bitmap_offset(count, SS)
        miss = [i for i in range(count) if flags & wire.FLAG_MISSING and frame[bm + (i >> 3)] >> (i & 7) & 1]
        idx = [frame[wire.HEADER_SIZE + i * SS] << 8 | frame[wire.HEADER_SIZE + i * SS + 1] for i in range(count)]
        self.frames.append({"seq": seq, "t0": t0, "missing": miss, "flags": flags,
                            "idx": [-1 if i in miss else idx[i] for i in range(count)]})
        return True


class QuietOut:  # few locals: a bytecode frame this small lives on the C stack, not the heap
    def __init__(self):
        self.n = 0

    def add_stream(self, sid, frame_bytes):
        pass

    def send_data(self, frame, n, sid):
        self.n += 1
        return True


class Health:
    overruns = 0

    def offline(self, s, errno):
        pass


CLK = [0, 0]  # the burst's clock: the pass's now30, and how long a FIFO restart takes (us)


def clock():
    return (CLK[0] + CLK[1]) & 0x3FFFFFFF


@micropython.native
def when(s, late):  # a pass `late` us after the frame's last deadline, not before the row's DUE
    now = (s.t0 + (B - 1) * P + late) & 0x3FFFFFFF
    if ((s.due - now + 0x20000000) & 0x3FFFFFFF) - 0x20000000 > 0:
        now = s.due
    CLK[0] = now
    return now


def frame(s, chip, made, late=0, override=-1, fail=False, online=True):
    chip.made += made
    chip.override = override
    chip.fail = fail
    s.chip.online = online
    s.sample(when(s, late), 0)
    chip.override = -1
    chip.fail = False
    s.chip.online = True


def script(s, chip):
    s.fifo.lag = 0                  # what waiting taught (below) starts afresh: each run the same
    frame(s, chip, 10)              # 0: samples 0..9
    frame(s, chip, 13, late=3000)   # 1: 10..19, three taken since its end stay
    frame(s, chip, 7)               # 2: 20..29
    frame(s, chip, 12)              # 3: the chip ran 1 fast: 30 dropped, 31..40
    frame(s, chip, 9)               # 4: 41..50
    frame(s, chip, 9)               # 5: one short at its end: it waits (no frame yet) ...
    frame(s, chip, 1, late=500)     #    ... for the chip's phase: 51..60
    frame(s, chip, 8)               # 6: short, waits ...
    frame(s, chip, 0, late=2000)    #    ... WAIT periods: 61..68, slots 8 and 9 SENSOR
    frame(s, chip, 0, late=25000, override=1024)  # 7: overflow, frames 8 and 9 skipped
    frame(s, chip, 5)               # 10: slots 0..4 due before the restart, then 5 samples
    frame(s, chip, 10, fail=True)   # 11: the count read fails: SENSOR, FIFO restarted at its end
    frame(s, chip, 10)              # 12: the 10 samples since that restart
    frame(s, chip, 10)              # 13: 10 more
    frame(s, chip, 10, online=False)  # 14: offline: SENSOR
    frame(s, chip, 10)              # 15: restarted: SENSOR
    frame(s, chip, 10)              # 16: normal again
    CLK[1] = 2500                   # the next restart takes 2.5 periods
    frame(s, chip, 10, fail=True)   # 17: SENSOR, FIFO restarted at its end
    CLK[1] = 0
    frame(s, chip, 9)               # 18: slots 0..2 due while it ran: OVERRUN; of the 9 samples
    #                                 since, 2 taken while it ran: the oldest dropped, 7 read
    frame(s, chip, 10)              # 19: the one left and 9 more


chip = Fifo()
s = Stream(0, "x", "fake", Fifo, P, B, {}, b"\x01\x02\x03\x04")
out = Out()
s.attach(out, Health())
s.bind(chip)
s.fifo.clock = clock
s.chip.online = True
s.begin(0)
r0 = chip.reads
frame(s, chip, 10)
one = chip.reads - r0
CLK[0] = s.due
s.begin(s.due)
chip.made = chip.head = 0
out.frames = []
s.frame.seq = 0
c = s.counts
c.frames = c.skipped = c.miss_overrun = c.miss_sensor = c.errors = 0
script(s, chip)
s2 = Stream(1, "y", "fake", Fifo, P, B, {}, b"\x01\x02\x03\x04")  # a second stream of the chip
s2.bind(Fifo())
print(json.dumps({"frames": out.frames, "one_frame_reads": one, "burst": s.burst, "second": s2.fifo is None,
                  "counts": [c.frames, c.skipped, c.miss_overrun, c.miss_sensor, c.errors],
                  "overruns": s.health.overruns, "surplus": s.fifo.surplus, "starts": chip.starts}))

quiet = QuietOut()
s.attach(quiet, s.health)
frame(s, chip, 10)  # warm: first calls may intern or cache
before = (c.frames, c.skipped, c.miss_overrun, c.miss_sensor, c.errors)
def three():  # a loop variable at module level would be a new global (dict growth) under the lock
    for _ in range(3):
        script(s, chip)


micropython.heap_lock()
try:
    three()
finally:
    micropython.heap_unlock()
after = (c.frames, c.skipped, c.miss_overrun, c.miss_sensor, c.errors)
print("HEAPLOCK-OK", quiet.n, json.dumps([a - b for a, b in zip(after, before)]))
"""


def test_burst_reads_attribute_every_sample_and_allocate_nothing():
    out = run_unix(MP_CODE, path_dirs=[FIRMWARE])
    lines = out.strip().splitlines()
    assert lines[-1].startswith("HEAPLOCK-OK ") and int(lines[-1].split()[1]) == 1 + 3 * 18, out[-800:]
    res = json.loads(lines[-2])
    assert res["one_frame_reads"] == 1 and res["burst"]  # a full frame: one burst read
    assert res["second"] is True  # one FIFO, one reader: a second stream of the chip reads registers
    f = res["frames"]
    assert [x["seq"] for x in f] == [0, 1, 2, 3, 4, 5, 6, 7, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]
    for a, b in zip(f, f[1:]):
        assert b["t0"] - a["t0"] == (b["seq"] - a["seq"]) * 10 * 1000
    rng = lambda a, b: list(range(a, b))  # noqa: E731
    assert [x["idx"] for x in f[:5]] == [rng(0, 10), rng(10, 20), rng(20, 30), rng(31, 41), rng(41, 51)]
    # one short at the deadline, the chip's next sample a look later: a whole frame, no mark
    assert f[5]["idx"] == rng(51, 61) and f[5]["flags"] == 0
    assert f[6]["idx"] == rng(61, 69) + [-1, -1] and f[6]["flags"] & 6 == 4  # still short: SENSOR
    assert f[7]["missing"] == rng(0, 10) and f[7]["flags"] & 6 == 2  # overflow: OVERRUN
    # frame 10: the restart came 4 periods after its first deadline: slots 0..4 (OVERRUN), then
    # the 5 samples the chip took since the restart
    assert f[8]["missing"] == rng(0, 5) and f[8]["flags"] & 6 == 2 and f[8]["idx"][5:] == rng(69, 74)
    assert f[9]["flags"] & 6 == 4 and f[9]["missing"] == rng(0, 10)  # the failed read
    # the FIFO restarted as frame 12 began: the 10 samples the chip took at frame 11's end are gone
    assert f[10]["idx"] == rng(84, 94) and f[11]["idx"] == rng(94, 104)
    assert [len(x["missing"]) for x in f[12:14]] == [10, 10] and f[14]["missing"] == []
    # a restart that took 2.5 periods: the slots due while it ran are OVERRUN, not SENSOR; the
    # oldest sample taken while it ran is dropped, the other one is the next frame's first
    assert f[15]["flags"] & 6 == 4 and f[15]["missing"] == rng(0, 10)
    assert f[16]["missing"] == [0, 1, 2] and f[16]["flags"] & 6 == 2 and f[16]["idx"][3:] == rng(145, 152)
    assert f[17]["idx"] == rng(152, 162)
    built, skipped, m_over, m_sens, errors = res["counts"]
    assert built == 18 and skipped == 2 and errors == 2
    assert m_over == 10 + 5 + 3 and m_sens == 2 + 10 + 10 + 10 + 10
    assert sum(len(x["missing"]) for x in f) == m_over + m_sens
    assert res["overruns"] == 1 and res["surplus"] == 2
    # under the lock: the same script three times, every counter moving
    assert json.loads(lines[-1].split(" ", 2)[2]) == [54, 6, 54, 126, 6]
