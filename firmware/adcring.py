"""The RP2040's ADC sampling on its own clock into a DMA ring: a FIFO as deep as the ring.

``read_u16()`` costs a Python call, a conversion wait and a store per sample: at tens of
kilosamples a second that is the whole CPU.  The RP2040's ADC can instead convert free-running
(CS.START_MANY) at 48 MHz / (DIV + 1), push each result into its 4-deep FIFO, and a DMA channel
paced by the ADC's DREQ moves every result into a RAM ring without the CPU.  The firmware then
reads a whole frame of samples from the ring at once, as it reads the MPU-6050's FIFO
(firmware/burst.py): ``sensors.analog.Analog`` with ``sample_us`` hands this object's
``fifo_*`` methods to the burst reader.

Positions are counted, never guessed from the write pointer: the channel's TRANS_COUNT falls by
one per sample from ``_COUNT``, so ``written()`` is every sample since ``fifo_start`` (a second
channel, chained, re-arms the first with ``_COUNT`` when it reaches 0: every ~2^30 samples, 36
minutes at 500 kHz; when ``written`` sees the count go up it moves the read position back by a
lap instead of counting laps, so every position stays a small int on a 32-bit port).  ``fifo_count`` is written
minus read, so a reader that fell a whole ring behind is told it overflowed (FIFO_BYTES), and
``fifo_overflowed`` says whether the DMA lapped the samples a read just took, or the ADC's own
FIFO overflowed (the DMA was held off): samples lost, counted by the burst reader, never shifted.

Samples are stored as ``read_u16()`` would return them (the 12-bit result scaled to 16 bits,
``raw << 4 | raw >> 8``) and big-endian, the analog stream's ">H": the host cannot tell a burst
frame from a sample-by-sample one.

The bus is injected (``dma``: ``rp2.DMA``; ``mem32``: ``machine.mem32``), so a test runs this
file on the unix port against a register model.  The ring is 2**k bytes aligned to its size (the
DMA wraps the write address by masking), cut from a buffer twice that size.  Allocation:
``__init__`` only; ``fifo_*`` and ``written`` allocate nothing (every value computed at run time
stays a small int; register addresses above 2**30 are constants, built at import).
"""

import micropython
from micropython import const

_CS = const(0x4004C000)
_FCS = const(0x4004C008)
_FIFO = const(0x4004C00C)
_DIV = const(0x4004C010)
_CS_EN = const(0x1)
_CS_START_MANY = const(0x8)
_CS_AINSEL_SHIFT = const(12)
_FCS_EN = const(0x1)
_FCS_DREQ_EN = const(0x8)
_FCS_UNDER = const(0x400)
_FCS_OVER = const(0x800)
_FCS_THRESH_1 = const(0x1000000)
_DMA_BASE = const(0x50000000)
_DMA_CH_STRIDE = const(0x40)
_AL1_TRANS_COUNT_TRIG = const(0x1C)
_DREQ_ADC = const(36)
_TREQ_PERMANENT = const(0x3F)
_ADC_CLOCK_MHZ = const(48)
_MIN_SAMPLE_US = const(2)  # 96 ADC clocks: the converter's own conversion time
_MAX_SAMPLE_US = const(1365)  # DIV's 16-bit integer part
# samples per lap: a small int on a 32-bit port (no allocation), and a multiple of every ring's
# samples, so rebasing positions by it keeps each sample's slot
_COUNT = const(0x3FFF8000)
_DRAIN = const(8)  # FIFO reads that empty the ADC's 4-deep FIFO


class AdcRing:
    MIN_SAMPLE_US = _MIN_SAMPLE_US
    MAX_SAMPLE_US = _MAX_SAMPLE_US
    LAP = _COUNT  # samples between re-arms

    def __init__(self, adc, channel, ring_bytes, dma, mem32, addressof):
        """`adc`: the ``machine.ADC`` of the pin (configures the pad; its ``read_u16`` is the
        per-sample fallback); `channel`: 0..3 (GPIO26..29); `ring_bytes`: a power of two,
        64..32768; `dma`: the ``rp2.DMA`` class; `mem32`: ``machine.mem32``; `addressof`:
        ``uctypes.addressof``."""
        if not isinstance(ring_bytes, int) or ring_bytes < 64 or ring_bytes > 32768 or ring_bytes & (ring_bytes - 1):
            raise ValueError("dma_ring_bytes must be a power of two in 64..32768")
        if not isinstance(channel, int) or not 0 <= channel <= 3:
            raise ValueError("ADC channel must be 0..3 (GPIO26..29)")
        self.read_u16 = adc.read_u16
        self.ring_bytes = ring_bytes
        self._mem = mem32
        self._channel = channel
        raw = bytearray(2 * ring_bytes)
        skip = -addressof(raw) & (ring_bytes - 1)
        self._ring = memoryview(raw)[skip:skip + ring_bytes]
        self._mask = ring_bytes // 2 - 1  # sample index -> ring slot
        self._size = ring_bytes // 2  # samples the ring holds
        self._a = dma()  # ADC FIFO -> ring, paced by DREQ_ADC
        self._b = dma()  # re-arms _a when its count runs out
        self._reload = bytearray(4)  # _COUNT, little-endian: _b's source word
        for i in range(4):
            self._reload[i] = (_COUNT >> (8 * i)) & 0xFF
        k = 0
        while 1 << k < ring_bytes:
            k += 1
        self._ctrl = self._a.pack_ctrl(size=1, inc_read=False, inc_write=True, ring_size=k, ring_sel=True,
                                       treq_sel=_DREQ_ADC, chain_to=self._b.channel, irq_quiet=True)
        self._ctrl_b = self._b.pack_ctrl(size=2, inc_read=False, inc_write=False, treq_sel=_TREQ_PERMANENT,
                                         chain_to=self._b.channel, irq_quiet=True)
        # _a's TRANS_COUNT trigger alias: computed once, as an address above 2**30 is a big int on
        # a 32-bit port (fifo_start runs under heap_lock, on an overflow)
        self._rearm = _DMA_BASE + _DMA_CH_STRIDE * self._a.channel + _AL1_TRANS_COUNT_TRIG
        self.sample_us = 0
        self._last = _COUNT  # _a.count at the last look
        self._read = 0  # samples read since fifo_start
        self._first = 0  # the first sample the last read took
        self._running = False

    def configure(self, sample_us):
        """The conversion period in us (2..1365): 48 MHz / (DIV + 1) with an integer DIV, so the
        ADC's clock is the same crystal's as ticks_us and a period is exact."""
        if not isinstance(sample_us, int) or not _MIN_SAMPLE_US <= sample_us <= _MAX_SAMPLE_US:
            raise ValueError("sample_us must be an int in %d..%d" % (_MIN_SAMPLE_US, _MAX_SAMPLE_US))
        self.sample_us = sample_us

    def fifo_start(self):
        """Stop, empty the ADC's FIFO, restart conversions and the DMA at the ring's start."""
        self.fifo_stop()
        m = self._mem
        m[_DIV] = (_ADC_CLOCK_MHZ * self.sample_us - 1) << 8
        m[_FCS] = _FCS_EN | _FCS_DREQ_EN | _FCS_THRESH_1 | _FCS_UNDER | _FCS_OVER  # OVER/UNDER write-clear
        self._b.config(read=self._reload, write=self._rearm, count=1, ctrl=self._ctrl_b)
        self._a.config(read=_FIFO, write=self._ring, count=_COUNT, ctrl=self._ctrl, trigger=True)
        self._last = _COUNT
        self._read = 0
        self._first = 0
        m[_CS] = _CS_EN | (self._channel << _CS_AINSEL_SHIFT) | _CS_START_MANY
        self._running = True

    def fifo_stop(self):
        """Conversions off, both channels off, the ADC's FIFO emptied and back to plain reads."""
        m = self._mem
        m[_CS] = _CS_EN | (self._channel << _CS_AINSEL_SHIFT)
        self._a.active(0)
        self._b.active(0)
        m[_FCS] = _FCS_UNDER | _FCS_OVER
        for _ in range(_DRAIN):
            m[_FIFO]
        m[_FCS] = _FCS_UNDER | _FCS_OVER
        self._running = False

    def close(self):
        self.fifo_stop()
        self._a.close()
        self._b.close()

    def written(self):
        """Samples the DMA has stored since fifo_start or the last re-arm (0 when stopped)."""
        if not self._running:
            return 0
        c = self._a.count
        if c > self._last:  # _b re-armed _a since the last look: positions move back a lap
            self._read -= _COUNT
            self._first -= _COUNT
        self._last = c
        return _COUNT - c

    def fifo_count(self):
        """Bytes waiting: 2 a sample; the whole ring's size once the DMA has lapped the reader."""
        n = self.written() - self._read
        return 2 * n if n < self._size else 2 * self._size

    def fifo_read_into(self, buf):
        """The oldest len(buf) // 2 samples, as read_u16() values, big-endian; never more than
        fifo_count() says are there."""
        n = len(buf) >> 1
        self._first = self._read
        _copy(self._ring, buf, self._read & self._mask, n, self._mask)
        self._read += n

    def fifo_overflowed(self):
        """Whether samples were lost since the last look: the DMA lapped what was just read (it
        wrote over it during the copy), or the ADC's FIFO overflowed (write-clear)."""
        lapped = self.written() - self._first > self._size  # the oldest sample read was overwritten
        m = self._mem
        if m[_FCS] & _FCS_OVER:
            m[_FCS] = _FCS_EN | _FCS_DREQ_EN | _FCS_THRESH_1 | _FCS_OVER
            return True
        return lapped


@micropython.viper
def _copy(ring, buf, i: int, n: int, mask: int):
    """buf[2k:2k+2] = read_u16 of ring sample (i + k) & mask, big-endian, for k < n."""
    src = ptr16(ring)  # noqa: F821 (viper built-in)
    dst = ptr8(buf)  # noqa: F821
    k = 0
    while k < n:
        raw = src[(i + k) & mask] & 0xFFF
        v = (raw << 4) | (raw >> 8)
        dst[2 * k] = v >> 8
        dst[2 * k + 1] = v & 0xFF
        k += 1
