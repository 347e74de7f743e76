"""One configured stream: a schedule that fills a DATA frame from a chip.

A ``Stream`` is its ``schedule.Schedule`` (it extends it: the loop reads ``due`` and
``running`` on every pass) plus four parts, one per concern:

- ``frame``: the ``dataframe.DataFrame`` being filled (slots, missing bitmap, seq);
- ``counts``: the ``dataframe.Counters`` STATUS reports;
- ``chip``: the ``chip.Chip`` (driver, online, consecutive fails, back-off);
- ``info``: the ``streaminfo.StreamInfo`` HELLO and CALIB describe.

``sample()`` is the hot path.  It reads the frame's ``slots`` and ``batch`` from this object
(bound here once: they never change) and the chip's fields through one local, so a sample costs
no more attribute lookups than when all of this was one 44-field object.

A deadline missed by a full period or more is a loop overrun: counted, and each missed slot
is sent marked missing (cause OVERRUN), so the time axis stays exact (frame k+1 starts where
frame k ends); whole frames that would carry only missed slots are skipped (seq consumed,
counted in ``frames_skipped``), so a long stall costs no frame-building.  Sensor errors and an
offline chip mark the sample missing (cause SENSOR); after repeated failures the chip goes
offline and ``health.Health`` brings it back.

Burst reads (``burst``): a chip with a FIFO (a driver with ``FIFO_PERIOD_US`` > 0: the MPU-6050)
samples on its own clock and keeps the samples; when the stream's period equals the chip's
sample period and the batch leaves the FIFO room for 8 more samples (and no other stream of
the same chip claimed its FIFO first: ``fifo_owners``), the stream reads a whole
frame once its last deadline has passed: one FIFO count and one ``fifo_read_into`` of the batch
straight into the frame (``burst_read``).  Only at that period, because the FIFO holds every
sample the chip takes: at another period the stream would have to read and throw away the
samples between its deadlines, more bus bytes than the per-sample reads it replaces.  The row's
DUE is then the frame's last deadline and T0 its first; I stays 0; a new period waits for the
frame's end as before.  Timestamps stay the schedule's: the FIFO's samples are taken in order,
one per period, and the k-th one since the FIFO was started belongs to the k-th slot whose
deadline came after that start.  What does not fit that is counted, never shifted:

- overflow (a count of FIFO_BYTES, or not a multiple of the sample size: the chip dropped its
  oldest bytes): the FIFO is restarted, the frame goes out all missing (OVERRUN, an overrun
  counted), whole frames that ended before the restart are skipped, and the next frame's slots
  due before the restart are missing (OVERRUN);
- a short FIFO (the chip delivered fewer samples than slots: its clock slower than ours): the
  last slots are missing (SENSOR); more samples than the slots plus those taken since the
  deadline (its clock faster): the oldest extra ones are read and dropped (``fifo_surplus``);
- a failed read or an offline chip: the frame is missing (SENSOR) and the FIFO is restarted
  as the next frame begins (or, while the chip is offline, at the first read after it is back:
  that frame, all due before the restart, is missing too).
"""

import micropython
from micropython import const

from chip import Chip
from dataframe import Counters, DataFrame
from schedule import Schedule, now30
from streaminfo import StreamInfo
import wire

_MASK30 = const(0x3FFFFFFF)
_HALF = const(0x20000000)
_FIFO_SPARE = const(8)  # samples of room the FIFO keeps beyond a batch (burst reads)
_OVERRUN = const(0)  # = dataframe.OVERRUN (a const is inlined only in its own module)
_SENSOR = const(1)  # = dataframe.SENSOR
_PER = const(2)  # = schedule.PER, I, DUE, T0, ON, FAILS (the row)
_I = const(3)
_DUE = const(1)
_T0 = const(4)
_ON = const(6)
_FAILS = const(7)
_BATCH = const(5)
_MODE = const(8)


class Stream(Schedule):
    FAST = True  # fastloop may take its on-time samples (a subclass that sees each sample: False)
    fifo_owners = {}  # config "sensor" -> the stream that reads its FIFO: one per chip (a FIFO
    # read by two streams would hand each the other's samples; the others read registers)

    def __init__(self, sid, name, sensor, cls, period_us, batch, settings, boot_id):
        Schedule.__init__(self, period_us)
        self.sid = sid
        self.counts = Counters()
        self.frame = DataFrame(sid, boot_id, batch, cls.SAMPLE_SIZE, self.counts)
        self.slots = self.frame.slots  # bound for sample(): one lookup fewer per sample
        self.batch = batch
        self._t[self._b + _BATCH] = batch
        self.chip = Chip(sensor, cls.SAMPLE_SIZE)
        self.chip.fast = self.FAST
        self.chip.place(self._t, self._b, [None], 0)
        self.info = StreamInfo(name, cls, settings)
        self.health = None  # health.Health: overruns, a chip going offline (attach)
        self.burst = False  # the frame being filled is read from the chip's FIFO (arm)
        self.fifo_period = 0  # the chip's FIFO sample period if this stream may use it (bind)
        self.fifo_stale = True  # the FIFO must be restarted before it is read
        self.fifo_sync = -1  # now30 of the FIFO's restart while slots due before it remain
        self.fifo_cause = _SENSOR  # why those slots are missing
        self.fifo_surplus = 0  # samples the chip took beyond the schedule, dropped
        self.fast_mode = 0
        ss = cls.SAMPLE_SIZE
        self.samples = memoryview(self.frame.buf)[wire.HEADER_SIZE:wire.HEADER_SIZE + batch * ss]

    # -- set-up, commands, recovery (may allocate) ------------------------------------------
    def attach(self, out, health):
        """Wire the stream to the output (registered there for the fair share) and health."""
        self.frame.out = out
        out.add_stream(self.sid, len(self.frame.buf) - wire.CRC_SIZE)
        self.health = health

    def place(self, table, base, fns, k):
        """Move the row into the sampler's table (its k-th stream; fns: fastloop's read fns)."""
        Schedule.place(self, table, base)
        self.chip.place(table, base, fns, k)

    def bind(self, driver):
        self.chip.bind(driver)
        self.fast_mode = self._t[self._b + _MODE]  # fastloop's read mode, off during bursts
        fp = getattr(driver, "FIFO_PERIOD_US", 0)
        room = getattr(driver, "FIFO_BYTES", 0) // self.chip.size - _FIFO_SPARE
        owners = Stream.fifo_owners
        if fp and self.batch <= room and owners.get(self.chip.sensor, self) is self:
            owners[self.chip.sensor] = self
            self.fifo_period = fp
        else:
            self.fifo_period = 0
        self.fifo_stale = True

    def set_period(self, period_us):
        """SET_PERIOD: a burst frame keeps its period to its end (its I is always 0)."""
        if self.burst and self.running:
            self.new_period = period_us
        else:
            Schedule.set_period(self, period_us)

    def arm(self, t0, now):
        """The frame whose first deadline is t0 begins: read it in one burst from the chip's
        FIFO (when the period is the chip's) or sample by sample.  May write to the chip."""
        p = self.period
        burst = self.fifo_period != 0 and p == self.fifo_period
        self._t[self._b + _MODE] = 0 if burst else self.fast_mode  # a burst is Python's
        if burst:
            self.t0 = t0
            self.due = (t0 + (self.batch - 1) * p) & _MASK30
            if self.fifo_stale and self.chip.online:
                self.fifo_restart(now, _SENSOR)
        else:
            self.due = t0
            self.fifo_stale = True
        self.burst = burst

    def fifo_restart(self, now, cause):
        """Empty the chip's FIFO; slots due before `now` have no sample (missing: `cause`)."""
        try:
            self.chip.driver.fifo_start()
        except OSError:
            self.fifo_stale = True
            return
        self.fifo_stale = False
        self.fifo_sync = now
        self.fifo_cause = cause

    def open(self, hardware):
        """(Re)initialise the driver; True on success.  The first time it is constructed and
        the stream learns its config and calibration; afterwards it is reset.  Allocates (boot
        and recovery only)."""
        chip = self.chip
        try:
            if chip.driver is None:
                self.bind(hardware.open(chip.sensor, self.info.settings))
                self.info.learn(chip.driver)
            else:
                chip.driver.reset()
            return True
        except OSError:
            return False

    def hello(self):
        """This stream's entry in the HELLO JSON; allocates."""
        return self.info.hello(self.sid, self.period, self.batch, self.chip.online)

    def begin(self, now):
        """Start (or restart) sampling: fresh batch, first deadline one period from now."""
        self.resume(now)
        self.frame.clear()
        if self.chip.online:
            self.chip.start()
        self.fifo_stale = True
        self.arm(self.due, now)

    def stop(self):
        self.pause()
        self.frame.clear()

    # -- hot path -----------------------------------------------------------------------------
    # fastloop.run (viper) takes the samples of a chip it can read (chip.FAST_*) that are on time
    # and not a frame's last; every other sample comes here, as every sample did before it.
    # sample() is native (as Sampler.run is): no bytecode dispatch.  Native code allocates
    # where bytecode would and slice assignment allocates there too: none here (heap_lock tests).
    @micropython.native
    def sample(self, now, late):
        """Take the sample due at self.due, which passed `late` us ago (the Sampler computed it)."""
        if self.burst:
            self.burst_read(now, late)
            return
        t = self._t
        b = self._b
        p = t[b + _PER]
        if late >= p:
            self.overrun(late, now)
        i = t[b + _I]
        due = t[b + _DUE]
        if i == 0:
            t[b + _T0] = due
        chip = self.chip
        if t[b + _ON]:
            try:
                chip.read(self.slots[i])
                t[b + _FAILS] = 0
            except OSError as e:
                self.failed(i, e.errno)
            start = chip.restart
            if start is not None and t[b + _ON]:
                try:
                    start()  # next conversion
                except OSError:
                    pass
        else:
            self.frame.mark(i, _SENSOR)
        t[b + _DUE] = (due + p) & _MASK30
        i += 1
        t[b + _I] = i
        if i >= self.batch:
            self.emit()

    def read_failed(self, errno):
        """fastloop's read of slot i raised OSError(errno): the rest of sample() for it."""
        i = self.i
        self.failed(i, errno)
        self.due = (self.due + self.period) & _MASK30
        i += 1
        self.i = i
        if i >= self.batch:
            self.emit()

    def failed(self, i, errno):
        self.frame.mark(i, _SENSOR)
        c = self.counts
        c.errors = (c.errors + 1) & _MASK30
        if self.chip.failed():
            self.health.offline(self, errno)

    def overrun(self, late, now):
        """Deadline missed by >= 1 period: every missed slot stays on the time axis.  Slots of
        a frame go out marked missing (the frame in progress, and the next ones as they fill).
        A whole frame that would hold nothing but missed slots is not built: its seq is skipped
        and counted in this stream's `skipped`, so the host's gap equals the device's
        dropped + skipped frames and the next frame's t0 is exactly where the time axis puts it."""
        self.health.overruns = (self.health.overruns + 1) & _MASK30
        p = self.period
        batch = self.batch
        frame = self.frame
        k = late // p
        while k > 0:
            i = self.i
            if i == 0:
                if k >= batch:
                    n = k // batch
                    self.due = (self.due + n * batch * p) & _MASK30  # < late: a small int
                    frame.skip(n)
                    k -= n * batch
                    continue
                self.t0 = self.due
            frame.mark(i, _OVERRUN)
            self.due = (self.due + p) & _MASK30
            k -= 1
            i += 1
            self.i = i
            if i >= batch:
                self.emit()

    def emit(self):
        """The batch is full: send the frame, start the next one (with a pending new period)."""
        self.frame.send(self.t0, self.period)
        self.next_frame()
        if self.fifo_period:  # the next frame may be a burst (a SET_PERIOD to the chip's)
            self.arm(self.due, now30())

    # -- burst reads (the FIFO) ------------------------------------------------------------------
    @micropython.native
    def burst_read(self, now, late):
        """The frame's last deadline passed `late` us ago: its samples from the chip's FIFO."""
        t = self._t
        b = self._b
        p = t[b + _PER]
        batch = self.batch
        frame = self.frame
        skip = 0
        if not t[b + _ON]:
            self.fifo_stale = True
            self.mark(0, batch, _SENSOR)
        elif self.fifo_stale:
            self.fifo_restart(now, _SENSOR)  # every slot of this frame was due before it
            self.mark(0, batch, _SENSOR)
        else:
            try:
                skip = self.fill(now, late, p, batch)
                t[b + _FAILS] = 0
            except OSError as e:
                self.fifo_stale = True
                self.mark(0, batch, _SENSOR)
                c = self.counts
                c.errors = (c.errors + 1) & _MASK30
                if self.chip.failed():
                    self.health.offline(self, e.errno)
        due = t[b + _DUE]
        frame.send(t[b + _T0], p)
        self.next_frame()
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
        drv = self.chip.driver
        ss = self.chip.size
        c = drv.fifo_count()
        t0 = self.t0
        if c >= drv.FIFO_BYTES or c % ss:  # overflowed: samples lost, the rest maybe cut
            drv.fifo_start()
            self.fifo_stale = False
            self.fifo_sync = now
            self.fifo_cause = _OVERRUN
            h = self.health
            h.overruns = (h.overruns + 1) & _MASK30
            self.mark(0, batch, _OVERRUN)
            return late // (batch * p)
        m = c // ss
        k0 = 0
        cause = _SENSOR
        sync = self.fifo_sync
        if sync >= 0:
            d = ((sync - t0 + _HALF) & _MASK30) - _HALF
            if d >= 0:
                k0 = d // p + 1
                if k0 > batch:
                    k0 = batch
            cause = self.fifo_cause
            if ((sync - self.due + _HALF) & _MASK30) - _HALF < 0:
                self.fifo_sync = -1  # the next frame's slots are all after the restart
        need = batch - k0
        extra = m - need - (late // p + 1)  # beyond this frame's and those taken since its end
        if extra > 0:
            scratch = self.chip.scratch
            for _ in range(extra):
                drv.fifo_read_into(scratch)
            self.fifo_surplus = (self.fifo_surplus + extra) & _MASK30
            m -= extra
        n = m if m < need else need
        if n == batch:
            drv.fifo_read_into(self.samples)  # the whole batch in one transaction
        else:
            slots = self.slots
            for j in range(k0, k0 + n):
                drv.fifo_read_into(slots[j])
        self.mark(0, k0, cause)
        self.mark(k0 + n, batch, _SENSOR)
        return 0

    def mark(self, i, end, cause):
        frame = self.frame
        while i < end:
            frame.mark(i, cause)
            i += 1
