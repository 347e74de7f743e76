"""The RP2040's I2C peripheral, byte by byte, onto the virtual board's bus model.

rp2040py calls a hook for each bus event of its I2C block (START, address, data byte, STOP) and
waits for the answer; the chips (host/sensors) and the faults (host/virtual_board/bus.py) think in
transfers: "write these bytes", "read n bytes". This module turns one into the other:

- a write's bytes are collected and handed to the bus as one transfer when it ends: at its last
  byte when that byte carries STOP (a NACK then lands on that byte: EIO, as on silicon), or at the
  repeated START of a register read (`more=True`, so the NACK rate applies once to the pair; a
  failure then NACKs the read's address, also EIO);
- a read asks the bus for READ_AHEAD bytes at its address phase (where a busy SHT31 NACKs) and
  serves them one by one; the peripheral never says how many bytes a read wants. Register windows
  and fixed outputs are safe to read ahead (it only moves a pointer every transfer sets again
  first), a FIFO port is not: where the chip says a read consumes (`read_consumes()`, the
  MPU-6050's FIFO_R_W), the bridge takes one byte at a time, as the master clocks it (a 350-byte
  burst read ahead in 32-byte steps popped 2 bytes of the next sample, and the firmware saw a
  FIFO count that was no whole number of samples);
- a hung board (`EmulatedBoard.hang()`) leaves the address phase unanswered for good;
- a stuck bus answers nothing: the address phase completes with a NACK only after the bus's
  timeout, so the firmware's own I2C timeout (ETIMEDOUT) fires first, as with a held SCL.

Zero-length writes (`I2C.scan()`) never reach this peripheral: see pin_probe.py.
"""
from __future__ import annotations

from collections.abc import Callable

from host.sensors.chip import Nack
from host.virtual_board.bus import Buses
from host.virtual_board.ipc import BusError

READ_AHEAD = 32
_TX_EMPTY = 1 << 4  # IC_RAW_INTR_STAT.TX_EMPTY
_TX_ABRT = 1 << 6  # IC_RAW_INTR_STAT.TX_ABRT
Schedule = Callable[[float, Callable[[], None]], object]  # (delay in emulated ns, callback) -> alarm


class I2CBridge:
    """Wires `peripheral` (rp2040py's RPI2C) to bus `bus_id` of `buses`; callbacks run on the
    emulator's thread, inside the emulated register access that triggered them. `hang`, asked at
    each address phase, says when this transfer is the one a hung board never finishes."""

    def __init__(self, peripheral, buses: Buses, bus_id: int, schedule: Schedule,
                 hang: Callable[[], bool] | None = None):
        self.p = peripheral
        self.buses = buses
        self.bus_id = bus_id
        self._schedule = schedule
        self._hang = hang
        self._addr: int | None = None
        self._wbuf = bytearray()
        self._writing = False
        self._rbuf = b""
        self._rpos = 0
        self._fail_next = False
        self._stalled = None
        peripheral.on_start = self._on_start
        peripheral.on_connect = self._on_connect
        peripheral.on_write_byte = self._on_write_byte
        peripheral.on_read_byte = self._on_read_byte
        peripheral.on_stop = self._on_stop

    def _on_start(self, repeated: bool) -> None:
        if self._writing and not self._flush(more=repeated) and repeated:
            self._fail_next = True
        self.p.complete_start()

    def _on_connect(self, address: int, mode: int) -> None:
        if self._hang is not None and self._hang():
            return
        addr = address & 0x7F
        bus = self.buses.buses.get(self.bus_id)
        if bus is not None and bus.stuck:
            self._stalled = self._schedule(bus.timeout_us * 1000.0 + 1000.0, self.release_stall)
            return
        failed, self._fail_next = self._fail_next, False
        self._addr = addr
        if failed:
            self.p.complete_connect(False)
            return
        if mode == 0:  # write
            slot = bus.slots.get(addr) if bus is not None else None
            ok = slot is not None and slot.plugged
            self._writing = ok
            self._wbuf.clear()
            self.p.complete_connect(ok)
            return
        try:
            self._rbuf = self.buses.read(self.bus_id, addr, self._ahead(addr))
        except BusError:
            self.p.complete_connect(False)
            return
        self._rpos = 0
        self.p.complete_connect(True)

    def release_stall(self) -> None:
        """End an address phase a stuck bus left hanging (NACK): when the bus's timeout has passed,
        or at once when the bus comes free, so the next transfer finds the block idle. Call on the
        emulator's thread."""
        alarm, self._stalled = self._stalled, None
        if alarm is not None:
            alarm.cancel()
            self.p.complete_connect(False)
            # The SDK gave up on this transfer at its own timeout; the abort it leaves must not
            # fail the next one (silicon clears it when the SDK disables the block to start anew).
            self.p.abort_source = 0
            self.p._clear_interrupts(_TX_ABRT)

    def _on_write_byte(self, value: int) -> None:
        self._wbuf.append(value)
        if self.p._stop:  # the peripheral's own flag: this command byte carries STOP
            self.p.complete_write(self._flush(more=False))
        else:
            self.p.complete_write(True)

    def _on_read_byte(self, ack: bool) -> None:
        if self._rpos >= len(self._rbuf):
            self._rbuf = self._rbuf[self._rpos:] + self._read_more()
            self._rpos = 0
        value = self._rbuf[self._rpos]
        self._rpos += 1
        self.p.complete_read(value)

    def _on_stop(self) -> None:
        if self._writing:
            self._flush(more=False)
        self._addr = None
        self.p.complete_stop()
        if self.p._tx_fifo.empty:
            # TX_EMPTY is a level on silicon (IC_CON.TX_EMPTY_CTRL: FIFO empty and the last command
            # done); rp2040py raises it only when it pulls a command, not after an abort flushed the
            # FIFO, so the SDK's wait for it after an address NACK ran into its timeout (ETIMEDOUT
            # where the rp2 port reports EIO).
            self.p._set_interrupts(_TX_EMPTY)

    def _flush(self, *, more: bool) -> bool:
        """Hand the collected write to the bus as one transfer; False when it was not acknowledged."""
        self._writing = False
        data, self._wbuf = bytes(self._wbuf), bytearray()
        try:
            self.buses.write(self.bus_id, self._addr, data, more=more)
        except BusError:
            return False
        return True

    def _read_more(self) -> bytes:
        """A read longer than READ_AHEAD continues from the chip directly; a chip with nothing more
        to say leaves the line released (0xFF)."""
        try:
            chip = self.buses.slot(self._addr, self.bus_id).chip
            return bytes(chip.read(_chunk(chip)))
        except (Nack, KeyError):
            return b"\xff" * READ_AHEAD

    def _ahead(self, addr: int) -> int:
        """Bytes to take at a read's address phase (_chunk; READ_AHEAD where no chip answers)."""
        try:
            return _chunk(self.buses.slot(addr, self.bus_id).chip)
        except KeyError:
            return READ_AHEAD


def _chunk(chip) -> int:
    """Bytes to take from `chip` at once: READ_AHEAD, or 1 where a read consumes (module docstring)."""
    return 1 if chip.read_consumes() else READ_AHEAD
