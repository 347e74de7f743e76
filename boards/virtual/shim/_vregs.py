"""Register models of the RP2040's ADC and DMA blocks for the virtual board (rp2040 profile).

Firmware that drives the ADC free-running into a DMA ring (firmware/adcring.py, or any community
code doing the same through `machine.mem32` and `rp2.DMA`) talks to these registers only, so it
runs unchanged here and on a Pico.  Nothing runs in the background: the hardware's progress is
computed when software looks (a register read, `DMA.count`), from the time since CS.START_MANY.
Conversion k of a free-running run completes (k + 1) periods after the start, a period being
(1 + DIV.INT + DIV.FRAC / 256) cycles of the ADC's 48 MHz clock (at least 96), the datasheet's
4.9.2.  The values are the runner's (host/sensors/analog.py at the board time of each
conversion), asked for a block at a time ahead of need (OP_ADC_START pins the run's start on the
runner's board clock, OP_ADC_BLOCK returns codes by conversion index), so a 500 kS/s stream costs
one IPC round trip per `_PRE` samples, not one per sample.

Modelled: ADC CS (EN, START_ONCE, START_MANY, AINSEL, READY), RESULT, FCS (EN, SHIFT, DREQ_EN,
THRESH, LEVEL, UNDER, OVER; the 4-deep FIFO), FIFO, DIV; DMA channels 0..11 (READ_ADDR,
WRITE_ADDR, TRANS_COUNT, CTRL_TRIG and the three alias groups, with the datasheet's null-trigger
rule), MULTI_CHAN_TRIGGER, CHAN_ABORT, N_CHANNELS.  A channel paced by DREQ_ADC moves conversions
from the FIFO as they complete; an unpaced one (TREQ 0x3F) runs to the end at once when triggered;
`chain_to` triggers the next.  Writes wrap at RING_SIZE on the side RING_SEL picks.  Other DREQs,
bswap, sniff and IRQs are not modelled: triggering such a channel raises NotImplementedError.
Addresses above 4 GiB are this process's own memory (a buffer's `uctypes.addressof`), as a
buffer's address is a RAM address on the board; other 32-bit addresses raise ValueError.

Allocation: every path a running firmware takes (register reads and writes, triggers, transfers,
the block fetch) allocates nothing, so a hot loop under `micropython.heap_lock()` stays honest.
"""
import os
import time

import micropython
from micropython import const

from _vipc import ESP32, OP_ADC, OP_ADC_BLOCK, OP_ADC_START, done, inb, put_u32, reply, send, status

if ESP32:
    raise ImportError("no module named 'rp2'")  # the esp32 port has no RP2040 DMA or ADC FIFO

_INSTANT = os.getenv("PAGERLESS_VB_BUS") == "instant"

ADC_BASE = const(0x4004C000)
_ADC_END = const(0x4004C024)
_CS = const(0x0)
_RESULT = const(0x4)
_FCS = const(0x8)
_FIFO = const(0xC)
_DIV = const(0x10)
_INTR = const(0x14)
_CS_EN = const(0x1)
_CS_START_ONCE = const(0x4)
_CS_START_MANY = const(0x8)
_CS_READY = const(0x100)
_FCS_SHIFT = const(0x2)
_FCS_UNDER = const(0x400)
_FCS_OVER = const(0x800)
_FCS_W1C = const(0xC00)
_DEPTH = const(4)
_MIN_CYCLES = const(96)
DREQ_ADC = const(36)
_TREQ_PERMANENT = const(0x3F)

DMA_BASE = const(0x50000000)
_DMA_END = const(0x50000AD0)
CHANNELS = const(12)
_STRIDE = const(0x40)
_MULTI_CHAN_TRIGGER = const(0x430)
_CHAN_ABORT = const(0x444)
_N_CHANNELS = const(0x448)
_EN = const(0x1)
_BUSY = const(0x1000000)
_PRE = const(2048)  # conversions fetched from the runner per IPC round trip
_RAW = const(0x100000000)  # addresses from here up are this process's memory
# each channel's 16 registers: 0 READ_ADDR, 1 WRITE_ADDR, 2 TRANS_COUNT, 3 CTRL, in the order of
# the datasheet's alias groups (2.5.7: CTRL_TRIG, AL1_..._TRANS_COUNT_TRIG, AL2_..._WRITE_ADDR_TRIG,
# AL3_..._READ_ADDR_TRIG)
_FIELD = b"\x00\x01\x02\x03\x03\x00\x01\x02\x03\x02\x00\x01\x03\x01\x02\x00"


@micropython.viper
def _load(addr: int, size: int) -> int:
    if size == 0:
        return int(ptr8(addr)[0])  # noqa: F821 (viper built-ins)
    if size == 1:
        return int(ptr16(addr)[0])  # noqa: F821
    return int(ptr32(addr)[0])  # noqa: F821


@micropython.viper
def _store(addr: int, size: int, v: int):
    if size == 0:
        ptr8(addr)[0] = v  # noqa: F821
    elif size == 1:
        ptr16(addr)[0] = v  # noqa: F821
    else:
        ptr32(addr)[0] = v  # noqa: F821


@micropython.viper
def _fill(pre, i: int, n: int, addr: int, step: int, base: int, mask: int, size: int, shift: int):
    """Store conversions pre[i:i+n] (12-bit codes, u16) at addr, addr+step, ... wrapped to
    base | (a & mask); 8-bit transfers take the top 8 bits when FCS.SHIFT is set."""
    src = ptr16(pre)  # noqa: F821
    k = 0
    while k < n:
        v = src[i + k]
        if shift:
            v = v >> 4
        a = base | (addr & mask)
        if size == 0:
            ptr8(a)[0] = v  # noqa: F821
        elif size == 1:
            ptr16(a)[0] = v  # noqa: F821
        else:
            ptr32(a)[0] = v  # noqa: F821
        addr += step
        k += 1


class Adc:
    """The ADC block: one-shot conversions, the free-running run and its FIFO."""

    def __init__(self):
        self.cs = 0
        self.fcs = 0
        self.div = 0
        self.result = 0
        self.over = False
        self.under = False
        self.running = False
        self.pin = 26
        self.tick = 0  # ticks_us at the last look
        self.us = 0  # us since START_MANY (accumulated from ticks_diff, so no wrap)
        self.made = 0  # conversions completed since START_MANY
        self.fifo = [0] * _DEPTH  # codes waiting in the FIFO (the oldest at fifo_head)
        self.fifo_head = 0
        self.fifo_n = 0
        self.period_q = 256 * _MIN_CYCLES  # period in 1/256 ADC cycles
        self.pre = None  # codes of conversions pre_k .. pre_k + pre_n - 1 (made at first use: 4 KB)
        self.pre_k = 0
        self.pre_n = 0
        self.dma = None  # the Dma block, for DREQ_ADC

    def ready(self):
        """Make the block buffer: when a DMA channel is claimed, never in a locked hot loop."""
        if self.pre is None:
            self.pre = bytearray(2 * _PRE)

    # -- the runner's values
    def _fetch(self, k):
        """Codes of conversions k .. k + _PRE - 1 into `pre` (one IPC round trip). The bench's
        instant bus fetches once and keeps the block for every later window, as its other
        reads do (the shim's cost of a round trip is the runner's, not the firmware's)."""
        if _INSTANT and self.pre_n:
            self.pre_k = k
            return
        if self.pre is None:
            self.ready()
        put_u32(8, k & 0xFFFFFFFF)
        put_u32(12, k >> 32)
        send(OP_ADC_BLOCK, 0, self.pin, 0, _PRE, 8, 8)
        r = status(self.pre, 2 * _PRE)
        if r >> 16 or r & 0xFFFF != 2 * _PRE:
            done()
            raise OSError(5)
        self.pre_k = k
        self.pre_n = _PRE

    def at(self, k):
        """Index into `pre` of conversion k, fetching its block when it is not there."""
        if k < self.pre_k or k >= self.pre_k + self.pre_n:
            self._fetch(k)
        return k - self.pre_k

    def code(self, k):
        i = self.at(k)
        p = self.pre
        return p[2 * i] | p[2 * i + 1] << 8

    # -- time
    def advance(self):
        """Bring the run up to now: completed conversions go to the DMA (DREQ_ADC) or the FIFO."""
        now = time.ticks_us()
        d = time.ticks_diff(now, self.tick)
        self.tick = now
        if not self.running or d <= 0:
            return
        self.us += d
        total = self.us * 12288 // self.period_q  # 48 cycles a us, in 1/256 cycle
        n = total - self.made
        if n <= 0:
            return
        first = self.made
        self.made = total
        if self.fifo_n == 0 and self.dma is not None and self.fcs & 0x8:
            taken = self.dma.dreq_adc(self, first, n)
            first += taken
            n -= taken
        if n > 0:  # the rest wait in the FIFO; past 4 deep, OVER and they are lost
            self.result = self.code(first + n - 1)
            if self.fcs & 0x1:
                if n > _DEPTH - self.fifo_n:
                    self.over = True
                    n = _DEPTH - self.fifo_n
                while n > 0:
                    self.push(self.code(first))
                    first += 1
                    n -= 1

    def push(self, code):
        """A result into the FIFO; a full FIFO drops it and sets OVER."""
        if self.fifo_n == _DEPTH:
            self.over = True
            return
        self.fifo[(self.fifo_head + self.fifo_n) % _DEPTH] = code
        self.fifo_n += 1

    def start(self, cs):
        was = self.running
        self.cs = cs
        self.pin = 26 + ((cs >> 12) & 0x7)
        self.running = bool(cs & _CS_START_MANY and cs & _CS_EN)
        if self.running and not was:
            i = self.div >> 8 & 0xFFFF
            f = self.div & 0xFF
            q = 256 * (i + 1) + f if i else 0
            self.period_q = q if q > 256 * _MIN_CYCLES else 256 * _MIN_CYCLES
            self.tick = time.ticks_us()
            self.us = 0
            self.made = 0
            self.pre_n = 0
            put_u32(8, self.period_q)
            send(OP_ADC_START, 0, self.pin, 0, 0, 4, 4)
            done()
        elif was and not self.running:
            put_u32(8, 0)
            send(OP_ADC_START, 0, self.pin, 0, 0, 4, 4)
            done()
        if cs & _CS_START_ONCE and cs & _CS_EN and not self.running:  # one conversion, now
            send(OP_ADC, 0, self.pin, 0, 0, 2, 0)
            reply(None, 0, True)
            self.result = (inb[0] | inb[1] << 8) >> 4
            done()
            if self.fcs & 0x1:
                self.push(self.result)

    def pop(self):
        """One FIFO read: the oldest conversion's code; UNDER when empty."""
        self.advance()
        if self.fifo_n == 0:
            self.under = True
            return 0
        v = self.fifo[self.fifo_head]
        self.fifo_head = (self.fifo_head + 1) % _DEPTH
        self.fifo_n -= 1
        return v >> 4 if self.fcs & _FCS_SHIFT else v

    def read(self, off):
        self.advance()
        if off == _CS:
            return self.cs & ~_CS_START_ONCE | _CS_READY
        if off == _RESULT:
            return self.result
        if off == _FCS:
            lvl = self.fifo_n << 16
            return (self.fcs & 0x0F00000F) | lvl | (_FCS_OVER if self.over else 0) | (_FCS_UNDER if self.under else 0) \
                | (0x100 if self.fifo_n == 0 else 0) | (0x200 if self.fifo_n == _DEPTH else 0)
        if off == _FIFO:
            return self.pop()
        if off == _DIV:
            return self.div
        if off == _INTR:
            return 1 if self.fifo_n >= (self.fcs >> 24 & 0xF) and self.fifo_n else 0
        return 0

    def write(self, off, v):
        self.advance()
        if off == _CS:
            self.start(v)
        elif off == _FCS:
            if v & _FCS_OVER:
                self.over = False
            if v & _FCS_UNDER:
                self.under = False
            self.fcs = v & ~_FCS_W1C
            if self.fcs & 0x8 and self.fifo_n and self.dma is not None:
                self.dma.drain_fifo(self)
        elif off == _DIV:
            self.div = v & 0xFFFFFF


class Channel:
    """One DMA channel's registers and progress."""

    def __init__(self, n):
        self.n = n
        self.read = 0
        self.write = 0
        self.count = 0  # the live transfer counter
        self.reload = 0  # TRANS_COUNT as written: loaded at each trigger
        self.ctrl = n << 11  # chain_to itself: no chain
        self.busy = False
        self.claimed = False

    def size(self):
        return self.ctrl >> 2 & 0x3

    def treq(self):
        return self.ctrl >> 15 & 0x3F


class Dma:
    """The DMA block: 12 channels, triggers, chains, unpaced and DREQ_ADC-paced transfers."""

    def __init__(self, adc):
        self.ch = [Channel(i) for i in range(CHANNELS)]
        self.adc = adc
        adc.dma = self
        self._depth = 0  # chain recursion guard
        self._pc = None  # the paced channel last found

    # -- registers
    def read_reg(self, off):
        self.adc.advance()
        if off == _N_CHANNELS:
            return CHANNELS
        if off >= CHANNELS * _STRIDE:
            return 0
        c = self.ch[off // _STRIDE]
        f = _FIELD[(off % _STRIDE) >> 2]
        if f == 0:
            return c.read
        if f == 1:
            return c.write
        if f == 2:
            return c.count
        return c.ctrl | (_BUSY if c.busy else 0)

    def write_reg(self, off, v):
        self.adc.advance()
        if off == _MULTI_CHAN_TRIGGER:
            for c in self.ch:
                if v >> c.n & 1:
                    self.trigger(c)
            return
        if off == _CHAN_ABORT:
            for c in self.ch:
                if v >> c.n & 1:
                    c.busy = False
            return
        if off >= CHANNELS * _STRIDE:
            raise ValueError("virtual board: DMA register 0x%03x is not modelled" % off)
        c = self.ch[off // _STRIDE]
        w = (off % _STRIDE) >> 2
        f = _FIELD[w]
        if f == 0:
            c.read = v
        elif f == 1:
            c.write = v
        elif f == 2:
            c.reload = v
        else:
            c.ctrl = v & 0x00FFFFFF
            if not v & _EN:
                c.busy = False
        if w & 3 == 3 and v:  # the last of each alias group triggers; written with 0, it is a null trigger
            self.trigger(c)

    # -- transfers
    def trigger(self, c):
        if not c.ctrl & _EN:
            return
        c.count = c.reload
        c.busy = True
        t = c.treq()
        if t == _TREQ_PERMANENT:
            self._run(c)
        elif t == DREQ_ADC:
            if self.adc.fifo_n and self.adc.fcs & 0x8:
                self.drain_fifo(self.adc)
        else:
            c.busy = False
            raise NotImplementedError("virtual board: DMA TREQ %d is not modelled (DREQ_ADC and unpaced are)" % t)

    def _complete(self, c):
        c.busy = False
        nxt = c.ctrl >> 11 & 0xF
        if nxt != c.n and self._depth < 16:
            self._depth += 1
            try:
                self.trigger(self.ch[nxt])
            finally:
                self._depth -= 1

    def _addr(self, c, base_addr, inc, k, wrap):
        """The address of transfer k from a start address: incremented, wrapped when `wrap`."""
        step = 1 << c.size()
        a = base_addr + step * k if inc else base_addr
        ring = c.ctrl >> 6 & 0xF
        if wrap and ring:
            m = (1 << ring) - 1
            a = (base_addr & ~m) | (a & m)
        return a

    def _run(self, c):
        """An unpaced channel: every transfer now, register to register, memory or ADC FIFO."""
        size = c.size()
        inc_r = c.ctrl >> 4 & 1
        inc_w = c.ctrl >> 5 & 1
        wsel = c.ctrl >> 10 & 1
        r0 = c.read
        w0 = c.write
        n = c.count
        for k in range(n):
            src = self._addr(c, r0, inc_r, k, not wsel)
            dst = self._addr(c, w0, inc_w, k, wsel)
            c.count -= 1
            write(dst, size, read(src, size))
        c.read = self._addr(c, r0, inc_r, n, not wsel)
        c.write = self._addr(c, w0, inc_w, n, wsel)
        self._complete(c)

    def _paced(self):
        """The busy channel paced by DREQ_ADC reading the ADC's FIFO (the last one found is looked
        at first: a scan of 12 channels on every look was most of the model's cost)."""
        c = self._pc
        if c is not None and c.busy and c.ctrl >> 15 & 0x3F == DREQ_ADC and c.read == ADC_BASE + _FIFO:
            return c
        for c in self.ch:
            if c.busy and c.ctrl >> 15 & 0x3F == DREQ_ADC and c.read == ADC_BASE + _FIFO:
                self._pc = c
                return c
        return None

    def dreq_adc(self, adc, first, n):
        """Conversions first .. first + n - 1 just completed: the paced channel takes them (re-armed
        by its chain as often as that happens). Returns how many it took; the rest go to the FIFO."""
        took = 0
        while n > 0:
            c = self._paced()
            if c is None or c.count == 0:
                break
            k = n if n < c.count else c.count
            self._store_codes(c, adc, first, k)
            c.count -= k
            first += k
            n -= k
            took += k
            if c.count == 0:
                self._complete(c)
        return took

    def drain_fifo(self, adc):
        """DREQ_EN set (or the channel triggered) with conversions waiting: the channel takes them."""
        while adc.fifo_n:
            c = self._paced()
            if c is None or c.count == 0:
                return
            v = adc.pop()
            size = c.size()
            write(self._addr(c, c.write, 1, 0, c.ctrl >> 10 & 1), size, v)
            c.write = self._addr(c, c.write, c.ctrl >> 5 & 1, 1, c.ctrl >> 10 & 1)
            c.count -= 1
            if c.count == 0:
                self._complete(c)

    def _store_codes(self, c, adc, first, k):
        """k conversions from `first` written at c.write on: only the last ring's worth is stored
        when they would lap it (the earlier ones are overwritten on the board too)."""
        size = c.size()
        step = (1 << size) if c.ctrl >> 5 & 1 else 0
        ring = c.ctrl >> 6 & 0xF if c.ctrl >> 10 & 1 else 0
        mask = (1 << ring) - 1 if ring else -1
        base = c.write & ~mask if ring else 0
        shift = size == 0 and adc.fcs & _FCS_SHIFT
        skip = 0
        if ring and step and k * step > mask + 1:
            skip = k - (mask + 1) // step
        addr = c.write + step * skip
        i = first + skip
        left = k - skip
        while left > 0:
            j = adc.at(i)
            m = adc.pre_n - j
            if m > left:
                m = left
            _fill(adc.pre, j, m, addr, step, base, mask, size, shift)
            addr += step * m
            i += m
            left -= m
        c.write = base | (addr & mask) if ring else addr


ADC = Adc()
DMA = Dma(ADC)


def read(addr, size=2):
    """A bus read of 1 << size bytes at addr: a modelled register or this process's memory."""
    if addr >= _RAW:
        return _load(addr, size)
    if ADC_BASE <= addr < _ADC_END:
        return ADC.read(addr - ADC_BASE)
    if DMA_BASE <= addr < _DMA_END:
        return DMA.read_reg(addr - DMA_BASE)
    raise ValueError("virtual board: no register model at 0x%08x (ADC and DMA are modelled)" % addr)


def write(addr, size, v):
    if addr >= _RAW:
        _store(addr, size, v)
    elif ADC_BASE <= addr < _ADC_END:
        ADC.write(addr - ADC_BASE, v)
    elif DMA_BASE <= addr < _DMA_END:
        DMA.write_reg(addr - DMA_BASE, v & 0xFFFFFFFF)
    else:
        raise ValueError("virtual board: no register model at 0x%08x (ADC and DMA are modelled)" % addr)


class Mem:
    """`machine.mem8` / `mem16` / `mem32`: aligned bus reads and writes of 1, 2 or 4 bytes."""

    def __init__(self, size):
        self._size = size

    def __getitem__(self, addr):
        return read(addr, self._size)

    def __setitem__(self, addr, v):
        write(addr, self._size, v)
