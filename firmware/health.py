"""Status counters, events, and sensors going offline and coming back.

``Health`` sends EVENT and STATUS frames from preallocated buffers (event texts are bytes
constants) and owns the recovery of offline sensors: an allocation-free presence probe
(``Stream.probe``) with exponential backoff (100 ms doubling to 5 s, in ticks_ms), and only when
the chip answers again the driver is re-initialised (``driver.reset()``, or constructed if it
was absent at boot) with the heap unlocked for that moment, followed by SENSOR_ONLINE and its
CALIB frame.  Everything else here allocates nothing after ``__init__``.
"""

import gc
import time

import micropython
from micropython import const

import wire

_MASK30 = const(0x3FFFFFFF)
_BACKOFF_MIN_MS = const(100)
_BACKOFF_MAX_MS = const(5000)
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
        self.locked = False  # the sampler runs under heap_lock
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
            if not s.online:
                self.n_offline += 1

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
        off = wire.pack_status(
            b, self.boot_id, self.seq_status, time.ticks_us(), up, gc.mem_free(), self.overruns,
            out.sent, out.dropped, self.reset_cause, cmds.errors, cmds.rx.rx_errors, len(self.streams))
        for s in self.streams:
            off = wire.pack_status_stream(b, off, s.sid, s.online, s.errors, s.dropped, s.missing)
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
        c = s.calib_frame
        if c is None:
            return
        wire.pack_header(c, wire.T_CALIB, s.sid, self.boot_id, s.calib_seq, time.ticks_us())
        s.calib_seq = (s.calib_seq + 1) & 0xFFFF
        self.out.send(c, len(c) - wire.CRC_SIZE)

    # -- sensors --------------------------------------------------------------------------
    def offline(self, s, errno):
        if not s.online:
            return
        s.online = False
        s.fails = 0
        s.backoff_ms = _BACKOFF_MIN_MS
        s.retry_at = time.ticks_add(time.ticks_ms(), _BACKOFF_MIN_MS)
        self.n_offline += 1
        self.event(wire.EV_SENSOR_OFFLINE, s.sid, errno if 0 <= errno < 65536 else 0)

    def reprobe(self, now_ms):
        for s in self.streams:
            if s.online or time.ticks_diff(now_ms, s.retry_at) < 0:
                continue
            if s.probe() and self.recover(s):
                continue
            b = s.backoff_ms * 2
            s.backoff_ms = b if b < _BACKOFF_MAX_MS else _BACKOFF_MAX_MS
            s.retry_at = time.ticks_add(time.ticks_ms(), s.backoff_ms)

    def recover(self, s):
        """The chip answers again: re-initialise it (heap unlocked for this moment)."""
        locked = self.locked
        if locked:
            micropython.heap_unlock()
        try:
            ok = init_driver(s, self.hardware)
        finally:
            if locked:
                micropython.heap_lock()
        if not ok:
            return False
        self.recoveries += 1
        s.online = True
        s.fails = 0
        self.n_offline -= 1
        self.event(wire.EV_SENSOR_ONLINE, s.sid, 0)
        if s.hello_stale:  # absent at boot: the HELLO lacked its config
            s.hello_stale = False
            self.sampler_hello()
        else:
            self.send_calib(s)
        try:
            s.driver.start()
        except OSError:
            pass
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
        self.send_hello()

    def info(self):
        """Set by main: returns the HELLO dict."""
        return {}


def init_driver(s, hardware):
    """(Re)initialise a stream's driver; True on success.  Allocates (boot and recovery only)."""
    try:
        if s.driver is None:
            s.bind(hardware.open(s.sensor, s.settings))
            s.config = s.driver.config()
            s.calib = s.driver.calibration()
            s.min_period = s.driver.MIN_PERIOD_US
            s.calib_frame = calib_frame(s.calib)
        else:
            s.driver.reset()
        return True
    except OSError:
        return False


def calib_frame(calib):
    f = bytearray(wire.OVERHEAD + len(calib))
    wire.copy_into(f, wire.HEADER_SIZE, calib, len(calib))
    return f
