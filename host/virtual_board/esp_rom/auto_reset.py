"""The DevKitC's auto-reset circuit: two transistors turn the USB-UART's DTR and RTS into EN and IO0.

pyserial's `dtr=True` / `rts=True` assert the lines (drive them low). The circuit pulls EN low
only for (DTR off, RTS on) and IO0 low only for (DTR on, RTS off); both asserted or both released
leaves the chip alone, which is why opening a port (pyserial asserts both) resets nothing.

EN has an RC delay (a capacitor on the EN pin): the chip leaves reset `EN_DELAY` after EN went
high and stayed high, and samples IO0 then. That is what lets esptool's classic sequence, which
passes through (DTR on, RTS on) on its way from "in reset" to "IO0 low, EN high", enter download
mode. On a USB-UART the two writes are microseconds apart and a 10 ms RC covers them; over RFC 2217
pyserial waits for the server's acknowledgement of each line change, polling every 50 ms, so the
steps are 50-100 ms apart and the modelled RC is 120 ms (esptool then holds IO0 low for another
100 ms: 50 ms reset_delay plus one more acknowledged write). IO0 is evaluated from the timestamped
line history, so a late timer cannot change the outcome.
"""
from __future__ import annotations

import threading
import time
from typing import Callable

EN_DELAY = 0.12  # s; see the module docstring


def en_io0(dtr: bool, rts: bool) -> tuple[bool, bool]:
    """(EN high, IO0 high) for the asserted states of DTR and RTS."""
    return not (rts and not dtr), not (dtr and not rts)


class AutoReset:
    """Feed it line changes; it calls `hold()` when EN goes low and `release(download)` when the
    chip comes out of reset, download = IO0 was low then."""

    def __init__(self, hold: Callable[[], None], release: Callable[[bool], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._hold = hold
        self._release = release
        self._clock = clock
        self._lock = threading.Lock()
        self.dtr = self.rts = False
        self._en = True
        self._io0: list[tuple[float, bool]] = [(clock(), True)]
        self._generation = 0

    def set_lines(self, dtr: bool | None = None, rts: bool | None = None) -> None:
        with self._lock:
            self.dtr = self.dtr if dtr is None else dtr
            self.rts = self.rts if rts is None else rts
            en, io0 = en_io0(self.dtr, self.rts)
            now = self._clock()
            if io0 != self._io0[-1][1]:
                recent = [e for e in self._io0[:-1] if e[0] > now - 1.0]
                self._io0 = recent + [self._io0[-1], (now, io0)]
            if en == self._en:
                return
            self._en = en
            self._generation += 1
            generation = self._generation
        if not en:
            self._hold()
            return
        rises_at = now + EN_DELAY
        timer = threading.Timer(max(0.0, rises_at - self._clock()), self._settled, (generation, rises_at))
        timer.daemon = True
        timer.start()

    def _settled(self, generation: int, at: float) -> None:
        with self._lock:
            if generation != self._generation:
                return  # EN went low again before the capacitor charged
            io0 = next((v for t, v in reversed(self._io0) if t <= at), True)
        self._release(not io0)
