"""Idle fast-forward: skip the emulated cycles a firmware spends spinning on the timer.

rp2040py already jumps its clock to the next alarm while the core sleeps in WFI/WFE. MicroPython
v1.28's rp2 port rarely sleeps there: `time.sleep_ms`, `sleep_us` and a REPL waiting for input
poll `time_us_64()` (TIMERAWH/TIMERAWL) in a loop of ~100 cycles, measured here, so every emulated
microsecond of waiting costs the same wall time as work and a 2 s sleep took 28-48 s of wall time.

The skipper sits on the TIMER block's register reads (rp2040py dispatches them to Python). When
an instruction reads the raw time again within `gap_cycles` executed cycles, `streak` times
in a row, the core is spinning on the clock; each further read first advances the emulated clock
to the next scheduled event (a timer alarm, a USB frame, the serial pump), bounded by the kind
of loop. MicroPython's event wait (`sleep_ms`, a REPL waiting for input) reads the 64-bit time
(TIMERAWH then TIMERAWL) every ~500 cycles and has its deadline in a hardware alarm, so jumping to
the next alarm is exact: up to `max_skip_us`. A tight 64-bit spin (the SDK's `busy_wait_until`
behind `sleep_us`) and a Python loop on `ticks_us()` (TIMERAWL alone) compute their deadline
themselves: no alarm marks it, so they jump at most `fine_skip_us` and overshoot by at most that. Alarms due in the skipped span fire in order, as they would in WFI; the skipped time
adds to the emulated clock, never to the core's cycle counter (`core.cycles` stays the work done).
"""
from __future__ import annotations

TIMELR, TIMERAWH, TIMERAWL = 0x0C, 0x24, 0x28
_TIME_REGS = (TIMELR, TIMERAWL)


class SpinSkipper:
    """Installed over `mcu.timer.read_uint32`; `skipped_ns` is the emulated time it fast-forwarded."""

    def __init__(self, mcu, clock, *, gap_cycles: int = 2000, streak: int = 3,
                 max_skip_us: float = 1000.0, fine_skip_us: float = 10.0, tight_cycles: int = 200):
        self.mcu = mcu
        self.core = mcu.core
        self.clock = clock
        self.gap_cycles = gap_cycles
        self.need = streak
        self.max_skip_ns = max_skip_us * 1000.0
        self.fine_skip_ns = fine_skip_us * 1000.0
        self.tight_cycles = tight_cycles
        self._prev_offset = -1
        self.enabled = True
        self.skipped_ns = 0.0
        self.skips = 0
        self._sites: dict[int, tuple[int, int]] = {}  # reading instruction -> (cycles then, streak)
        self._read = mcu.timer.read_uint32
        mcu.timer.read_uint32 = self.read_uint32

    def uninstall(self) -> None:
        self.mcu.timer.read_uint32 = self._read

    def read_uint32(self, offset: int) -> int:
        if offset in _TIME_REGS and self.enabled:
            pc, cycles = self.core.pc, self.core.cycles
            last, streak = self._sites.get(pc, (-1 << 40, 0))
            streak = streak + 1 if 0 <= cycles - last < self.gap_cycles else 0
            if streak >= self.need:
                wide = self._prev_offset == TIMERAWH and cycles - last >= self.tight_cycles
                self._skip(self.max_skip_ns if wide else self.fine_skip_ns)
            self._sites[pc] = (cycles, streak)
        self._prev_offset = offset
        return self._read(offset)

    def _skip(self, delta: float) -> None:
        clock = self.clock
        if clock.has_scheduled_alarm:
            delta = min(delta, clock.nanos_to_next_alarm)
        if delta > 0:
            clock.tick(delta)
            self.skipped_ns += delta
            self.skips += 1
