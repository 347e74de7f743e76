"""Status counters, events, and sensors going offline and coming back.

``Health`` sends EVENT and STATUS frames from preallocated buffers (event texts are bytes
constants) and runs the recovery of offline sensors: each offline ``chip.Chip`` is probed
(allocation-free) when its back-off has passed, and only when the chip answers again the
driver is re-initialised (``Stream.open``: ``driver.reset()``, or constructed if it was absent
at boot) with the heap unlocked for that moment, followed by SENSOR_ONLINE and its CALIB frame.
Everything else here allocates nothing after ``__init__``.

STATUS's free heap is ``gc.mem_free()``, a walk of the whole heap (~9 emulated ms on an RP2040,
longer than the 5 ms stream it would delay).  While the sampler holds ``heap_lock`` nothing can
allocate or free (an allocation raises, ``gc_free`` is a no-op, and no collection runs: none
is triggered without an allocation and the loop calls none), so the figure cannot change: it is
measured at the first STATUS after the lock engages and reused until the lock state changes
(``locked``, and the recovery paths that unlock the heap for a moment measure again after).
Unlocked, every STATUS measures.
"""

import gc
import time

import micropython
from micropython import const

import wire

_MASK30 = const(0x3FFFFFFF)
_EVENT_TEXT_MAX = const(160)


class Health:
    def __init__(self, out, boot_id, reset_cause, hardware=None):
        self.out = out
        self.boot_id = boot_id
        self.reset_cause = reset_cause
        self.hardware = hardware
        self.streams = ()
        self.commands = None
        self.sampler = None
        self.overruns = 0
        self.n_offline = 0
        self.recoveries = 0
        self._locked = False
        self.free = -1  # gc.mem_free() under the current heap_lock (-1: measure at the next STATUS)
        self.seq_event = 0
        self.seq_status = 0
        self.seq_hello = 0
        self.ev = bytearray(wire.OVERHEAD + wire.EVENT_SIZE + _EVENT_TEXT_MAX)
        self.st = bytearray(4)
        self.hello = bytearray(4)
        self.hello_n = 0
        self.t_boot = time.ticks_ms()

    def attach(self, streams, commands, sampler):
        self.streams = tuple(streams)
        self.commands = commands
        self.sampler = sampler
        self.st = bytearray(wire.OVERHEAD + wire.STATUS_SIZE + wire.STATUS_STREAM_SIZE * len(self.streams))
        self.n_offline = 0
        for s in self.streams:
            if not s.chip.online:
                self.n_offline += 1

    @property
    def locked(self):
        """The sampler runs under heap_lock (it sets this as it locks and unlocks)."""
        return self._locked

    @locked.setter
    def locked(self, v):
        self._locked = v
        self.free = -1

    # -- frames ---------------------------------------------------------------------------
    def event(self, code, stream=255, arg=0, text=None):
        """Queue an EVENT (text: bytes, truncated to the buffer)."""
        if text is not None and len(text) > _EVENT_TEXT_MAX:
            text = memoryview(text)[:_EVENT_TEXT_MAX]  # only for long (allocating) texts
        n = wire.pack_event(self.ev, self.boot_id, self.seq_event, time.ticks_us(), code, stream, arg, text)
        self.seq_event = (self.seq_event + 1) & 0xFFFF
        self.out.send(self.ev, n)

    def status(self):
        b = self.st
        out = self.out
        cmds = self.commands
        up = (time.ticks_ms() - self.t_boot) & _MASK30
        free = self.free
        if free < 0:
            free = gc.mem_free()
            if self._locked:
                self.free = free
        off = wire.pack_status(
            b, self.boot_id, self.seq_status, time.ticks_us(), up, free, self.overruns,
            out.sent, out.dropped, self.reset_cause, cmds.errors, cmds.rx.rx_errors, len(self.streams))
        for s in self.streams:
            c = s.counts
            off = wire.pack_status_stream(b, off, s.sid, s.chip.online, c.errors, c.frames, c.dropped, c.skipped,
                                          c.miss_overrun, c.miss_sensor)
        self.seq_status = (self.seq_status + 1) & 0xFFFF
        out.send(b, off)

    def build_hello(self, info):
        """HELLO frame from the dict `info` (JSON made here, once; allocates)."""
        import json

        body = json.dumps(info).encode()
        self.hello = bytearray(wire.OVERHEAD + len(body))
        wire.copy_into(self.hello, wire.HEADER_SIZE, body, len(body))
        self.hello_n = wire.HEADER_SIZE + len(body)

    def send_hello(self):
        """HELLO, then every online stream's CALIB (allocation-free)."""
        wire.pack_header(self.hello, wire.T_HELLO, 255, self.boot_id, self.seq_hello, time.ticks_us())
        self.seq_hello = (self.seq_hello + 1) & 0xFFFF
        self.out.send(self.hello, self.hello_n)
        for s in self.streams:
            self.send_calib(s)

    def send_calib(self, s):
        info = s.info
        c = info.calib_frame
        if c is None:
            return
        wire.pack_header(c, wire.T_CALIB, s.sid, self.boot_id, info.calib_seq, time.ticks_us())
        info.calib_seq = (info.calib_seq + 1) & 0xFFFF
        self.out.send(c, len(c) - wire.CRC_SIZE)

    # -- sensors --------------------------------------------------------------------------
    def offline(self, s, errno):
        if not s.chip.offline(time.ticks_ms()):
            return
        self.n_offline += 1
        self.event(wire.EV_SENSOR_OFFLINE, s.sid, errno if 0 <= errno < 65536 else 0)

    def reprobe(self, now_ms):
        for s in self.streams:
            chip = s.chip
            if not chip.retry_due(now_ms):
                continue
            if chip.probe() and self.recover(s):
                continue
            chip.back_off(time.ticks_ms())

    def recover(self, s):
        """The chip answers again: re-initialise it (heap unlocked for this moment)."""
        locked = self.locked
        if locked:
            micropython.heap_unlock()
        try:
            ok = s.open(self.hardware)
        finally:
            if locked:
                micropython.heap_lock()
                self.free = -1  # the driver's re-initialisation allocated
        if not ok:
            return False
        self.recoveries += 1
        s.chip.back_online()
        self.n_offline -= 1
        self.event(wire.EV_SENSOR_ONLINE, s.sid, 0)
        if s.info.hello_stale:  # absent at boot: the HELLO lacked its config
            s.info.hello_stale = False
            self.sampler_hello()
        else:
            self.send_calib(s)
        s.chip.start()
        return True

    def sampler_hello(self):
        locked = self.locked
        if locked:
            micropython.heap_unlock()
        try:
            self.build_hello(self.info())
        finally:
            if locked:
                micropython.heap_lock()
                self.free = -1  # the new HELLO was allocated
        self.send_hello()

    def info(self):
        """Set by main: returns the HELLO dict."""
        return {}

