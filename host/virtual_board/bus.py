"""Simulated I2C buses: route transactions to chips by address and apply bus-level faults.

Chips stay datasheet models; everything that goes wrong on wires (a chip unplugged, a flaky
contact, a stuck SDA line) happens here and surfaces as the errno a real port would raise:
ENODEV when the address is not acknowledged, EIO when a data byte is not, ETIMEDOUT after the
bus's timeout when the bus is stuck.
"""
from __future__ import annotations

import errno
import random
import threading
import time
from dataclasses import dataclass, field

from host.sensors.chip import I2CChip, Nack
from host.virtual_board.ipc import BusError


@dataclass
class ChipSlot:
    chip: I2CChip
    plugged: bool = True
    nack_rate: float = 0.0


@dataclass
class I2CBus:
    """One bus: its chips, its timeout, and whether it is stuck."""

    bus_id: int
    slots: dict[int, ChipSlot] = field(default_factory=dict)
    freq: int = 400_000
    timeout_us: int = 50_000
    stuck: bool = False

    def attach(self, chip: I2CChip) -> None:
        if chip.address in self.slots:
            raise ValueError(f"two chips at address 0x{chip.address:02x} on bus {self.bus_id}")
        self.slots[chip.address] = ChipSlot(chip)


class Buses:
    """All buses of a board plus the fault state; thread-safe against the fault API."""

    def __init__(self, seed: int = 0):
        self.buses: dict[int, I2CBus] = {}
        self._rng = random.Random(seed ^ 0x5EED)
        self._lock = threading.Lock()
        self.counters = {"transactions": 0, "nacks": 0, "timeouts": 0}
        self._continued: tuple[int, int] | None = None

    def bus(self, bus_id: int) -> I2CBus:
        if bus_id not in self.buses:
            self.buses[bus_id] = I2CBus(bus_id)
        return self.buses[bus_id]

    def slot(self, addr: int, bus_id: int | None = None) -> ChipSlot:
        for b in self.buses.values():
            if (bus_id is None or b.bus_id == bus_id) and addr in b.slots:
                return b.slots[addr]
        raise KeyError(f"no chip at address 0x{addr:02x}")

    # -- transactions ----------------------------------------------------------------------
    def _enter(self, bus_id: int, addr: int, roll: bool = True) -> ChipSlot:
        b = self.buses.get(bus_id)
        if b is None:
            raise BusError(errno.EINVAL, f"I2C bus {bus_id} does not exist")
        self.counters["transactions"] += 1
        if b.stuck:
            self.counters["timeouts"] += 1
            time.sleep(b.timeout_us / 1e6)  # the port waits its full timeout before giving up
            raise BusError(errno.ETIMEDOUT)
        slot = b.slots.get(addr)
        if slot is None or not slot.plugged:
            self.counters["nacks"] += 1
            raise BusError(errno.ENODEV)
        if roll and slot.nack_rate and self._rng.random() < slot.nack_rate:
            self.counters["nacks"] += 1
            raise BusError(errno.EIO)
        return slot

    def write(self, bus_id: int, addr: int, data: bytes, more: bool = False) -> None:
        """`more`: a read follows after a repeated START, as in readfrom_mem; the NACK rate then
        applies once to the combined transfer, not to each half."""
        with self._lock:
            self._continued = None
            slot = self._enter(bus_id, addr)
            if more:
                self._continued = (bus_id, addr)
            try:
                slot.chip.write(data)
            except Nack:
                self.counters["nacks"] += 1
                raise BusError(errno.EIO) from None

    def read(self, bus_id: int, addr: int, n: int) -> bytes:
        with self._lock:
            continued, self._continued = self._continued == (bus_id, addr), None
            slot = self._enter(bus_id, addr, roll=not continued)
            try:
                data = slot.chip.read(n)
            except Nack:
                self.counters["nacks"] += 1
                raise BusError(errno.EIO) from None
            return bytes(data)

    def scan(self, bus_id: int) -> bytes:
        b = self.buses.get(bus_id)
        if b is None:
            return b""
        if b.stuck:
            time.sleep(b.timeout_us / 1e6)
            raise BusError(errno.ETIMEDOUT)
        return bytes(sorted(a for a, s in b.slots.items() if s.plugged))
