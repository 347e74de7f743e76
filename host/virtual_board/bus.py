"""Simulated I2C buses: route transactions to chips by address and apply bus-level faults.

Chips stay datasheet models; everything that goes wrong on wires (a chip unplugged, a flaky
contact, a stuck SDA line) happens here and surfaces as the errno a real port would raise:
ENODEV when the address is not acknowledged, EIO when a data byte is not, ETIMEDOUT after the
bus's timeout when the bus is stuck.

Wire time (`wire_time`, on unless the board runs in the benchmark-only "instant" bus mode): a
transaction takes as long as its bits on a real bus at the bus's frequency: 9 bits per byte
(8 data + ACK) including the address bytes, one bit time each for START, repeated START and STOP,
plus any clock stretching by the chip (the SHT31 holds SCL low until a measurement ends). A
14-byte register read is 1 + 9 + 9 + 1 + 9 + 14 * 9 + 1 = 156 bits: 0.39 ms at 400 kHz, 2,564
reads/s, as on a real bus. The reply to the VM is held until then (the VM's `ticks_us` sees the
wire time plus the FIFO round trip, ~20-40 us on a quiet machine). Rise times and the port's own
per-byte gaps are not modelled, nor the ~10 us an rp2 spends per transaction in its driver.
"""
from __future__ import annotations

import ctypes
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


def bits(n_bytes: int, starts: int = 1) -> int:
    """Bit times of `n_bytes` bytes on the wire (each with its ACK), `starts` START/repeated START
    conditions and one STOP."""
    return 9 * n_bytes + starts + 1


_PR_SET_TIMERSLACK = 29


def _precise_sleeps() -> None:
    """Let this thread's sleeps end within ~1 us of their deadline (Linux defers them by up to
    50 us by default to batch wake-ups); best effort."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_TIMERSLACK, 1000, 0, 0, 0)
    except (OSError, AttributeError):
        pass


class Buses:
    """All buses of a board plus the fault state; thread-safe against the fault API."""

    def __init__(self, seed: int = 0, wire_time: bool = True):
        self.buses: dict[int, I2CBus] = {}
        self._rng = random.Random(seed ^ 0x5EED)
        self._lock = threading.Lock()
        # wire_ns: the bus time the wire model charged (bits at the bus's rate, clock stretching)
        self.counters = {"transactions": 0, "nacks": 0, "timeouts": 0, "wire_ns": 0}
        self._continued: tuple[int, int] | None = None
        self.wire_time = wire_time
        self._t0 = 0.0  # start of the transaction in progress (perf_counter)
        self._paced: set[int] = set()  # threads whose timer slack is set

    # -- wire time ---------------------------------------------------------------------------
    def _begin(self, continued: bool) -> None:
        if not continued:
            self._t0 = time.perf_counter()

    def _pace(self, b: I2CBus | None, n_bits: int, stretch_s: float = 0.0) -> None:
        """Hold the caller until `n_bits` more bit times (and `stretch_s`) have passed since the
        transaction began: sleep all but the last 0.3 ms, spin for those (a wake-up from sleep
        is late by 50-300 us on a busy machine, most of a 14-byte read; the VM waits meanwhile,
        as a CPU does on a blocking I2C transfer)."""
        if not self.wire_time or b is None:
            return
        self._t0 += n_bits / b.freq + stretch_s
        self.counters["wire_ns"] += round((n_bits / b.freq + stretch_s) * 1e9)
        tid = threading.get_ident()
        if tid not in self._paced:
            self._paced.add(tid)
            _precise_sleeps()
        left = self._t0 - time.perf_counter()
        if left > 0.0005:
            time.sleep(left - 0.0003)
        while time.perf_counter() < self._t0:
            pass

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
        applies once to the combined transfer, not to each half (and no STOP is sent between)."""
        with self._lock:
            self._continued = None
            self._begin(False)
            b = self.buses.get(bus_id)
            try:
                slot = self._enter(bus_id, addr)
            except BusError as exc:
                if exc.errno != errno.ETIMEDOUT:
                    self._pace(b, bits(1))  # START, the address NACKed, STOP
                raise
            if more:
                self._continued = (bus_id, addr)
            try:
                slot.chip.write(data)
            except Nack:
                self.counters["nacks"] += 1
                self._pace(b, bits(2))  # the first data byte NACKed, then STOP
                raise BusError(errno.EIO) from None
            self._pace(b, bits(1 + len(data)) - (1 if more else 0))

    def read(self, bus_id: int, addr: int, n: int) -> bytes:
        with self._lock:
            continued, self._continued = self._continued == (bus_id, addr), None
            self._begin(continued)
            b = self.buses.get(bus_id)
            try:
                slot = self._enter(bus_id, addr, roll=not continued)
            except BusError as exc:
                if exc.errno != errno.ETIMEDOUT:
                    self._pace(b, bits(1))
                raise
            slot.chip.stretch_s = 0.0
            try:
                data = slot.chip.read(n)
            except Nack:
                self.counters["nacks"] += 1
                self._pace(b, bits(1))
                raise BusError(errno.EIO) from None
            self._pace(b, bits(1 + n), slot.chip.stretch_s)
            return bytes(data)

    def scan(self, bus_id: int) -> bytes:
        """As the ports do: a zero-length write to each address 0x08..0x77."""
        b = self.buses.get(bus_id)
        if b is None:
            return b""
        if b.stuck:
            time.sleep(b.timeout_us / 1e6)
            raise BusError(errno.ETIMEDOUT)
        with self._lock:
            self._begin(False)
            self._pace(b, (0x78 - 0x08) * bits(1))
        return bytes(sorted(a for a, s in b.slots.items() if s.plugged))
