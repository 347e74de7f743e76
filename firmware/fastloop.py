"""The sampling loop's steady-state passes in viper (MicroPython only; sampler.Sampler.run).

``run(t, st, ctx)`` runs whole loop passes (scan the streams, take the due samples, wait for
the next deadline) over compact arrays: ``t`` holds every stream's schedule row (schedule.py:
running, due, period, slot, t0, batch, chip online and fails, read mode), ``st`` the loop's
state (``ST_*`` below), ``ctx`` the C functions and per-stream objects it calls and writes:
``(ticks_us, ticks_ms, sleep_us, fns, bufs, slots)``.  A sample it takes is the one
``stream.Stream.sample`` would take (the reference) in its common case: the chip online and
readable without Python (``chip.FAST_U16``: ``fns[k]()`` stored big-endian into the frame
buffer ``bufs[k]``; ``chip.FAST_MEM``: ``fns[k](addr, reg, slots[k][i])``), on time (late by
less than a period) and not the frame's last.  Everything else goes back to Python, after the
scan has taken every fast sample due, shortest period first (rate-monotonic: a 10 ms ADC stream's
frame-ending sample, whose deadline meets the 100 ms BME280's and SHT31's, is not read 0.5-1.4 ms
late behind their Python reads and frames):

- returns k >= 0: stream k's due sample needs ``Stream.sample(st[NOW], st[LATE])`` (overrun,
  frame end, offline chip, a chip only Python reads); the next call rescans at the same ``now``;
- returns -1 (``POST``): the rest of the pass needs Python (a Python sample may have queued a
  frame, the ring was not empty, ``st[HK_US]`` us since the last pass that ended in Python (the
  housekeeping: judged on the pass's own ticks_us reading, so a pass reads no other clock),
  the pass count reached ``st[LIMIT]``); the next call (phase WAIT) waits for the next deadline
  and goes on;
- raises the OSError of a fast read: stream ``st[K]``'s read of its slot failed (its t0 set, its
  slot not yet advanced: ``Stream.read_failed``); the next call rescans at the same ``now``.

Ticks are ``now30`` values (schedule.py).  Viper ints are machine words; every value stored in
the arrays is kept below 2**30 and >= 0.  Nothing here allocates.
"""

import micropython
from micropython import const

# schedule row (= schedule.RUN ...; a const is inlined only in its own module)
_RUN = const(0)
_DUE = const(1)
_PER = const(2)
_I = const(3)
_T0 = const(4)
_BATCH = const(5)
_ON = const(6)
_FAILS = const(7)
_MODE = const(8)
_ADDR = const(9)
_REG = const(10)
_ROW = const(11)
_U16 = const(1)  # = chip.FAST_U16
_HEADER = const(20)  # = wire.HEADER_SIZE: sample 0's offset in a frame

# loop state: st[ST_*]
ST_PH = const(0)  # where the next call starts: PH_PASS, PH_SCAN (at st[NOW]) or PH_WAIT
ST_NOW = const(1)  # the pass's now30
ST_K = const(2)  # the stream handed to Python
ST_LATE = const(3)  # its lateness (us)
ST_WAIT = const(4)  # us from NOW to the next deadline (after the scan)
ST_FREE = const(5)  # unused (was the last housekeeping's ticks_ms)
ST_IT = const(6)  # passes (saturating at 2**30 - 1)
ST_LIMIT = const(7)  # a pass that would bring IT to LIMIT ends in Python (0: no limit)
ST_PY = const(8)  # Python took a sample in this pass
ST_RB = const(9)  # the ring held bytes after the last pump
ST_MARGIN = const(10)  # sleep margin (us): see Sampler.run
ST_SLEEPS = const(11)
ST_BUSY = const(12)  # us spent in passes (mod 2**30)
ST_IDLE = const(13)  # the longest wait (config idle_us_max)
ST_SPIN = const(14)  # cap of the margin (config spin_us_max)
ST_N = const(15)  # streams
ST_HK = const(16)  # now30 of the last pass that ended in Python (Sampler.run sets it)
ST_HK_US = const(17)  # us between housekeeping passes (config "housekeeping_us")
ST_SIZE = const(18)
PH_PASS = const(0)
PH_SCAN = const(1)
PH_WAIT = const(2)
POST = const(-1)

_MASK30 = const(0x3FFFFFFF)
_HALF = const(0x20000000)
_SPIN_UP = const(9)  # = sampler._SPIN_UP
_ON_TIME = const(2)  # a wake-up read this many us after the deadline is on time (the read's own cost)


@micropython.viper
def run(t, st, ctx) -> int:
    T = ptr32(t)  # noqa: F821 (viper built-in)
    S = ptr32(st)  # noqa: F821
    ticks_us = ctx[0]
    sleep_us = ctx[2]
    fns = ctx[3]
    bufs = ctx[4]
    slots = ctx[5]
    n = int(S[ST_N])
    idle = int(S[ST_IDLE])
    ph = int(S[ST_PH])
    while True:
        if ph != PH_WAIT:
            if ph == PH_PASS:
                now = int(ticks_us()) & _MASK30
                S[ST_NOW] = now
                S[ST_PY] = 0
                S[ST_PH] = PH_SCAN
            else:
                now = int(S[ST_NOW])
            wait = idle
            k = 0
            b = 0
            kp = -1  # the due stream with the shortest period that needs Python (rate-monotonic):
            late = 0  # handed back after the fast reads
            kpp = 0
            while k < n:
                if T[b + _RUN]:
                    due = int(T[b + _DUE])
                    w = ((due - now + _HALF) & _MASK30) - _HALF
                    if w <= 0:
                        p = int(T[b + _PER])
                        i = int(T[b + _I])
                        mode = int(T[b + _MODE])
                        if mode == 0 or T[b + _ON] == 0 or 0 - w >= p or i + 1 >= int(T[b + _BATCH]):
                            if kp < 0 or p < kpp:
                                kp = k
                                late = 0 - w
                                kpp = p
                            k += 1
                            b += _ROW
                            continue
                        if i == 0:
                            T[b + _T0] = due
                        S[ST_K] = k
                        if mode == _U16:
                            v = int(fns[k]())
                            d = ptr8(bufs[k])  # noqa: F821
                            o = _HEADER + (i << 1)
                            d[o] = (v >> 8) & 0xFF
                            d[o + 1] = v & 0xFF
                        else:
                            fns[k](T[b + _ADDR], T[b + _REG], slots[k][i])
                        T[b + _FAILS] = 0
                        due = (due + p) & _MASK30
                        T[b + _DUE] = due
                        T[b + _I] = i + 1
                        w = ((due - now + _HALF) & _MASK30) - _HALF
                    if w < wait:
                        wait = w
                k += 1
                b += _ROW
            if kp >= 0:
                S[ST_K] = kp
                S[ST_LATE] = late
                return kp
            if wait < 0:
                wait = 0
            it = int(S[ST_IT])
            lim = int(S[ST_LIMIT])
            hk = ((now - int(S[ST_HK])) & _MASK30) >= int(S[ST_HK_US])
            if S[ST_PY] or S[ST_RB] or hk or (lim and it + 1 >= lim):
                S[ST_WAIT] = wait
                S[ST_PH] = PH_WAIT
                return POST
            if it < _MASK30:
                S[ST_IT] = it + 1
        else:
            now = int(S[ST_NOW])
            wait = int(S[ST_WAIT])
        # the wait of Sampler.run: sleep to `margin` us before the deadline, spin the rest
        t1 = int(ticks_us()) & _MASK30
        spent = ((t1 - now + _HALF) & _MASK30) - _HALF
        S[ST_BUSY] = (int(S[ST_BUSY]) + spent) & _MASK30
        nxt = (now + wait) & _MASK30
        wait -= spent
        margin = int(S[ST_MARGIN])
        if wait > margin:
            sleep_us(wait - margin)
            S[ST_SLEEPS] = (int(S[ST_SLEEPS]) + 1) & _MASK30
            t1 = int(ticks_us()) & _MASK30
            if ((t1 - nxt + _HALF) & _MASK30) - _HALF > _ON_TIME:
                margin += _SPIN_UP
                if margin > int(S[ST_SPIN]):
                    margin = int(S[ST_SPIN])
            elif margin > 0:
                margin -= 1
        elif margin > 0:
            margin -= 1
        S[ST_MARGIN] = margin
        while ((nxt - t1 + _HALF) & _MASK30) - _HALF > 0:  # spin (t1: the last reading)
            t1 = int(ticks_us()) & _MASK30
        ph = PH_PASS
