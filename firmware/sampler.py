"""Streams and the sampling loop.

Each ``Stream`` owns one DATA frame buffer laid out as header + ``batch`` sample slots + room
for the missing bitmap (wire.FLAG_MISSING layout), with one memoryview per slot made at init, so
``driver.read_into(slot)`` fills the frame in place and a full batch is packed, CRC'd and
COBS-encoded into the output ring without copying.  The bitmap is cleared and sent only when a
sample of the batch is missing (the first ``mark`` of a batch clears it); otherwise the frame
ends after the samples and the CRC goes where the bitmap would be.  Deadlines are kept with ``time.ticks_us``/``ticks_add``/``ticks_diff``
(``due`` advances by exactly one period per sample: no drift); sample *i* of a frame belongs
to ``t0_us + i * period_us`` where t0 is the first sample's deadline.

A deadline missed by a full period or more is a loop overrun: counted, and each missed slot
is sent marked missing, so the time axis stays exact (frame k+1 starts where frame k ends);
whole frames that would carry only missed slots are skipped as dropped frames (seq consumed,
counted), so a long stall costs no frame-building.  Sensor errors mark the sample missing;
``Health`` takes a sensor offline after repeated failures and back online.

``Sampler.run()`` is the steady-state loop: it allocates nothing after its warm-up passes
(checked by running it under ``micropython.heap_lock()``, config "heap_lock").  Hot code uses
locals, index stores, ``struct.pack_into`` (via wire.pack_header) and method calls on objects
(the few bound methods the loop calls are taken once, before it starts); no floats, no strings,
no new globals; every counter stays below 2**30 (masked or saturated: a small int on a board).
"""

import time

import micropython
from micropython import const

import wire

_MASK30 = const(0x3FFFFFFF)
_FAILS_OFFLINE = const(5)  # consecutive failed reads that take a sensor offline
_WDT_FEED_MS = const(100)
_SPIN_MAX_US = const(50)  # default cap of the sleep margin (config "spin_us_max")
_SPIN_UP = const(9)  # sleep margin: +9 us after a late wake-up, -1 us after a timely one,
_SPIN_DOWN = const(1)  # so it settles where 10% of sleeps overshoot it (Sampler.run)
_WARMUP = const(64)  # loop passes before heap_lock (first calls may allocate caches), and
# every running online stream must have taken a sample (its driver's first read_into may allocate)

# Sampler.run() results
DONE = const(0)  # max_iterations reached
REPL = const(1)  # the host asked for the REPL (CMD REPL)
INTERRUPT = const(2)  # Ctrl-C (0x03) from the host while streaming
REBOOT = const(3)  # CMD REBOOT (ACK sent)

_ticks_us = time.ticks_us
_ticks_ms = time.ticks_ms
_ticks_add = time.ticks_add
_ticks_diff = time.ticks_diff


class Stream:
    def __init__(self, sid, name, sensor, cls, period_us, batch, settings, boot_id):
        self.sid = sid
        self.name = name
        self.sensor = sensor
        self.cls = cls
        self.kind = cls.KIND
        self.settings = settings
        self.ss = cls.SAMPLE_SIZE
        self.batch = batch
        self.period = period_us
        self.new_period = period_us  # SET_PERIOD takes effect at the next frame boundary
        self.min_period = cls.MIN_PERIOD_US
        self.boot_id = boot_id
        self.frame = bytearray(wire.data_frame_size(batch, self.ss))
        self.bm = wire.bitmap_offset(batch, self.ss)  # bitmap offset (used only with FLAG_MISSING)
        self.fmiss = 0  # samples missing in the batch being filled
        first = wire.HEADER_SIZE
        mv = memoryview(self.frame)
        ss = self.ss
        self.slots = tuple(mv[first + i * ss:first + (i + 1) * ss] for i in range(batch))
        self.scratch = bytearray(ss)
        self.out = None
        self.health = None
        self.driver = None
        self.read = None  # driver.read_into, bound once (bind)
        self.restart = None  # driver.start, None for a free-running chip (nothing to call per sample)
        self.bus = None  # I2C bus and address for the allocation-free presence probe
        self.address = 0
        self.calib = b""
        self.calib_frame = None
        self.calib_seq = 0
        self.hello_stale = False
        self.config = {}
        self.online = False
        self.running = False
        self.i = 0
        self.seq = 0
        self.due = 0
        self.t0 = 0
        self.fails = 0
        self.errors = 0  # sensor_errors
        self.missing = 0  # samples_missing
        self.dropped = 0  # DATA frames refused by the ring
        self.frames = 0  # DATA frames built
        self.backoff_ms = 100
        self.retry_at = 0
        self.hist = None  # bench: array of |interval - period| counts (1 us buckets)
        self.last_late = 0
        self.jitter_max = 0

    # -- control (commands, boot) ---------------------------------------------------------
    def bind(self, driver):
        """Use `driver` (boot, or a sensor absent at boot that came back); allocates.  A driver
        whose ``FREE_RUNNING`` is true (optional, default False) has a no-op ``start()``, so
        sample() does not call it."""
        self.driver = driver
        self.read = driver.read_into
        self.restart = None if getattr(driver, "FREE_RUNNING", False) else driver.start

    def begin(self, now):
        """Start (or restart) sampling: fresh batch, first deadline one period from now."""
        self.i = 0
        self.fmiss = 0
        self.due = _ticks_add(now, self.period)
        self.running = True
        if self.online:
            try:
                self.driver.start()
            except OSError:
                pass

    def stop(self):
        self.running = False
        self.i = 0
        self.fmiss = 0

    # -- hot path -------------------------------------------------------------------------
    # sample() and run() are native: no bytecode dispatch (with the other changes here ~30%
    # fewer instructions per sample, counted with callgrind).  Native code allocates where
    # bytecode would and slice assignment allocates there too: none here (heap_lock tests).
    @micropython.native
    def sample(self, now, late):
        """Take the sample due at self.due, which passed `late` us ago (the Sampler computed it)."""
        p = self.period
        if late >= p:
            self.overrun(late, now)
            late = _ticks_diff(now, self.due)
        h = self.hist
        if h is not None:
            d = late - self.last_late
            if d < 0:
                d = -d
            if d > self.jitter_max:
                self.jitter_max = d
            if d >= len(h):
                d = len(h) - 1
            h[d] += 1
            self.last_late = late
        i = self.i
        due = self.due
        if i == 0:
            self.t0 = due
        if self.online:
            try:
                self.read(self.slots[i])
                self.fails = 0
            except OSError as e:
                self.failed(i, e.errno)
            start = self.restart
            if start is not None and self.online:
                try:
                    start()  # next conversion
                except OSError:
                    pass
        else:
            self.mark(i)
        self.due = _ticks_add(due, p)
        i += 1
        self.i = i
        if i >= self.batch:
            self.emit()

    def mark(self, i):
        """Sample i of the batch is missing: set its bitmap bit (clearing the bitmap first if
        it is the batch's first missing sample)."""
        if not self.fmiss:
            wire.clear_bitmap(self.frame, self.batch, self.bm)
        wire.mark_missing(self.frame, i, self.bm)
        self.fmiss += 1
        self.missing = (self.missing + 1) & _MASK30

    def failed(self, i, errno):
        self.mark(i)
        self.errors = (self.errors + 1) & _MASK30
        self.fails += 1
        if self.fails >= _FAILS_OFFLINE:
            self.health.offline(self, errno)

    def overrun(self, late, now):
        """Deadline missed by >= 1 period: every missed slot stays on the time axis.  Slots of
        a frame go out marked missing (the frame in progress, and the next ones as they fill).
        A whole frame that would hold nothing but missed slots is not built: its seq is skipped
        and counted in this stream's `dropped`, so the host's gap equals the device's drops and
        the next frame's t0 is exactly where the time axis puts it."""
        self.health.overruns = (self.health.overruns + 1) & _MASK30
        p = self.period
        batch = self.batch
        k = late // p
        while k > 0:
            i = self.i
            if i == 0:
                if k >= batch:
                    n = k // batch
                    self.due = _ticks_add(self.due, n * batch * p)  # < late: a small int
                    self.seq = (self.seq + n) & 0xFFFF
                    self.dropped = (self.dropped + n) & _MASK30
                    k -= n * batch
                    continue
                self.t0 = self.due
            self.mark(i)
            self.due = _ticks_add(self.due, p)
            k -= 1
            i += 1
            self.i = i
            if i >= batch:
                self.emit()

    def emit(self):
        """Pack the header of the full batch and queue the frame (dropped whole if no room)."""
        n = wire.pack_data(self.frame, self.sid, self.boot_id, self.seq, self.t0, self.period, self.batch, self.ss,
                           self.fmiss)
        self.fmiss = 0
        if not self.out.send(self.frame, n):
            self.dropped = (self.dropped + 1) & _MASK30
        self.seq = (self.seq + 1) & 0xFFFF  # also for a dropped frame: the host sees the gap
        self.frames = (self.frames + 1) & _MASK30
        self.i = 0
        self.period = self.new_period

    # -- presence (allocation-free) -------------------------------------------------------
    def probe(self):
        """True if the chip answers: an address-only write on I2C, a read for an ADC."""
        try:
            if self.bus is not None:
                self.bus.writeto(self.address, _EMPTY)
            elif self.driver is not None:
                self.driver.read_into(self.scratch)
            else:
                return False
            return True
        except OSError:
            return False


_EMPTY = bytearray(0)


class Sampler:
    """The loop: sample due streams, status, recovery, output, commands, watchdog."""

    def __init__(self, streams, out, health, commands, cfg, wdt=None):
        self.streams = tuple(streams)
        self.out = out
        self.health = health
        self.commands = commands
        self.wdt = wdt
        self.idle_us = cfg.get("idle_us_max", 2000)
        self.status_ms = cfg.get("status_period_ms", 1000)
        self.heap_lock = cfg.get("heap_lock", False)
        self.max_iterations = cfg.get("max_iterations", 0)
        self.spin_max = cfg.get("spin_us_max", _SPIN_MAX_US)
        self.iterations = 0
        self.sleeps = 0  # sleep_us calls of the last run()
        self.margin = 0  # sleep margin (us) at the end of the last run()
        self.busy_us = 0  # time spent in passes, not waiting, in the last run() (mod 2**30)
        self.locked = False

    def start(self, sid=255):
        now = _ticks_us()
        for s in self.streams:
            if sid == 255 or s.sid == sid:
                s.begin(now)

    def stop(self, sid=255):
        for s in self.streams:
            if sid == 255 or s.sid == sid:
                s.stop()

    def stream(self, sid):
        for s in self.streams:
            if s.sid == sid:
                return s
        return None

    def warm(self):
        """True once every running, online stream has sampled (heap_lock may start)."""
        for s in self.streams:
            if s.running and s.online and not s.frames and not s.i:
                return False
        return True

    @micropython.native
    def run(self):
        """Run until the host asks otherwise (or max_iterations); returns DONE/REPL/INTERRUPT/REBOOT.

        A pass samples the due streams and writes queued bytes; the housekeeping (STATUS,
        re-probing offline sensors, commands, watchdog) runs at most once per ticks_ms.  Then
        it waits for the next deadline (see below)."""
        streams = self.streams
        out = self.out
        ring = out.ring
        pump = out.pump
        health = self.health
        poll = self.commands.poll
        wdt = self.wdt
        idle = self.idle_us
        status_ms = self.status_ms
        max_it = self.max_iterations
        lock_at = _WARMUP if self.heap_lock else -1
        sleep_us = time.sleep_us
        ticks_us = _ticks_us  # locals: cheaper than globals in the loop
        ticks_diff = _ticks_diff
        ticks_add = _ticks_add
        spin_max = self.spin_max
        margin = 0
        sleeps = 0
        busy = 0
        it = 0
        last_ms = -1
        status_due = _ticks_add(_ticks_ms(), status_ms)
        feed_due = _ticks_ms()
        try:
            while True:
                now = ticks_us()
                wait = idle  # us from `now` to the next deadline
                for s in streams:
                    if s.running:
                        w = ticks_diff(s.due, now)
                        if w <= 0:
                            s.sample(now, -w)
                            w = ticks_diff(s.due, now)
                        if w < wait:
                            wait = w
                if ring.count:
                    pump()
                ms = _ticks_ms()
                if ms != last_ms:
                    last_ms = ms
                    if _ticks_diff(ms, status_due) >= 0:
                        health.status()
                        status_due = _ticks_add(status_due, status_ms)
                        if _ticks_diff(ms, status_due) >= 0:
                            status_due = _ticks_add(ms, status_ms)
                    if health.n_offline:
                        health.reprobe(ms)
                    r = poll()
                    if r:
                        return r
                    if wdt is not None and _ticks_diff(ms, feed_due) >= 0:
                        wdt.feed()
                        feed_due = _ticks_add(ms, _WDT_FEED_MS)
                if it < _MASK30:  # saturate: a larger int would be a heap object on a board
                    it += 1
                if it >= lock_at >= 0 and self.warm():
                    lock_at = -1
                    micropython.heap_lock()
                    self.locked = True
                    health.locked = True
                if it == max_it:
                    return DONE
                # Wait for the next deadline: sleep until `margin` us before it, then spin on
                # ticks_us for the rest.  `margin` tracks the 90th percentile of how late
                # sleep_us(n) returns (+9 us when a sleep overshot it, -1 us when not), capped
                # at spin_us_max.  On RP2040/ESP32 sleep_us of short waits is already a busy
                # wait that returns on time, so margin stays at a few us and this is the plain
                # sleep it always was.  On an OS (the unix port) a sleep returns tens of us
                # late (timer slack, wake-up latency): the margin grows to cover that, so
                # deadlines are hit within a few us at the cost of spinning about
                # (margin - typical overshoot) us per wake-up instead of a whole core.
                t = ticks_us()
                spent = ticks_diff(t, now)  # this pass's work (us)
                busy = (busy + spent) & _MASK30
                nxt = ticks_add(now, wait)
                wait -= spent
                if wait > margin:
                    sleep_us(wait - margin)
                    sleeps = (sleeps + 1) & _MASK30
                    t = ticks_us()
                    if ticks_diff(t, nxt) > 0:  # overshot by more than the margin: late
                        margin += _SPIN_UP
                        if margin > spin_max:
                            margin = spin_max
                    elif margin > 0:
                        margin -= _SPIN_DOWN
                elif margin > 0:  # no sleep: nothing late seen, let a margin that grew decay
                    margin -= _SPIN_DOWN
                while ticks_diff(nxt, ticks_us()) > 0:
                    pass
        finally:
            self.iterations = it
            self.sleeps = sleeps
            self.margin = margin
            self.busy_us = busy
            if self.locked:
                micropython.heap_unlock()
                self.locked = False
                health.locked = False
