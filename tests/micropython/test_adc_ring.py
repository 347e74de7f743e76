"""The ADC's DMA ring (firmware/adcring.py) on the unix port against a register model of the
RP2040's ADC FIFO and two DMA channels (the ring channel paced by DREQ_ADC, chained to the one
that re-arms it): under seeded random schedules of conversions and reads, every sample read is
the one the converter took at that position (index-coded values, scaled as read_u16 and
big-endian), nothing is read twice or skipped, a reader a whole ring behind is told so by
fifo_count (FIFO_BYTES), a copy the DMA overran and an ADC FIFO overflow are reported by
fifo_overflowed, positions stay monotonic across the re-arm every _COUNT samples, and none of
fifo_count / fifo_read_into / fifo_overflowed allocates (heap_lock).  The failing seed is printed."""
from __future__ import annotations

import pytest

from tests.micropython.mpy_runner import FIRMWARE, run_unix, unix_micropython

pytestmark = [
    pytest.mark.micropython,
    pytest.mark.skipif(unix_micropython() is None, reason="MicroPython unix port not installed"),
]

MP_CODE = r"""
import random
import micropython
import uctypes
from adcring import AdcRing

FIFO = 0x4004C00C
FCS = 0x4004C008
CS = 0x4004C000
DIV = 0x4004C010


class Mem:
    '''ADC registers: CS, FCS (OVER sticky, write-1-clear), FIFO (drained by reads), DIV.'''
    def __init__(self):
        self.r = {CS: 0, FCS: 0, DIV: 0}
        self.over = False

    def __getitem__(self, a):
        if a == FCS:
            return (self.r[FCS] & 0xF) | (0x800 if self.over else 0)
        return self.r.get(a, 0)

    def __setitem__(self, a, v):
        if a == FCS and v & 0x800:
            self.over = False
        self.r[a] = v


class DMA:
    '''rp2.DMA's surface, modelling the chain: _a's count reloads to _COUNT when it reaches 0.'''
    n = 0

    def __init__(self):
        self.channel = DMA.n
        DMA.n += 1
        self.count = 0
        self.buf = None
        self.on = False
        self.mask = 0
        self.w = 0  # next write slot

    def pack_ctrl(self, **kw):
        self.kw = kw
        return kw.get("ring_size", 0)

    def config(self, read=None, write=None, count=None, ctrl=None, trigger=False):
        if read == FIFO:
            self.buf = write
            self.count = count
            self.mask = (1 << ctrl) // 2 - 1
            self.w = 0
        if trigger:
            self.on = True

    def active(self, v):
        self.on = bool(v)

    def close(self):
        pass


class Adc:
    def read_u16(self):
        return 0


def convert(ring, dma, made, n):
    '''The converter takes n samples (values made, made+1, ...: 12-bit, wrapping), the DMA stores
    each in the ring.'''
    b = ring._ring
    for j in range(n):
        v = (made + j) & 0xFFF
        i = dma.w & dma.mask
        b[2 * i] = v & 0xFF
        b[2 * i + 1] = v >> 8
        dma.w += 1
        dma.count -= 1
        if dma.count == 0:
            dma.count = AdcRing.LAP
    return made + n


def u16(v):
    v &= 0xFFF
    return (v << 4) | (v >> 8)


def check(seed):
    random.seed(seed)
    mem = Mem()
    ring = AdcRing(Adc(), 0, 256, DMA, mem, uctypes.addressof)
    size = 128
    ring.configure(4)
    ring.fifo_start()
    a = ring._a
    if mem[CS] & 0x8 == 0 or mem[DIV] != (48 * 4 - 1) << 8 or not a.on:
        return "not started: CS %x DIV %x" % (mem[CS], mem[DIV])
    made = 0  # samples converted since fifo_start
    took = 0  # samples read
    bufs = [bytearray(2 * n) for n in (1, 7, 25, 64, 120)]
    laps = seed & 1  # half the seeds cross a re-arm
    if laps:  # the channel near its re-arm: as if _COUNT - 40 samples were converted and read
        a.count = 40
        ring._last = 40
        made = took = ring._read = a.w = AdcRing.LAP - 40
    for step in range(300):
        made = convert(ring, a, made, random.getrandbits(5))
        buf = bufs[random.getrandbits(8) % len(bufs)]
        n = len(buf) // 2
        micropython.heap_lock()
        try:
            c = ring.fifo_count()
            if c < 2 * size and c >= 2 * n:
                ring.fifo_read_into(buf)
                over = ring.fifo_overflowed()
            else:
                over = None
        finally:
            micropython.heap_unlock()
        waiting = made - took
        want = 2 * waiting if waiting < size else 2 * size
        if c != want:
            return "step %d: fifo_count %d, %d samples waiting (ring %d)" % (step, c, waiting, size)
        if c >= 2 * size:  # lapped: the burst reader restarts the FIFO, in the hot loop
            micropython.heap_lock()
            try:
                ring.fifo_start()
            finally:
                micropython.heap_unlock()
            made = took = 0
            continue
        if over is None:
            continue
        if over:
            return "step %d: overflow reported with %d waiting" % (step, waiting)
        for k in range(n):
            got = (buf[2 * k] << 8) | buf[2 * k + 1]
            if got != u16(took + k):
                return "step %d: sample %d read %d, converted %d" % (step, took + k, got, u16(took + k))
        took += n
    # a copy the DMA overran: the reader's oldest sample rewritten before the look
    made = convert(ring, a, made, 10)
    ring.fifo_read_into(bufs[1])
    made = convert(ring, a, made, size)
    if not ring.fifo_overflowed():
        return "a lapped copy was not reported"
    ring.fifo_start()
    mem.over = True
    if not ring.fifo_overflowed() or mem.over:
        return "an ADC FIFO overflow was not reported and cleared"
    ring.fifo_stop()
    if mem[CS] & 0x8 or a.on or ring.fifo_count():
        return "not stopped"
    return None


bad = 0
for seed in range(40):
    e = check(seed)
    if e:
        print("FAIL seed %d: %s" % (seed, e))
        bad += 1
print("DONE", bad)
"""


def test_adc_ring_reads_every_sample_in_order_and_reports_losses_without_allocating():
    out = run_unix(MP_CODE, path_dirs=[FIRMWARE])
    assert "DONE 0" in out, out
