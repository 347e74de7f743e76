"""Frames out: encode into a bounded ring, write to the link only when it can take bytes.

``Output.send(frame, n)`` CRCs and COBS-encodes frame[0:n] straight into the ring (no copy);
when the ring has no room the frame is dropped whole and counted (``dropped``), and the caller
keeps counting its seq, so the host sees the gap.  DATA frames go through
``send_data(frame, n, sid)``, which applies the fair-share policy below first.

Fair share (when the link is saturated).  Every stream registered with ``add_stream`` holds a
byte credit.  The link's drain refills it: each byte ``pump()`` writes is split equally among
the streams whose credit is below their cap (water-filling: what a capped stream cannot take
is carried to the others on the next refill), so credit flows at the link's rate, max-min fair
in bytes.  Admitting a DATA frame costs its wire bytes.  A DATA frame is admitted when

1. its stream's credit covers the frame (it has earned those bytes), or
2. the ring stays below its high-water mark (a quarter of the ring) with the frame in it, and the
   stream's debt after it stays within its cap (borrowing while the link keeps up);

otherwise the stream yields: the frame is dropped whole, counted in the stream's
``frames_dropped`` (and in the global ``dropped``, with ``yielded`` saying how many of those
the policy chose).  The cap (``add_stream``) bounds how far a stream's admitted bytes can run
ahead of its refills (twice the cap): at saturation each stream gets its
max-min fair share of the link, a stream that offers less than its share loses nothing to the
policy, and a heavy one cannot starve a light one by arriving first.  Credit is conserved
(every admitted byte is paid for by a drained one), so when the ring is empty some stream holds
credit and the link cannot stall on the policy; the refill left over (``carry``) is handed out
then.  Other frame types (HELLO, STATUS, EVENT, ACK) are admitted whenever the ring has room,
and DATA always leaves them ``keep`` bytes (a STATUS with a record per registered stream and an
ACK, at least ``_KEEP``): with the link stalled and the ring full of samples the host's command
is still ACKed and its SEND_STATUS answered (the counters it reconciles with).  A fixed 128 bytes
held a STATUS of two streams; one of 16 is 469 wire bytes and was refused at a full ring.

``pump()`` writes at most ``chunk`` bytes per write and only after ``select.poll`` reported POLLOUT, resuming partial writes, so the sampler
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
_KEEP = const(128)  # ring bytes DATA may not take without streams: a STATUS and an ACK (56 + 40 wire bytes)
_ACK_RING = const(44)  # an ACK's reservation in the ring (HEADER + 8 + CRC, COBS, delimiters, prefix)


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
        self.yielded = 0  # DATA frames refused by the fair-share policy (also in dropped)
        self.queued = 0  # wire bytes in the ring, not yet written
        self.high = ring_bytes // 4  # the ring's high-water mark (fair share)
        self.keep = _KEEP  # ring bytes DATA leaves to STATUS and ACK (add_stream sizes it)
        self.credit = []  # per stream id: bytes it may send (negative: borrowed)
        self.cap = []  # per stream id: most credit it banks (and most it may borrow)
        self._frame = []  # per stream id: two of its largest frames (wire bytes)
        self.carry = 0  # refill bytes no stream could take yet
        self._poll = select.poll()
        self._poll.register(stream, select.POLLOUT)
        self._ipoll = self._poll.ipoll
        for _ in self._ipoll(0):  # warm-up: the first call sets up the result tuple
            pass

    def add_stream(self, sid, frame_bytes):
        """Register stream `sid` (0, 1, ...) for the fair share; frame_bytes: its largest DATA
        frame before the CRC.  Set-up only (allocates).  A stream's cap is two of its frames,
        or its equal part of the ring if that is more: a link that drains in bursts (a USB
        FIFO or a pipe taking a page at a time) hands out a ring's worth of credit at once, and
        a cap below a stream's part would pass the rest to the streams with bigger frames,
        sharing the link by frames instead of bytes."""
        while len(self.credit) <= sid:
            self.credit.append(0)
            self.cap.append(0)
            self._frame.append(0)
        self._frame[sid] = 2 * (frame_bytes + 4 + (frame_bytes + 4) // 254 + 3)
        n = wire.HEADER_SIZE + wire.STATUS_SIZE + wire.STATUS_STREAM_SIZE * len(self.credit)
        keep = n + 4 + (n + 4) // 254 + 3 + 2 + _ACK_RING  # as send() reserves it, + the ring's prefix
        self.keep = keep if keep > _KEEP else _KEEP
        part = self.ring.size // len(self.credit)
        for i in range(len(self.credit)):
            cap = self._frame[i] if self._frame[i] > part else part
            self.cap[i] = cap
            self.credit[i] = cap

    def send(self, frame, n):
        """Queue frame[0:n] (header + body; 4 spare bytes after it for the CRC).
        Returns the wire bytes queued, or 0 when the ring had no room (counted in ``dropped``)."""
        ring = self.ring
        off = ring.reserve(n + 4 + (n + 4) // 254 + 3)
        if off < 0:
            self.dropped = (self.dropped + 1) & _MASK30
            return 0
        k = self._finish(frame, n, ring.buf, off)
        ring.commit(k)
        self.queued += k
        return k

    def send_data(self, frame, n, sid):
        """Queue stream `sid`'s DATA frame[0:n] under the fair-share policy (module docstring).
        Returns False when it was refused (counted in ``dropped``)."""
        cr = self.credit[sid]
        need = n + 4 + (n + 4) // 254 + 3
        q = self.queued
        if cr < need and not q and self.carry:  # idle ring: hand out what drains left over
            self.refill(0)
            cr = self.credit[sid]
        if cr < need and (q + need > self.high or cr - need < -self.cap[sid]):
            self.dropped = (self.dropped + 1) & _MASK30
            self.yielded = (self.yielded + 1) & _MASK30
            return False
        if self.ring.free() < need + self.keep:  # a full ring still takes the host's ACK and STATUS
            self.dropped = (self.dropped + 1) & _MASK30
            return False
        k = self.send(frame, n)
        if not k:
            return False
        cr -= k
        lo = -self.cap[sid]
        self.credit[sid] = cr if cr > lo else lo
        return True

    def refill(self, k):
        """The link took k bytes: split them equally among the streams below their cap."""
        cr = self.credit
        caps = self.cap
        n = len(cr)
        k += self.carry
        m = 0
        for i in range(n):
            if cr[i] < caps[i]:
                m += 1
        if m == 0:
            self.carry = 0
            return
        each = k // m
        left = k - each * m
        for i in range(n):
            c = cr[i]
            if c < caps[i]:
                c += each
                if c > caps[i]:
                    left += c - caps[i]
                    c = caps[i]
                cr[i] = c
        self.carry = left if left < self.ring.size else self.ring.size

    def writable(self):
        for _ in self._ipoll(0):
            if _[1] & _POLLOUT:
                return True
        return False

    def pump(self, budget=8):
        """Up to `budget` non-blocking writes of queued bytes; returns the bytes written.
        The POLLOUT check and the ring's bookkeeping are inlined (``ring.drain``): on the rp2
        port each Python call costs ~12 emulated us, a few per write."""
        ring = self.ring
        c0 = ring.count
        if not c0:
            return 0
        write = self._write
        ipoll = self._ipoll
        chunk = self.chunk
        total = 0
        while budget > 0:
            ready = False
            for ev in ipoll(0):
                if ev[1] & _POLLOUT:
                    ready = True
            if not ready:
                break
            k = ring.drain(write, chunk)
            if not k:
                break
            total += k
            if not ring.count:
                break
            budget -= 1
        if total:
            self.sent = (self.sent + c0 - ring.count) & _MASK30
            self.bytes = (self.bytes + total) & _MASK30
            self.queued -= total
            if self.credit:
                self.refill(total)
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
