"""The sampling loop: sample due streams, write queued frames, housekeeping, wait.

The per-stream work (schedule, frame, chip) lives in ``stream.Stream``; this module decides
when each runs.  ``Sampler.run()`` is the steady-state loop: it allocates nothing after its
warm-up passes (checked by running it under ``micropython.heap_lock()``, config "heap_lock").
Hot code uses locals, index stores, ``struct.pack_into`` (via wire.pack_header) and method
calls on objects (the few bound methods the loop calls are taken once, before it starts); no
floats, no strings, no new globals; every counter stays below 2**30 (masked or saturated: a
small int on a board).
"""

import time

import micropython
from micropython import const

_MASK30 = const(0x3FFFFFFF)
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
        self.ran_locked = False  # the last run() left its loop under heap_lock (the summary says so)

    def start(self, sid=255):
        now = _ticks_us()
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
            self.ran_locked = self.locked
            if self.locked:
                micropython.heap_unlock()
                self.locked = False
                health.locked = False
