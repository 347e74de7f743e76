"""Answers `I2C.scan()` at pin level: the address probes MicroPython's rp2 port bit-bangs.

The RP2040's I2C block cannot send a zero-length write, so `machine_i2c_transfer_single` switches
SDA and SCL to plain GPIO for one and runs the soft-I2C code (extmod/machine_i2c.c): open-drain
by direction, START, eight address bits, then it releases SDA for the ninth clock and reads the
ACK. None of that passes the peripheral's byte hooks (i2c_bridge.py), so scan() saw nobody.

This responder watches the two pins as the master drives them (LOW = driven low; released =
pulled up) and behaves like the devices on the bus during an address phase: START (SDA falls
while SCL is high), eight bits sampled on SCL's rising edges, then, if a plugged chip has that
address, SDA held low from SCL's falling edge after bit 8 until the falling edge after the ACK
clock. A stuck bus holds SCL low, so the soft-I2C clock-stretch wait times out (ETIMEDOUT) as on
a board whose bus is wedged. Data bytes after the address are not answered: only the port's
zero-length probes take this path.
"""
from __future__ import annotations

_IDLE, _ADDRESS, _ACK, _DONE = range(4)
_LOW = 0  # rp2040py GPIOPinState.LOW: the pin's output is enabled and low


class PinProbeResponder:
    """The devices on one bus as seen from pins `sda`/`scl` of `mcu` (rp2040py RP2040)."""

    def __init__(self, mcu, buses, bus_id: int, sda: int, scl: int):
        self.buses = buses
        self.bus_id = bus_id
        self.sda = mcu.gpio[sda]
        self.scl = mcu.gpio[scl]
        self._sda_high = self._scl_high = True
        self._state = _IDLE
        self._bits = 0
        self._count = 0
        self._acking = False
        self._holding_scl = False
        self.probes = 0
        self.sda.add_listener(self._on_sda)
        self.scl.add_listener(self._on_scl)

    def set_stuck(self, stuck: bool) -> None:
        """Hold SCL low (or let it go). Call on the emulator's thread."""
        if stuck and not self._holding_scl:
            self.scl.set_input_value(False)
        elif not stuck and self._holding_scl:
            self.scl.release_input()
        self._holding_scl = stuck

    def _on_sda(self, state, _old) -> None:
        high = int(state) != _LOW
        if high == self._sda_high:
            return
        self._sda_high = high
        if self._scl_high:
            if not high:  # START (or repeated START)
                self._state, self._bits, self._count = _ADDRESS, 0, 0
            else:  # STOP
                self._state = _IDLE
                self._release_sda()

    def _on_scl(self, state, _old) -> None:
        high = int(state) != _LOW
        if high == self._scl_high:
            return
        self._scl_high = high
        if self._state == _ADDRESS:
            if high:
                self._bits = (self._bits << 1) | self._sda_high
                self._count += 1
            elif self._count == 8:
                self.probes += 1
                if self._present(self._bits >> 1):
                    self._acking = True
                    self.sda.set_input_value(False)
                self._state = _ACK
        elif self._state == _ACK and not high:
            self._release_sda()
            self._state = _DONE

    def _release_sda(self) -> None:
        if self._acking:
            self._acking = False
            self.sda.release_input()

    def _present(self, addr: int) -> bool:
        bus = self.buses.buses.get(self.bus_id)
        if bus is None or bus.stuck:
            return False
        slot = bus.slots.get(addr)
        return slot is not None and slot.plugged
