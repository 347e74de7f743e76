"""The emulated USB CDC on the virtual board's pty bridge.

The bridge (host/virtual_board/pty_bridge.py) gives host tools a raw pty with a real link's faults
(line rate, a host that stops reading, bit errors, lost bytes, a port that vanishes); its device
side is a pty to read host bytes from and a pipe to write device bytes into. This module connects
that device side to rp2040py's CDC host model: host bytes go into the CDC's IN FIFO as fast as the
firmware drains it (paced by an emulated-time alarm, never by wall-clock sleeps); device bytes go
from the CDC callback into a queue that a writer thread empties into the pipe, so a host that
stops reading never stalls the emulated CPU (the firmware's USB writes do not block on it either:
a difference from silicon, stated in docs/emulated-rp2040.md).
"""
from __future__ import annotations

import os
import queue
import select
import threading

_PUMP_NS = 1_000_000  # retry a full IN FIFO after 1 ms of emulated time


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
        self._out.put(bytes(data))

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
