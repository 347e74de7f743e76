"""`machine.Timer` for the virtual board: soft timers as on the rp2 and esp32 ports.

On a port a timer interrupt queues the callback with `mp_sched_schedule` and the VM runs it on the
main thread at its next bytecode boundary, in `sleep`, or while the REPL waits for a key. Here one
`_thread` (started with the first running timer, gone with the last) keeps the deadlines and queues
callbacks with `micropython.schedule`, so they too run on the main thread between bytecodes and in
`time.sleep*`. The unix port's REPL, though, waits in a blocking read(2) that only a signal ends,
so when a queued callback has not run within `_KICK_US` the thread runs `gc.collect()`: the unix
port's collector signals every other thread to scan its stack, the read returns EINTR, and the
port's retry loop runs the pending callbacks (measured: ~60 us per collection on a 192k heap; it
happens once per tick and only while the main thread is blocked, i.e. at the REPL).

A bus transaction of the `machine` shim is several bytecodes over shared buffers, where a real
port's is one C call that no soft callback interrupts. `machine` therefore marks a transaction
with `state[0]`; a callback that comes due inside one is deferred (`state[1]`) and queued again
when the transaction ends. A board hung inside a transaction never runs its timers, as on a port.

Resolution: deadlines are kept in microseconds (`ticks_us`), periodic deadlines advance by whole
periods (no drift); a callback starts typically 0.1-1 ms after its deadline with the VM running
Python code or sleeping, ~1.5-3 ms at the REPL (the kick above), later under host load; a timer
started while the thread naps for a later deadline may fire up to `_NAP_US` late once. A tick that
comes due while the previous callback of the same timer has not run yet is skipped, as is one
refused by a full schedule queue (the ports lose it too).

Allocation: after `init()`, the thread and the dispatch allocate nothing; a callback may allocate
what a soft callback on a port may (it runs with the main thread's heap lock state).
Differences from the ports: at most `_SLOTS` timers run at once (OSError ENOMEM beyond, rp2's error
when its alarm pool is full), and a running timer is kept referenced here (on rp2/esp32 an
unreferenced virtual Timer is stopped by its finaliser when collected).
"""
import gc
import os
import time

import _thread
import micropython
from micropython import const

_ONE_SHOT = const(0)
_PERIODIC = const(1)
_SLOTS = const(16)
_NAP_US = const(5000)  # longest nap of the timer thread
_KICK_US = const(1500)  # a queued callback not run by then: the main thread is blocked, wake it

_ESP32 = os.getenv("PAGERLESS_VB_PROFILE") == "esp32"
state = bytearray(2)  # [0]: machine is inside a bus transaction; [1]: callbacks were deferred
_slots = [None] * _SLOTS
_lock = _thread.allocate_lock()
_running = bytearray(1)  # the timer thread is alive
_ticks_us = time.ticks_us
_ticks_diff = time.ticks_diff
_ticks_add = time.ticks_add
_schedule = micropython.schedule


def _dispatch(t):
    """Runs on the main thread (micropython.schedule): the timer's callback, unless a bus
    transaction is under way, in which case it runs when that transaction ends."""
    if state[0]:
        t._deferred = 1
        state[1] = 1
        return
    t._pending = 0
    cb = t._cb
    if cb is not None:
        cb(t)


def resume():
    """Called by `machine` when a transaction ended with callbacks deferred: queue them again."""
    state[1] = 0
    for t in _slots:
        if t is not None and t._deferred:
            t._deferred = 0
            try:
                _schedule(_dispatch, t)
            except RuntimeError:  # queue full: this tick is lost
                t._pending = 0


def _loop():
    while True:
        _lock.acquire()
        now = _ticks_us()
        nap = _NAP_US
        live = 0
        kick = 0
        for t in _slots:
            if t is None:
                continue
            if t._pending:
                live = 1
                if not t._kicked and not t._deferred and _ticks_diff(now, t._fired) >= _KICK_US:
                    t._kicked = 1
                    kick = 1
                elif nap > _KICK_US:
                    nap = _KICK_US
            if not t._active:
                continue
            live = 1
            d = _ticks_diff(t._due, now)
            if d <= 0:
                if not t._pending:
                    t._pending = 1
                    t._kicked = 0
                    t._fired = now
                    try:
                        _schedule(_dispatch, t)
                        if nap > _KICK_US:
                            nap = _KICK_US
                    except RuntimeError:  # queue full: this tick is lost, as on a port
                        t._pending = 0
                if not t._periodic:
                    t._active = 0
                    continue
                due = _ticks_add(t._due, t._period)
                if _ticks_diff(due, now) <= 0:  # more than a period behind: no burst of catch-up ticks
                    due = _ticks_add(now, t._period)
                t._due = due
                d = _ticks_diff(due, now)
            if d < nap:
                nap = d
        if not live:
            _running[0] = 0
            _lock.release()
            return
        _lock.release()
        if kick:
            gc.collect()  # signals the main thread out of a blocking read (see the module docstring)
        time.sleep_us(nap if nap > 0 else 0)


class Timer:
    """rp2: Timer() / Timer(-1) only. esp32 profile: Timer(id) with -1 (virtual) or 0-3 (its
    hardware timers; here the same soft timers), `hard=True` refused as esp32 does."""

    ONE_SHOT = _ONE_SHOT
    PERIODIC = _PERIODIC

    def __init__(self, id=-1, **kwargs):
        if _ESP32:
            if not -1 <= id <= 3:
                raise ValueError("invalid Timer number, max 4")
        elif id != -1:
            raise ValueError("Timer doesn't exist")
        self._id = id
        self._slot = -1
        self._cb = None
        self._mode = _PERIODIC
        self._periodic = 1
        self._period = 1000000
        self._due = 0
        self._fired = 0
        self._active = 0
        self._pending = 0
        self._kicked = 0
        self._deferred = 0
        if kwargs:
            self.init(**kwargs)

    def init(self, *, mode=_PERIODIC, callback=None, period=0xFFFFFFFF, tick_hz=1000, freq=None, hard=None):
        if hard is not None:
            if not _ESP32:
                raise TypeError("unexpected keyword argument 'hard'")
            if hard:
                raise ValueError("hard Timers are not implemented")
        if freq is not None:
            if freq <= 0:
                raise ValueError("invalid freq")
            period_us = int(1000000 / freq)
        else:
            if tick_hz <= 0:
                raise ValueError("invalid tick_hz")
            period_us = period * 1000000 // tick_hz
        if period_us < 1:
            period_us = 1
        if period_us >= 0x40000000:
            raise ValueError("period too large")
        _lock.acquire()
        try:
            if self._slot < 0:
                for i in range(_SLOTS):
                    if _slots[i] is None:
                        self._slot = i
                        break
                else:
                    raise OSError(12)  # ENOMEM
            self._cb = callback
            self._mode = mode
            self._periodic = 1 if mode == _PERIODIC else 0
            self._period = period_us
            self._due = _ticks_add(_ticks_us(), period_us)
            self._active = 1
            _slots[self._slot] = self
            if not _running[0]:
                _running[0] = 1
                _thread.start_new_thread(_loop, ())
        finally:
            _lock.release()

    def deinit(self):
        _lock.acquire()
        self._active = 0
        self._pending = 0
        self._deferred = 0
        if self._slot >= 0:
            _slots[self._slot] = None
            self._slot = -1
        _lock.release()

    def __repr__(self):
        mode = "PERIODIC" if self._periodic else "ONE_SHOT"
        if _ESP32:
            return "Timer(%d, mode=%s, period=%d)" % (self._id, mode, self._period // 1000)
        return "Timer(mode=%s, tick_hz=1000000, period=%d)" % (mode, self._period)
