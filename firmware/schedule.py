"""A stream's time axis: when its next sample is due and where the frame being filled began.

Deadlines are ``time.ticks_us`` values modulo 2**30 (the boards' ticks period; on the unix
port, whose period is 2**62, the low 30 bits: ``now30``), kept with ``add30``/``diff30``:
``due`` advances by exactly one period per sample (no drift), and sample *i* of a frame belongs
to ``t0 + i * period`` where ``t0`` is the frame's first deadline.  A new period (SET_PERIOD)
waits for the next frame boundary, because one DATA frame carries one period for all its samples.

The fields the loop reads on every pass live in one row of ``ROW`` ints of an ``array("i")``
(the properties below read and write it), so that ``fastloop.run`` (viper) scans every stream's
row of one shared table (``place``) without an attribute lookup.  The chip's ``online`` and
``fails`` share the row (chip.Chip), as does how the chip may be read without Python (``MODE``,
``ADDR``, ``REG``: chip.Chip.bind).  Before ``place`` a schedule has a row of its own.
"""

from array import array

import time

from micropython import const

# the row (fastloop.py, stream.py and chip.py repeat these: a const is inlined only in its module)
RUN = const(0)  # 1 while sampling
DUE = const(1)  # deadline of sample i (now30 ticks)
PER = const(2)  # period (us) of the frame being filled
I = const(3)  # slot of the next sample in the frame
T0 = const(4)  # deadline of the frame's first sample
BATCH = const(5)  # samples per frame
ON = const(6)  # chip online
FAILS = const(7)  # chip's consecutive failed reads
MODE = const(8)  # how fastloop reads the chip: 0 = not at all (Stream.sample), chip.FAST_*
ADDR = const(9)  # FAST_MEM: I2C address
REG = const(10)  # FAST_MEM: first register
ROW = const(11)

_MASK30 = const(0x3FFFFFFF)
_HALF = const(0x20000000)

_ticks_us = time.ticks_us


def now30():
    return _ticks_us() & _MASK30


def add30(t, d):
    return (t + d) & _MASK30


def diff30(a, b):
    """a - b for now30 ticks (signed, |a - b| < 2**29)."""
    return ((a - b + _HALF) & _MASK30) - _HALF


class Schedule:
    def __init__(self, period_us):
        self._t = array("i", bytes(4 * ROW))
        self._b = 0
        self.new_period = period_us  # SET_PERIOD takes effect at the next frame boundary
        self.period = period_us

    def place(self, table, base):
        """Move the row to table[base:base + ROW] (the sampler's table for fastloop)."""
        t = self._t
        b = self._b
        for k in range(ROW):
            table[base + k] = t[b + k]
        self._t = table
        self._b = base

    # the row's fields as attributes (the hot paths index the row instead)
    @property
    def period(self):
        return self._t[self._b + PER]

    @period.setter
    def period(self, v):
        self._t[self._b + PER] = v

    @property
    def due(self):
        return self._t[self._b + DUE]

    @due.setter
    def due(self, v):
        self._t[self._b + DUE] = v

    @property
    def t0(self):
        return self._t[self._b + T0]

    @t0.setter
    def t0(self, v):
        self._t[self._b + T0] = v

    @property
    def i(self):
        return self._t[self._b + I]

    @i.setter
    def i(self, v):
        self._t[self._b + I] = v

    @property
    def running(self):
        return self._t[self._b + RUN] != 0

    @running.setter
    def running(self, v):
        self._t[self._b + RUN] = 1 if v else 0

    def resume(self, now):
        """Fresh frame, first deadline one period from `now` (now30 ticks)."""
        self.i = 0
        self.due = add30(now, self.period)
        self.running = True

    def pause(self):
        self.running = False
        self.i = 0

    def set_period(self, period_us):
        """SET_PERIOD: at once when no frame is being filled, else from the next frame."""
        self.new_period = period_us
        if not self.running or self.i == 0:
            self.period = period_us

    def next_frame(self):
        self.i = 0
        self.period = self.new_period
