"""The emulated USB CDC on the virtual board's pty bridge.

The bridge (host/virtual_board/pty_bridge.py) gives host tools a raw pty with a real link's faults
(line rate, a host that stops reading, bit errors, lost bytes, a port that vanishes); its device
side is a pty to read host bytes from and a pipe to write device bytes into. This module connects
that device side to rp2040py's CDC host model: host bytes go into the CDC's IN FIFO as fast as the
firmware drains it (paced by an emulated-time alarm, never by wall-clock sleeps); device bytes go
from the CDC callback into a queue that a writer thread empties into the pipe.

A host that stops reading backs the device up as on silicon: rp2040py's USB host model takes every
IN packet the moment the firmware arms it, so this link holds back the controller's "buffer sent"
status of the CDC IN endpoint (BUFF_STATUS, as for an IN token the host never sends) while more
than HOLD_BYTES are queued here behind the pipe; tinyusb then sees its packet in flight, its TX
FIFO fills, `sys.stdout` stops polling writable and the firmware's ring drops and counts, as with
a real host that stopped reading.  The held statuses are released on the emulated clock once the
queue drains, so the emulated CPU itself never waits on the host.
"""
from __future__ import annotations

import os
import queue
import select
import threading

_PUMP_NS = 1_000_000  # retry a full IN FIFO after 1 ms of emulated time
# device bytes queued here (behind the bridge's pipe, DEVICE_TX_BUFFER) before the IN endpoint is
# held: with the pipe, about the few KiB a USB CDC path buffers before a write blocks
HOLD_BYTES = 4096
_RELEASE_NS = 1_000_000  # look again for a drained queue after 1 ms of emulated time


class CdcLink:
    """Moves bytes between `device.cdc` (rp2040py BaseDevice) and `bridge` (PtyBridge)."""

    def __init__(self, device, bridge):
        self.cdc = device.cdc
        self.sim = device.simulator
        self.bridge = bridge
        self._pending = bytearray()
        self._alarm = self.sim.clock.create_alarm(self._pump)
        self._out: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._stop = threading.Event()
        self.cdc.on_serial_data = self._from_device
        self._queued = 0  # device bytes taken from the CDC and not yet in the pipe
        self._qlock = threading.Lock()
        self._held: list[int] = []  # IN endpoints whose "buffer sent" status waits for the host
        self._release_alarm = self.sim.clock.create_alarm(self._release)
        self._release_due = False  # (the native clock's alarms do not say whether they are set)
        usb = self.cdc.usb
        self._ready = usb._indicate_buffer_ready  # rp2040py's controller model (private: pinned version)
        usb._indicate_buffer_ready = self._buffer_ready
        self._threads = [threading.Thread(target=self._write_out, name="erp2040-out", daemon=True),
                         threading.Thread(target=self._read_in, name="erp2040-in", daemon=True)]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def close(self) -> None:
        self._stop.set()
        self._out.put(None)
        for t in self._threads:
            t.join(timeout=2)

    def _from_device(self, data) -> None:
        with self._qlock:
            self._queued += len(data)
        self._out.put(bytes(data))

    def _backed_up(self) -> bool:
        return self._queued > HOLD_BYTES

    def _buffer_ready(self, endpoint: int, out: bool) -> None:
        """The controller's BUFF_STATUS for `endpoint`: for the CDC IN endpoint held back while
        the host is not taking the device's bytes (see the module docstring)."""
        if not out and endpoint == self.cdc._in_endpoint and (self._held or self._backed_up()):
            self._held.append(endpoint)
            if not self._release_due:
                self._release_due = True
                self._release_alarm.schedule(_RELEASE_NS)
            return
        self._ready(endpoint, out)

    def _release(self) -> None:
        if self._backed_up() and not self._stop.is_set():
            self._release_alarm.schedule(_RELEASE_NS)
            return
        self._release_due = False
        held, self._held = self._held, []
        for endpoint in held:
            self._ready(endpoint, False)

    def _write_out(self) -> None:
        while True:
            data = self._out.get()
            if data is None or self._stop.is_set():
                return
            while data and not self._stop.is_set():
                try:
                    n = os.write(self.bridge.dev_out_w, data)
                except BlockingIOError:
                    select.select([], [self.bridge.dev_out_w], [], 0.05)
                    continue
                except OSError:
                    return
                data = data[n:]
                with self._qlock:
                    self._queued -= n

    def _read_in(self) -> None:
        fd = self.bridge.dev_slave
        while not self._stop.is_set():
            try:
                r, _, _ = select.select([fd], [], [], 0.05)
                if not r:
                    continue
                data = os.read(fd, 4096)
            except OSError:
                return
            if data:
                self.sim.schedule_threadsafe(lambda d=data: self._to_device(d))

    def _to_device(self, data: bytes) -> None:
        self._pending += data
        self._pump()

    def _pump(self) -> None:
        fifo = self.cdc.tx_fifo
        free = max(fifo.size - fifo.item_count, 0)
        if free:
            chunk = self._pending[:free]
            del self._pending[:free]
            for b in chunk:
                self.cdc.send_serial_byte(b)
        if self._pending:
            self._alarm.schedule(_PUMP_NS)
