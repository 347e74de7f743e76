"""The fault API a simulated board offers tests, scenarios and the control socket: chips unplugged,
NACKing, frozen or answering with a wrong id, a stuck bus, and link faults (backpressure, bit errors,
lost bytes, a slower line, the port vanishing). One definition for the virtual board and the
emulated RP2040, which share the chip slots (host/virtual_board/bus.py) and the pty bridge.

A board class mixes this in and provides `chips` (kind -> chip model), `buses` and `link`.
"""
from __future__ import annotations

import threading


class FaultApi:
    def chip(self, which: str | int):
        """A chip by kind ("bme280") or I2C address."""
        if isinstance(which, int):
            return self.buses.slot(which).chip
        if which not in self.chips:
            raise KeyError(f"no chip {which!r}; this board has {', '.join(self.chips)}")
        return self.chips[which]

    def _slot(self, which: str | int):
        return self.buses.slot(self.chip(which).address)

    # -- chip faults (the bus model) ---------------------------------------------------------
    def unplug(self, which: str | int) -> None:
        self._slot(which).plugged = False

    def replug(self, which: str | int) -> None:
        self._slot(which).plugged = True

    def set_nack_rate(self, which: str | int, rate: float) -> None:
        if not 0 <= rate <= 1:
            raise ValueError("NACK rate must be between 0 and 1")
        self._slot(which).nack_rate = rate

    def set_bus_stuck(self, stuck: bool, bus: int = 0) -> None:
        self.buses.bus(bus).stuck = bool(stuck)

    def freeze(self, which: str | int, frozen: bool = True) -> None:
        self.chip(which).freeze(frozen)

    def set_wrong_id(self, which: str | int, wrong: bool = True) -> None:
        self.chip(which).set_wrong_id(wrong)

    # -- link faults (the pty bridge) -------------------------------------------------------
    def set_backpressure(self, paused: bool) -> None:
        self.link.faults.paused = paused

    def set_bit_error_rate(self, rate: float) -> None:
        self.link.faults.bit_error_rate = rate

    def set_drop_rate(self, rate: float) -> None:
        self.link.faults.drop_rate = rate

    def disconnect(self, duration: float | None = None) -> None:
        """The USB port vanishes; with a duration it comes back (under a new pty name) after it."""
        self.link.disconnect()
        if duration is not None:
            threading.Timer(duration, self.link.reconnect).start()

    def reconnect(self) -> str:
        return self.link.reconnect()
