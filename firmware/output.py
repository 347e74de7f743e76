"""Frames out: encode into a bounded ring, write to the link only when it can take bytes.

``Output.send(frame, n)`` CRCs and COBS-encodes frame[0:n] straight into the ring (no copy);
when the ring has no room the frame is dropped whole and counted (``dropped``), and the caller
keeps counting its seq, so the host sees the gap.  ``pump()`` writes at most ``chunk`` bytes per
write and only after ``select.poll`` reported POLLOUT, resuming partial writes, so the sampler
never waits on the host.  After ``__init__`` nothing here allocates (the poll object is made
once and ``ipoll`` is warmed up; ``stream.write(buf, off, n)`` takes no slice).

Link: ``{"kind": "usb_cdc"}`` (sys.stdout.buffer, the REPL's port) or
``{"kind": "uart", "id": 1, "baud": 921600, "tx": 4, "rx": 5}`` (machine.UART).
"""

import select
import sys

from micropython import const

import wire

_MASK30 = const(0x3FFFFFFF)
_POLLOUT = const(4)  # select.POLLOUT on every port


def open_link(spec):
    """The byte stream frames go to (and commands come from) for board.json "output"."""
    if spec and spec.get("kind") == "uart":
        import machine

        kw = {"baudrate": spec.get("baud", 115200)}
        if "tx" in spec:
            kw["tx"] = machine.Pin(spec["tx"])
        if "rx" in spec:
            kw["rx"] = machine.Pin(spec["rx"])
        u = machine.UART(spec.get("id", 1), **kw)
        return u, u
    return sys.stdout.buffer, sys.stdin.buffer


class Output:
    def __init__(self, stream, ring_bytes=8192, chunk=256):
        from ring import Ring

        fw = wire.fast()
        self.fast = fw is not wire
        self._finish = fw.finish_frame  # a module function: calling it creates nothing
        self.ring = Ring(bytearray(ring_bytes), fw.copy_into)
        self.stream = stream
        self._write = stream.write  # bound once
        self.chunk = chunk
        self.sent = 0  # frames completely written out
        self.dropped = 0  # frames refused by the ring (all types)
        self.bytes = 0
        self._poll = select.poll()
        self._poll.register(stream, select.POLLOUT)
        self._ipoll = self._poll.ipoll
        for _ in self._ipoll(0):  # warm-up: the first call sets up the result tuple
            pass

    def send(self, frame, n):
        """Queue frame[0:n] (header + body; 4 spare bytes after it for the CRC).
        Returns False when the ring had no room (counted in ``dropped``)."""
        ring = self.ring
        off = ring.reserve(n + 4 + (n + 4) // 254 + 3)
        if off < 0:
            self.dropped = (self.dropped + 1) & _MASK30
            return False
        ring.commit(self._finish(frame, n, ring.buf, off))
        return True

    def writable(self):
        for _ in self._ipoll(0):
            if _[1] & _POLLOUT:
                return True
        return False

    def pump(self, budget=8):
        """Up to `budget` non-blocking writes of queued bytes; returns the bytes written."""
        ring = self.ring
        write = self._write
        chunk = self.chunk
        total = 0
        while budget > 0:
            n = ring.pending()
            if n == 0:
                break
            if not self.writable():
                break
            if n > chunk:
                n = chunk
            k = write(ring.buf, ring.offset(), n)
            if not k:
                break
            if ring.consume(k):
                self.sent = (self.sent + 1) & _MASK30
            total += k
            budget -= 1
        self.bytes = (self.bytes + total) & _MASK30
        return total

    def flush(self, timeout_ms=500):
        """Write what is queued, waiting at most timeout_ms (boot, REPL exit, before a reset)."""
        import time

        t0 = time.ticks_ms()
        while self.ring.pending():
            if not self.pump(64):
                if time.ticks_diff(time.ticks_ms(), t0) > timeout_ms:
                    return False
                time.sleep_ms(1)
        return True
