"""The sampling loop: sample due streams, write queued frames, housekeeping, wait.

The per-stream work (schedule, frame, chip) lives in ``stream.Stream``; this module decides
when each runs.  ``Sampler.run()`` is the steady-state loop: it allocates nothing after its
warm-up passes (checked by running it under ``micropython.heap_lock()``, config "heap_lock").
Hot code uses locals, index stores, ``struct.pack_into`` (via wire.pack_header) and method
calls on objects (the few bound methods the loop calls are taken once, before it starts); no
floats, no strings, no new globals; every counter stays below 2**30 (masked or saturated: a
small int on a board).
"""

import gc
import time
from array import array

import micropython
from micropython import const

import fastloop
from schedule import ROW, now30

_MASK30 = const(0x3FFFFFFF)
_WDT_FEED_MS = const(100)
_SPIN_MAX_US = const(50)  # default cap of the sleep margin (config "spin_us_max"; fastloop's wait)
_HK_US = const(20000)  # default us between housekeeping passes (config "housekeeping_us")
_WARMUP = const(64)  # loop passes before heap_lock (first calls may allocate caches), and
# every running online stream must have taken a sample (its driver's first read_into may allocate)

# Sampler.run() results
DONE = const(0)  # max_iterations reached
REPL = const(1)  # the host asked for the REPL (CMD REPL)
INTERRUPT = const(2)  # Ctrl-C (0x03) from the host while streaming
REBOOT = const(3)  # CMD REBOOT (ACK sent)

_ST_NOW = const(1)  # = fastloop.ST_NOW ... (the loop state st)
_ST_K = const(2)
_ST_LATE = const(3)
_ST_IT = const(6)
_ST_LIMIT = const(7)
_ST_PY = const(8)
_ST_RB = const(9)
_ST_MARGIN = const(10)
_ST_SLEEPS = const(11)
_ST_BUSY = const(12)
_ST_IDLE = const(13)
_ST_SPIN = const(14)
_ST_N = const(15)
_ST_HK = const(16)
_ST_HK_US = const(17)

_ticks_ms = time.ticks_ms
_ticks_add = time.ticks_add
_ticks_diff = time.ticks_diff


def _limit(lock_at, max_it):
    """fastloop's ST_LIMIT: the first pass count whose pass must end in Python (0: none)."""
    lim = lock_at if lock_at > 0 else 0
    if max_it > 0 and (lim == 0 or max_it < lim):
        lim = max_it
    return lim


class Sampler:
    """The loop: sample due streams, status, recovery, output, commands, watchdog."""

    def __init__(self, streams, out, health, commands, cfg, wdt=None):
        self.streams = tuple(streams)
        self.out = out
        self.health = health
        self.commands = commands
        self.wdt = wdt
        self.idle_us = cfg.get("idle_us_max", _HK_US)
        self.status_ms = cfg.get("status_period_ms", 1000)
        self.heap_lock = cfg.get("heap_lock", False)
        self.max_iterations = cfg.get("max_iterations", 0)
        self.spin_max = cfg.get("spin_us_max", _SPIN_MAX_US)
        self.hk_us = cfg.get("housekeeping_us", _HK_US)
        self.iterations = 0
        self.sleeps = 0  # sleep_us calls of the last run()
        self.margin = 0  # sleep margin (us) at the end of the last run()
        self.busy_us = 0  # time spent in passes, not waiting, in the last run() (mod 2**30)
        self.locked = False
        self.ran_locked = False  # the last run() left its loop under heap_lock (the summary says so)
        # gc.mem_free() as the lock engaged and as the loop left it (-1: never locked): measured,
        # not inferred, so a bench can show the loop freed and allocated nothing (STATUS reuses
        # its figure under the lock, firmware/health.py)
        self.free_locked = [-1, -1]
        # fastloop's arrays: every stream's schedule row, the loop state, what it calls
        n = len(self.streams)
        self.table = array("i", bytes(4 * ROW * (n if n else 1)))
        self.st = array("i", bytes(4 * fastloop.ST_SIZE))
        fns = [None] * n
        for k in range(n):
            self.streams[k].place(self.table, k * ROW, fns, k)
        self.ctx = (time.ticks_us, time.ticks_ms, time.sleep_us, fns,
                    tuple(s.frame.buf for s in self.streams), tuple(s.slots for s in self.streams))

    def start(self, sid=255):
        now = now30()
        for s in self.streams:
            if sid == 255 or s.sid == sid:
                s.begin(now)

    def stop(self, sid=255):
        for s in self.streams:
            if sid == 255 or s.sid == sid:
                s.stop()

    def streaming(self):
        """True while any stream is running."""
        for s in self.streams:
            if s.running:
                return True
        return False

    def stream(self, sid):
        for s in self.streams:
            if s.sid == sid:
                return s
        return None

    def warm(self):
        """True once every running, online stream has sampled (heap_lock may start)."""
        for s in self.streams:
            if s.running and s.chip.online and not s.counts.frames and not s.i:
                return False
        return True

    @micropython.native
    def run(self):
        """Run until the host asks otherwise (or max_iterations); returns DONE/REPL/INTERRUPT/REBOOT.

        A pass samples the due streams and writes queued bytes; the housekeeping (STATUS,
        re-probing offline sensors, commands, watchdog) runs once per ``housekeeping_us`` (20 ms:
        a command waits that long at most, STATUS and the watchdog have slack in 100s of ms; on
        an RP2040 a housekeeping pass costs ~150 emulated us, most of it the look for commands,
        so at 5 ms it was a third of the loop's work at the shipped config).  Then
        it waits for the next deadline: it sleeps until `margin` us before it and spins on
        ticks_us for the rest.  `margin` tracks the 90th percentile of how late sleep_us(n)
        returns (+9 us when a sleep overshot it, -1 us when not), capped at spin_us_max.  On
        RP2040/ESP32 sleep_us of short waits is already a busy wait that returns on time, so
        margin stays at a few us and this is the plain sleep it always was.  On an OS (the unix
        port) a sleep returns tens of us late (timer slack, wake-up latency): the margin grows
        to cover that, so deadlines are hit within a few us at the cost of spinning about
        (margin - typical overshoot) us per wake-up instead of a whole core.

        The passes themselves run in ``fastloop.run`` (viper), which comes back here for what
        needs Python: a sample ``Stream.sample`` takes (frame ends, overruns, offline chips), a
        failed read, and the end of a pass that has bytes to pump, housekeeping or a pass
        count to check (warm-up, max_iterations)."""
        streams = self.streams
        out = self.out
        ring = out.ring
        pump = out.pump
        health = self.health
        poll = self.commands.poll
        wdt = self.wdt
        status_ms = self.status_ms
        max_it = self.max_iterations
        lock_at = _WARMUP if self.heap_lock else -1
        t = self.table
        st = self.st
        ctx = self.ctx
        run = fastloop.run
        hk_us = self.hk_us
        for k in range(fastloop.ST_SIZE):
            st[k] = 0
        # an idle wake-up only serves the housekeeping, so it comes once per housekeeping_us at most
        st[_ST_IDLE] = self.idle_us if self.idle_us < hk_us else hk_us
        st[_ST_SPIN] = self.spin_max
        st[_ST_N] = len(streams)
        st[_ST_HK_US] = self.hk_us
        st[_ST_LIMIT] = _limit(lock_at, max_it)
        it = 0
        status_due = _ticks_add(_ticks_ms(), status_ms)
        feed_due = _ticks_ms()
        try:
            while True:
                try:
                    k = run(t, st, ctx)
                except OSError as e:  # a fast read failed (its stream is st[K])
                    streams[st[_ST_K]].read_failed(e.errno)
                    st[_ST_PY] = 1
                    continue
                if k >= 0:
                    streams[k].sample(st[_ST_NOW], st[_ST_LATE])
                    st[_ST_PY] = 1
                    continue
                if ring.count:
                    pump()
                now = st[_ST_NOW]
                if (now - st[_ST_HK]) & _MASK30 >= hk_us:
                    st[_ST_HK] = now
                    ms = _ticks_ms()
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
                it = st[_ST_IT]
                if it < _MASK30:  # saturate: a larger int would be a heap object on a board
                    it += 1
                    st[_ST_IT] = it
                if it >= lock_at >= 0 and self.warm():
                    lock_at = -1
                    st[_ST_LIMIT] = _limit(lock_at, max_it)
                    micropython.heap_lock()
                    self.free_locked[0] = gc.mem_free()
                    self.locked = True
                    health.locked = True
                    health.free = self.free_locked[0]  # STATUS reuses it: one heap walk per lock
                if it == max_it:
                    return DONE
                st[_ST_RB] = 1 if ring.count else 0
        finally:
            self.iterations = st[_ST_IT]
            self.sleeps = st[_ST_SLEEPS]
            self.margin = st[_ST_MARGIN]
            self.busy_us = st[_ST_BUSY]
            self.ran_locked = self.locked
            if self.locked:
                self.free_locked[1] = gc.mem_free()
                micropython.heap_unlock()
                self.locked = False
                health.locked = False
