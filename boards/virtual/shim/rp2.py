"""`rp2` of the virtual board's rp2040 profile: `rp2.DMA`, over the register model in _vregs.py.

The rp2 port's API (ports/rp2/rp2_dma.c): `DMA()` claims the lowest free of 12 channels
(OSError EBUSY when none is), `config(read=, write=, count=, ctrl=, trigger=)` writes the given
registers (a buffer stands for its address) and triggers with the last one, `pack_ctrl(**fields)`
/ `unpack_ctrl(value)` with the port's defaults and field names, `active([v])`, the `read`,
`write`, `count`, `ctrl` and `channel` attributes, `close()`.  Not here: `irq()`, `registers`,
`DMATimer`, PIO and StateMachine (AttributeError, as for any name a port lacks).  On the esp32
profile `import rp2` fails, as on an ESP32.
"""
import uctypes

from _vregs import DMA as _BLOCK, ADC as _ADC

_FIELDS = (("enable", 0, 1), ("high_pri", 1, 1), ("size", 2, 2), ("inc_read", 4, 1), ("inc_write", 5, 1),
           ("ring_size", 6, 4), ("ring_sel", 10, 1), ("chain_to", 11, 4), ("treq_sel", 15, 6), ("irq_quiet", 21, 1),
           ("bswap", 22, 1), ("sniff_en", 23, 1), ("busy", 24, 1), ("write_err", 29, 1), ("read_err", 30, 1),
           ("ahb_err", 31, 1))
_READ_ONLY = ("busy", "ahb_err")
# quiet, unpaced, read and write incrementing, word transfers, enabled (the port's DEFAULT_DMA_CONFIG)
_DEFAULT = 1 << 21 | 0x3F << 15 | 1 << 5 | 1 << 4 | 2 << 2 | 1


def _addr(v):
    """A register value from an int or a buffer (its address), as the port's config() takes it."""
    if isinstance(v, int):
        return v
    return uctypes.addressof(v)


class DMA:
    def __init__(self):
        _ADC.ready()
        for c in _BLOCK.ch:
            if not c.claimed:
                c.claimed = True
                self._c = c
                return
        raise OSError(16)  # EBUSY

    def __repr__(self):
        return "DMA(%u)" % self._c.n

    def _open(self):
        if self._c is None:
            raise ValueError("channel closed")
        return self._c

    @property
    def channel(self):
        return self._c.n if self._c is not None else 0xFF

    @property
    def read(self):
        _ADC.advance()
        return self._open().read

    @read.setter
    def read(self, v):
        self._open().read = _addr(v)

    @property
    def write(self):
        _ADC.advance()
        return self._open().write

    @write.setter
    def write(self, v):
        self._open().write = _addr(v)

    @property
    def count(self):
        _ADC.advance()
        return self._open().count

    @count.setter
    def count(self, v):
        self._open().reload = v

    @property
    def ctrl(self):
        c = self._open()
        return c.ctrl | (0x1000000 if c.busy else 0)

    @ctrl.setter
    def ctrl(self, v):
        self._open().ctrl = v & 0x00FFFFFF

    def config(self, read=None, write=None, count=None, ctrl=None, trigger=False):
        c = self._open()
        _ADC.advance()
        if read is not None:
            c.read = _addr(read)
        if write is not None:
            c.write = _addr(write)
        if count is not None:
            c.reload = count
        if ctrl is not None:
            c.ctrl = ctrl & 0x00FFFFFF
        if trigger:
            _BLOCK.trigger(c)

    def active(self, value=None):
        c = self._open()
        _ADC.advance()
        if value is not None:
            if value:
                _BLOCK.trigger(c)
            else:
                c.busy = False
        return c.busy

    def close(self):
        c = self._c
        if c is not None:
            c.busy = False
            c.claimed = False
            self._c = None

    def pack_ctrl(self, *args, **kw):
        if args:
            raise TypeError("pack_ctrl only takes keyword arguments")
        v = kw.pop("default", _DEFAULT | (self.channel & 0xF) << 11)
        for name, shift, bits in _FIELDS:
            if name in kw:
                x = kw.pop(name)
                if name in _READ_ONLY:
                    continue
                m = (1 << bits) - 1
                if x & m != x:
                    raise ValueError("bad field value")
                v = v & ~(m << shift) | x << shift
        if kw:
            raise TypeError
        return v

    @staticmethod
    def unpack_ctrl(value):
        return {name: value >> shift & ((1 << bits) - 1) for name, shift, bits in _FIELDS}

