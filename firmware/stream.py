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

Burst reads: a stream whose chip keeps its samples in a FIFO, at the chip's own sample
period, reads each frame in one transaction (``burst.Burst``; ``fifo`` is that object, None for
every other stream, and ``burst.py`` is imported only for such a stream).
"""

import micropython
from micropython import const

from chip import Chip
from dataframe import Counters, DataFrame
from schedule import Schedule, now30
from streaminfo import StreamInfo
import wire

_MASK30 = const(0x3FFFFFFF)
_OVERRUN = const(0)  # = dataframe.OVERRUN (a const is inlined only in its own module)
_SENSOR = const(1)  # = dataframe.SENSOR
_PER = const(2)  # = schedule.PER, I, DUE, T0, ON, FAILS (the row)
_I = const(3)
_DUE = const(1)
_T0 = const(4)
_ON = const(6)
_FAILS = const(7)
_BATCH = const(5)


class Stream(Schedule):
    FAST = True  # fastloop may take its on-time samples (a subclass that sees each sample: False)
    burst = False  # the frame being filled is read in one burst (burst.Burst.arm sets it)
    fifo = None  # burst.Burst of a stream that reads its chip's FIFO (bind); class-level
    # defaults, so every other stream's instance carries neither (heap on the esp32 profile)

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
        if getattr(driver, "FIFO_PERIOD_US", 0) == self.period:  # else no burst.py in the heap
            import burst

            self.fifo = burst.claim(self, driver)

    def set_period(self, period_us):
        """SET_PERIOD: a burst frame keeps its period to its end (its I is always 0)."""
        if self.burst and self.running:
            self.new_period = period_us
        else:
            Schedule.set_period(self, period_us)

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
        """Start (or restart) sampling: fresh batch, first deadline one period from now.  A stream
        that will read its chip's FIFO restarts the FIFO first and counts from when it ran
        (``synced``), so no slot of its first frame falls due before the chip samples: streams
        begun before it in the same pass take milliseconds, dozens of the ADC ring's periods."""
        fifo = self.fifo
        if fifo is not None:
            fifo.stale = True
            if self.chip.online and self.period == fifo.period:
                fifo.restart(now, _SENSOR)
                if not fifo.stale:
                    now = fifo.synced
        self.resume(now)
        self.frame.clear()
        if self.chip.online:
            self.chip.start()
        if fifo is not None:
            fifo.arm(self.due, now)

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
            self.fifo.read(now, late)
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
        if self.fifo is not None:  # the next frame may be a burst (a SET_PERIOD to the chip's)
            self.fifo.arm(self.due, now30())
