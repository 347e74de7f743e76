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
- a restart is a bus transaction that takes time (on a busy board, periods): the chip's FIFO
  runs from some moment between ``sync`` (before it) and ``synced`` (after it).  Slots due
  before ``sync`` are missing for the restart's cause; slots due while it ran are missing
  (OVERRUN: the loop was in the transaction when they came); a sample the chip took during it
  is older than every slot left, so it is one of the oldest extra ones dropped below;
- a short FIFO at the frame's end is, first, a chip whose sample clock has not reached the
  frame's last slot yet (its phase: the k-th sample since the restart may come up to a period
  after the k-th deadline, and real oscillators run 1-2 % off): the frame waits, in device time,
  up to ``WAIT`` periods past its last deadline (the loop goes on with the other streams;
  ``lag``, at most a period, moves the next frames' first look later by what waiting taught);
  what is still short then is missing (SENSOR: the chip did not deliver);
- more samples than the slots plus those the chip may have taken between the frame's end and
  the count's answer (``clock`` after it: on a busy bus that is periods after the pass began;
  judged at the pass's start, a late count's newest samples made the oldest look surplus and
  the next frames short): the chip's clock is faster, the oldest extra ones are read and
  dropped (``surplus``);
- a failed read or an offline chip: the frame is missing (SENSOR) and the FIFO is restarted as
  the next frame begins (while the chip is offline: at the first read after it is back, a
  frame then all due before the restart, so missing too).

During a wait the row's DUE is the next look, not the frame's last deadline: ``read`` takes
that from T0.

``read`` and ``fill`` allocate nothing (native code: a bytecode frame this size would be
heap-allocated); ``claim`` allocates (boot).
"""

import micropython
from micropython import const

from schedule import now30
import wire

SPARE = const(8)  # samples of room the FIFO keeps beyond a batch
WAIT = const(2)  # periods past its last deadline a short frame waits for the chip

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
        self.sync = -1  # now30 before the FIFO's restart while slots due before its end remain
        self.synced = 0  # now30 after the restart: the FIFO ran from some time in [sync, synced]
        self.cause = _SENSOR  # why the slots due before sync are missing
        self.lag = 0  # us past the frame's last deadline of the first look (0..period)
        self.clock = now30  # the now30 after a restart (a test's clock follows its own time)
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
            t[b + _DUE] = (t0 + (s.batch - 1) * p + self.lag) & _MASK30
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
        self.synced = _later(self.clock(), now)
        self.cause = cause

    @micropython.native
    def read(self, now, late):
        """The row's DUE passed: the frame's samples from the chip's FIFO, or a later look."""
        s = self.s
        t = s._t
        b = s._b
        p = t[b + _PER]
        batch = s.batch
        frame = s.frame
        due = (t[b + _T0] + (batch - 1) * p) & _MASK30  # the frame's last deadline
        late = (now - due) & _MASK30  # DUE may be later than it (lag, a wait)
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
                if skip < 0:  # the chip has not taken the frame's last samples yet
                    step = p >> 2
                    t[b + _DUE] = (now + step) & _MASK30
                    if self.lag < p:
                        self.lag += step
                    return
            except OSError as e:
                self.stale = True
                self.mark(0, batch, _SENSOR)
                c = s.counts
                c.errors = (c.errors + 1) & _MASK30
                if s.chip.failed():
                    s.health.offline(s, e.errno)
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
        whole frames to skip after this one (an overflow), or -1: short while the frame may
        still wait for the chip (nothing read, nothing marked).  Reads before it marks, so a
        read that raises leaves no mark behind."""
        s = self.s
        drv = s.chip.driver
        ss = s.chip.size
        c = drv.fifo_count()
        t = s._t
        t0 = t[s._b + _T0]
        if c >= drv.FIFO_BYTES or c % ss:  # overflowed: samples lost, the rest maybe cut
            return self._overflow(now, late, p, batch)
        m = c // ss
        k0 = 0
        k1 = 0
        cause = _SENSOR
        sync = self.sync
        if sync >= 0:
            k0 = _before(sync, t0, p, batch)
            k1 = _before(self.synced, t0, p, batch)
            cause = self.cause
        need = batch - k1
        if m < need and late < WAIT * p:
            return -1
        due = (now - late) & _MASK30
        if sync >= 0 and ((self.synced - due + _HALF) & _MASK30) - _HALF < 0:
            self.sync = -1  # the next frame's slots are all after the restart
        # beyond this frame's and those taken since its end, up to the count (a busy bus or
        # host answers it well after `now`: what the chip took meanwhile is no surplus)
        extra = m - need - (((_later(self.clock(), now) - due) & _MASK30) // p + 1)
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
            for j in range(k1, k1 + n):
                drv.fifo_read_into(slots[j])
        if drv.fifo_overflowed():  # after the count: a full FIFO dropped bytes, these may be cut samples
            return self._overflow(now, late, p, batch)
        self.mark(0, k0, cause)
        self.mark(k0, k1, _OVERRUN)  # due while the restart ran
        self.mark(k1 + n, batch, _SENSOR)
        return 0

    def _overflow(self, now, late, p, batch):
        """Restart the FIFO; the frame goes out all missing (OVERRUN), and the whole frames whose
        slots passed meanwhile are skipped (returned)."""
        self.s.chip.driver.fifo_start()
        self.stale = False
        self.sync = now
        self.synced = _later(self.clock(), now)
        self.cause = _OVERRUN
        h = self.s.health
        h.overruns = (h.overruns + 1) & _MASK30
        self.mark(0, batch, _OVERRUN)
        return late // (batch * p)

    def mark(self, i, end, cause):
        self.s.frame.mark_span(i, end, cause)


@micropython.native
def _before(x, t0, p, batch):
    """How many slots of the frame whose first deadline is t0 are due at or before now30 x."""
    d = ((x - t0 + _HALF) & _MASK30) - _HALF
    if d < 0:
        return 0
    k = d // p + 1
    return k if k < batch else batch


@micropython.native
def _later(a, b):
    """The later of two now30 times."""
    return a if ((a - b + _HALF) & _MASK30) - _HALF > 0 else b
