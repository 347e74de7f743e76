"""Burst reads: a stream that takes a whole frame from its chip's FIFO in one transaction.

A chip with a FIFO (a driver with ``FIFO_PERIOD_US`` > 0: the MPU-6050) samples on its own clock
and keeps the samples.  A stream whose configured period equals the chip's sample period, whose
batch leaves the FIFO room for ``SPARE`` more samples, and that is the first stream of its chip
to ask (``claim``: a FIFO read by two streams would hand each the other's samples; the others
read registers), reads a whole frame once its last deadline has passed: one FIFO count and one
``fifo_read_into`` of the batch straight into the frame (``Burst.read``).  Only at that period,
because the FIFO holds every sample the chip takes: at another period the stream would have to
read and throw away the samples between its deadlines, more bus bytes than the per-sample reads
it replaces.  A SET_PERIOD to another period makes the stream read sample by sample from the
next frame on, and back.  This module is imported only by such a stream (``Stream.bind``), so a
board without one carries none of it.

During a burst the stream's row has DUE = the frame's last deadline, T0 = its first, I = 0 and
MODE = 0 (fastloop hands the deadline to Python).  Timestamps stay the schedule's: the FIFO's
samples are taken in order, one per period, and the k-th one since the FIFO was (re)started
belongs to the k-th slot whose deadline came after that start.  What does not fit that is
counted, never shifted:

- overflow (a count of FIFO_BYTES, or not a multiple of the sample size: the chip dropped its
  oldest bytes): the FIFO is restarted, the frame goes out all missing (OVERRUN, an overrun
  counted), whole frames that ended before the restart are skipped (seq consumed, counted), and
  the next frame's slots due before the restart are missing (OVERRUN);
- a short FIFO (the chip delivered fewer samples than slots: its clock slower than ours): the
  last slots are missing (SENSOR); more samples than the slots plus those the chip may have
  taken since the frame's end (its clock faster): the oldest extra ones are read and dropped
  (``surplus``);
- a failed read or an offline chip: the frame is missing (SENSOR) and the FIFO is restarted as
  the next frame begins (while the chip is offline: at the first read after it is back, a
  frame then all due before the restart, so missing too).

``read`` and ``fill`` allocate nothing (native code: a bytecode frame this size would be
heap-allocated); ``claim`` allocates (boot).
"""

import micropython
from micropython import const

import wire

SPARE = const(8)  # samples of room the FIFO keeps beyond a batch

_MASK30 = const(0x3FFFFFFF)
_HALF = const(0x20000000)
_OVERRUN = const(0)  # = dataframe.OVERRUN
_SENSOR = const(1)  # = dataframe.SENSOR
_DUE = const(1)  # = schedule.DUE, PER, T0, ON, FAILS, MODE
_PER = const(2)
_T0 = const(4)
_ON = const(6)
_FAILS = const(7)
_MODE = const(8)

_owners = {}  # config "sensor" -> the stream that reads its FIFO


def claim(stream, driver):
    """A Burst for `stream` when it may read `driver`'s FIFO (see above), else None."""
    chip = stream.chip
    room = driver.FIFO_BYTES // chip.size - SPARE
    if stream.period != driver.FIFO_PERIOD_US or stream.batch > room:
        return None
    if _owners.get(chip.sensor, stream) is not stream:
        return None
    _owners[chip.sensor] = stream
    return Burst(stream, driver.FIFO_PERIOD_US)


class Burst:
    def __init__(self, stream, period):
        self.s = stream
        self.period = period  # the chip's sample period: bursts only at it
        self.stale = True  # the FIFO must be restarted before it is read
        self.sync = -1  # now30 of the FIFO's restart while slots due before it remain
        self.cause = _SENSOR  # why those slots are missing
        self.surplus = 0  # samples the chip took beyond the schedule, dropped
        self.fast_mode = stream._t[stream._b + _MODE]  # fastloop's read mode, off during bursts
        ss = stream.chip.size
        self.samples = memoryview(stream.frame.buf)[wire.HEADER_SIZE:wire.HEADER_SIZE + stream.batch * ss]

    def arm(self, t0, now):
        """The frame whose first deadline is t0 begins: one burst at its end (the period is
        the chip's) or sample by sample.  May write to the chip."""
        s = self.s
        t = s._t
        b = s._b
        p = t[b + _PER]
        burst = p == self.period
        t[b + _MODE] = 0 if burst else self.fast_mode
        if burst:
            t[b + _T0] = t0
            t[b + _DUE] = (t0 + (s.batch - 1) * p) & _MASK30
            if self.stale and t[b + _ON]:
                self.restart(now, _SENSOR)
        else:
            t[b + _DUE] = t0
            self.stale = True
        s.burst = burst

    def restart(self, now, cause):
        """Empty the chip's FIFO; slots due before `now` have no sample (missing: `cause`)."""
        try:
            self.s.chip.driver.fifo_start()
        except OSError:
            self.stale = True
            return
        self.stale = False
        self.sync = now
        self.cause = cause

    @micropython.native
    def read(self, now, late):
        """The frame's last deadline passed `late` us ago: its samples from the chip's FIFO."""
        s = self.s
        t = s._t
        b = s._b
        p = t[b + _PER]
        batch = s.batch
        frame = s.frame
        skip = 0
        if not t[b + _ON]:
            self.stale = True
            self.mark(0, batch, _SENSOR)
        elif self.stale:
            self.restart(now, _SENSOR)  # every slot of this frame was due before it
            self.mark(0, batch, _SENSOR)
        else:
            try:
                skip = self.fill(now, late, p, batch)
                t[b + _FAILS] = 0
            except OSError as e:
                self.stale = True
                self.mark(0, batch, _SENSOR)
                c = s.counts
                c.errors = (c.errors + 1) & _MASK30
                if s.chip.failed():
                    s.health.offline(s, e.errno)
        due = t[b + _DUE]
        frame.send(t[b + _T0], p)
        s.next_frame()
        t0 = (due + p) & _MASK30
        if skip:
            frame.skip(skip)
            t0 = (t0 + skip * batch * p) & _MASK30
        self.arm(t0, now)

    @micropython.native
    def fill(self, now, late, p, batch):
        """Read the frame's samples from the FIFO and mark the slots it cannot fill; returns the
        whole frames to skip after this one (an overflow).  Reads before it marks, so a read that
        raises leaves no mark behind."""
        s = self.s
        drv = s.chip.driver
        ss = s.chip.size
        c = drv.fifo_count()
        t = s._t
        t0 = t[s._b + _T0]
        if c >= drv.FIFO_BYTES or c % ss:  # overflowed: samples lost, the rest maybe cut
            drv.fifo_start()
            self.stale = False
            self.sync = now
            self.cause = _OVERRUN
            h = s.health
            h.overruns = (h.overruns + 1) & _MASK30
            self.mark(0, batch, _OVERRUN)
            return late // (batch * p)
        m = c // ss
        k0 = 0
        cause = _SENSOR
        sync = self.sync
        if sync >= 0:
            d = ((sync - t0 + _HALF) & _MASK30) - _HALF
            if d >= 0:
                k0 = d // p + 1
                if k0 > batch:
                    k0 = batch
            cause = self.cause
            if ((sync - t[s._b + _DUE] + _HALF) & _MASK30) - _HALF < 0:
                self.sync = -1  # the next frame's slots are all after the restart
        need = batch - k0
        extra = m - need - (late // p + 1)  # beyond this frame's and those taken since its end
        if extra > 0:
            scratch = s.chip.scratch
            for _ in range(extra):
                drv.fifo_read_into(scratch)
            self.surplus = (self.surplus + extra) & _MASK30
            m -= extra
        n = m if m < need else need
        if n == batch:
            drv.fifo_read_into(self.samples)  # the whole batch in one transaction
        else:
            slots = s.slots
            for j in range(k0, k0 + n):
                drv.fifo_read_into(slots[j])
        self.mark(0, k0, cause)
        self.mark(k0 + n, batch, _SENSOR)
        return 0

    def mark(self, i, end, cause):
        frame = self.s.frame
        while i < end:
            frame.mark(i, cause)
            i += 1
