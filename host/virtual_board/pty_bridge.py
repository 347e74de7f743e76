"""The serial link between host tools and the VM: two pseudo-terminals and a bridge between them.

Host tools open the slave of the *host* pty, exactly as they would open /dev/ttyACM0. The VM's
stdin/stdout is the slave of the *device* pty. The bridge in between is where a real link's
character lives: a line rate, a host that stops reading, bit errors, lost bytes, a port that
vanishes and comes back — and where a Ctrl-C turns into SIGINT, because that is what a real
port's USB stack does when the interrupt character is enabled.
"""
from __future__ import annotations

import array
import errno
import fcntl
import os
import random
import select
import termios
import threading
import time
import tty
from dataclasses import dataclass, field
from typing import Callable


F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
#: bytes the device can write before it blocks when nobody drains the link (USB CDC-like)
DEVICE_TX_BUFFER = 8192
#: how far a late pump thread may catch up on a line that had bytes waiting (a UART's shift register
#: does not stop while this process is descheduled); an idle line forfeits all but IDLE_SLACK_S
BACKLOG_S = 0.1
IDLE_SLACK_S = 0.02


def raw_pty() -> tuple[int, int, str]:
    """A pty pair with the slave fully raw: no echo, no line editing, no signals, no CR/LF mangling."""
    master, slave = os.openpty()
    tty.setraw(slave)
    attrs = termios.tcgetattr(slave)
    attrs[1] &= ~termios.OPOST  # setraw clears it already; say so explicitly, mpremote depends on it
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    return master, slave, os.ttyname(slave)


@dataclass
class BridgeFaults:
    """Faults on the wire; rates are per byte."""

    paused: bool = False  # the host stops reading: the device's writes back up
    bit_error_rate: float = 0.0
    drop_rate: float = 0.0
    disconnected: bool = False


@dataclass
class BridgeStats:
    to_host: int = 0
    to_device: int = 0
    bits_flipped: int = 0
    bytes_dropped: int = 0
    lost_while_disconnected: int = 0
    interrupts: int = 0
    reconnects: int = 0
    #: throttled line time (s) that carried nothing: the device's pipe was empty (idle), or it had
    #: bytes waiting but this process's pump thread ran later than BACKLOG_S allows (late)
    line_idle_s: float = 0.0
    line_late_s: float = 0.0
    extra: dict = field(default_factory=dict)


class PtyBridge:
    """Bridges the host pty and the device pty; the VM process behind it may come and go."""

    def __init__(self, rate: float | None, seed: int = 0,
                 on_device_output: Callable[[bytes], bytes] | None = None,
                 on_port_change: Callable[[str | None], None] | None = None):
        self.rate = rate
        self.faults = BridgeFaults()
        self.stats = BridgeStats()
        self._rng = random.Random(seed ^ 0x11CC)
        self._on_device_output = on_device_output
        self._on_port_change = on_port_change
        self.dev_master, self.dev_slave, _ = raw_pty()
        # The VM writes into a small pipe rather than the pty: a pty soaks up ~64 KiB before a
        # writer blocks, a USB CDC endpoint a few KiB, and backpressure should be felt as soon.
        self.dev_out_r, self.dev_out_w = os.pipe()
        fcntl.fcntl(self.dev_out_w, F_SETPIPE_SZ, DEVICE_TX_BUFFER)
        self.host_master, self.host_slave, self.port = raw_pty()
        self.vm_pid: int | None = None
        #: another way in for host tools (the esp32 profile's RFC 2217 port): takes the device's
        #: output while it returns True (a client is connected there)
        self.remote: Callable[[bytes], bool] | None = None
        #: who reads the host's bytes instead of the VM (the ESP32 ROM loader in download mode)
        self.device_sink: Callable[[bytes], None] | None = None
        self._last_sigint = 0.0
        self._stop = threading.Event()
        self._host_lock = threading.Lock()
        self._threads = [threading.Thread(target=self._pump_out, name="vboard-out", daemon=True),
                         threading.Thread(target=self._pump_in, name="vboard-in", daemon=True)]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=2)
        for fd in (self.dev_master, self.dev_slave, self.dev_out_r, self.dev_out_w, self.host_master,
                   self.host_slave):
            try:
                os.close(fd)
            except OSError:
                pass

    # -- VM side ---------------------------------------------------------------------------
    def flush_device_input(self) -> None:
        """A reset loses whatever the host had sent and the old VM had not read."""
        termios.tcflush(self.dev_slave, termios.TCIFLUSH)

    def inject_to_host(self, data: bytes) -> None:
        """Bytes that appear on the port without the VM writing them (e.g. `soft reboot`)."""
        self._to_host(data)

    def write_to_device(self, data: bytes) -> None:
        os.write(self.dev_master, data)

    # -- port disappearing -----------------------------------------------------------------
    def disconnect(self) -> None:
        with self._host_lock:
            if self.faults.disconnected:
                return
            self.faults.disconnected = True
            old = (self.host_master, self.host_slave)
            self.host_master = self.host_slave = -1
            self.port = None
        for fd in old:
            try:
                os.close(fd)
            except OSError:
                pass
        if self._on_port_change:
            self._on_port_change(None)

    def reconnect(self) -> str:
        with self._host_lock:
            if not self.faults.disconnected:
                return self.port
            self.host_master, self.host_slave, self.port = raw_pty()
            self.faults.disconnected = False
            self.stats.reconnects += 1
        if self._on_port_change:
            self._on_port_change(self.port)
        return self.port

    # -- pumps -----------------------------------------------------------------------------
    def _pump_out(self) -> None:
        """VM -> host, at the line rate, through the faults.

        The line keeps its own schedule (next_t: when it is free to send the next chunk). While
        the device has bytes waiting after a read (a backlog), the line never went idle, so a
        pump thread that was descheduled catches up on up to BACKLOG_S of line time, as a UART
        that kept clocking would have sent it: otherwise every late wake-up of this thread is
        capacity the device never had. After a read that emptied the pipe the line was idle
        and its unused time is gone (IDLE_SLACK_S covers the read's own timing)."""
        chunk = 4096 if not self.rate else max(16, min(4096, int(self.rate * 0.004)))
        next_t = time.monotonic()
        backlog = False
        waiting = array.array("i", [0])
        while not self._stop.is_set():
            if self.faults.paused:
                time.sleep(0.005)
                next_t = time.monotonic()
                continue
            r, _, _ = select.select([self.dev_out_r], [], [], 0.05)
            if not r:
                continue
            try:
                data = os.read(self.dev_out_r, chunk)
            except OSError as exc:
                if exc.errno in (errno.EIO, errno.EAGAIN):
                    time.sleep(0.01)
                    continue
                raise
            if self._on_device_output:
                data = self._on_device_output(data)
                if not data:
                    continue
            self._to_host(data)
            if self.rate:
                floor = time.monotonic() - (BACKLOG_S if backlog else IDLE_SLACK_S)
                if next_t < floor:
                    if backlog:
                        self.stats.line_late_s += floor - next_t
                    else:
                        self.stats.line_idle_s += floor - next_t
                    next_t = floor
                next_t += len(data) / self.rate
                fcntl.ioctl(self.dev_out_r, termios.FIONREAD, waiting)
                backlog = waiting[0] > 0
                delay = next_t - time.monotonic()
                if delay > 0:
                    time.sleep(delay)

    def _to_host(self, data: bytes) -> None:
        f = self.faults
        if f.bit_error_rate or f.drop_rate:
            data = self._corrupt(data)
        remote = self.remote
        if remote is not None and remote(data):
            self.stats.to_host += len(data)
            return
        while data and not self._stop.is_set():
            with self._host_lock:
                fd = self.host_master
                if fd < 0:
                    self.stats.lost_while_disconnected += len(data)
                    return
                try:
                    _, w, _ = select.select([], [fd], [], 0.05)
                    if not w:
                        continue  # the host is not reading: hold back, as a USB endpoint does
                    n = os.write(fd, data)
                except OSError:
                    continue
            self.stats.to_host += n
            data = data[n:]

    def _corrupt(self, data: bytes) -> bytes:
        rng, f = self._rng, self.faults
        out = bytearray()
        for b in data:
            if f.drop_rate and rng.random() < f.drop_rate:
                self.stats.bytes_dropped += 1
                continue
            if f.bit_error_rate and rng.random() < f.bit_error_rate:
                b ^= 1 << rng.randrange(8)
                self.stats.bits_flipped += 1
            out.append(b)
        return bytes(out)

    def _pump_in(self) -> None:
        """Host -> VM. A Ctrl-C becomes SIGINT only while the VM has its interrupt handler
        installed (running code with kbd_intr enabled); otherwise it is an ordinary byte, as
        on a real port after micropython.kbd_intr(-1) or at the REPL prompt."""
        while not self._stop.is_set():
            fd = self.host_master
            if fd < 0:
                time.sleep(0.02)
                continue
            try:
                r, _, _ = select.select([fd], [], [], 0.05)
                if not r:
                    continue
                data = os.read(fd, 4096)
            except OSError:
                # no process has the host port open (EIO) or it was just replaced
                time.sleep(0.01)
                continue
            if data:
                self.host_input(data)

    def host_input(self, data: bytes) -> None:
        """Bytes the host sent, from the pty or another way in (`remote`'s server)."""
        self.stats.to_device += len(data)
        sink = self.device_sink
        if sink is not None:
            sink(data)
            return
        if b"\x03" in data and self._vm_catches_sigint():
            self._interrupt()
            data = data.replace(b"\x03", b"")
        if data:
            try:
                os.write(self.dev_master, data)
            except OSError:
                pass

    def _vm_catches_sigint(self) -> bool:
        pid = self.vm_pid
        if pid is None:
            return False
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("SigCgt:"):
                        return bool(int(line.split()[1], 16) & (1 << (2 - 1)))
        except OSError:
            return False
        return False

    def _interrupt(self) -> None:
        # The unix port exits on a second SIGINT that arrives before the first was handled;
        # a real board just raises one KeyboardInterrupt. Space them out.
        now = time.monotonic()
        if now - self._last_sigint < 0.1 or self.vm_pid is None:
            return
        self._last_sigint = now
        self.stats.interrupts += 1
        try:
            os.kill(self.vm_pid, 2)
        except ProcessLookupError:
            pass
