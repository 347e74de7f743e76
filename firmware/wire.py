"""pagerless wire format, defined once (board and host).

This module is the single source of truth for the frame layout described in
docs/protocol.md.  It imports on MicroPython and on CPython (common subset).

Per-frame functions allocate nothing on a board (checked under
``micropython.heap_lock()`` on the unix port and on 32-bit MicroPython):
``pack_header``, ``pack_data``, ``clear_bitmap``, ``mark_missing``,
``pack_status``, ``pack_status_stream``, ``pack_event``, ``pack_ack``, ``crc32_append``, ``crc32_check``, ``cobs_encode``,
``wrap_frame``, ``finish_frame``, ``cobs_decode`` and
``CmdReceiver.feed_byte``.  Only import time and ``CmdReceiver.__init__``
allocate (tables and buffers).

A frame (before COBS) is::

    off  0 u8  version (=VERSION)        off 10 u32 t0_us
    off  1 u8  type (T_*)                off 14 u32 period_us
    off  2 u8  stream id (255 = none)    off 18 u16 count
    off  3 u8  flags (FLAG_*; 0 except   off 20 ..  body
               in DATA)
    off  4 4s  boot id                   last 4     CRC-32 (zlib.crc32) LE
    off  8 u16 seq

A DATA body is ``count * sample_size`` sample bytes, then, only when the header flags have
FLAG_MISSING, a ``bitmap_size(count)``-byte missing-sample bitmap (bit i set = sample i
missing).  FLAG_MISSING comes with at least one cause flag, FLAG_MISS_OVERRUN (a sample of the
frame was marked missing because the loop overran its slot) and/or FLAG_MISS_SENSOR (because
its read failed or the sensor was offline); a cause flag never comes without FLAG_MISSING, so a
frame with one cause flag has all its marks from that cause.  Samples sit at a fixed offset (HEADER_SIZE) whatever the flags, so a board fills
them in place and a frame with no missing sample is simply ``bitmap_size(count)`` bytes shorter.

On the wire: 0x00, COBS(frame), 0x00.
"""

import struct

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


# ---- protocol constants -------------------------------------------------

VERSION = const(2)

# frame types (device -> host unless noted)
T_DATA = const(1)
T_HELLO = const(2)
T_CALIB = const(3)
T_STATUS = const(4)
T_EVENT = const(5)
T_ACK = const(6)
T_NACK = const(7)
T_CMD = const(0x40)  # host -> device

TYPES = (T_DATA, T_HELLO, T_CALIB, T_STATUS, T_EVENT, T_ACK, T_NACK, T_CMD)
TYPE_NAMES = {
    T_DATA: "DATA",
    T_HELLO: "HELLO",
    T_CALIB: "CALIB",
    T_STATUS: "STATUS",
    T_EVENT: "EVENT",
    T_ACK: "ACK",
    T_NACK: "NACK",
    T_CMD: "CMD",
}

NO_STREAM = const(255)  # header stream id of frames that belong to no stream
ALL_STREAMS = const(255)  # command body stream byte meaning "every stream"

# header layout
HEADER_FMT = "<BBBB4sHIIH"  # for host-side pack/unpack (the 4s is the boot id)
HEADER_SIZE = const(20)
CRC_SIZE = const(4)
OVERHEAD = const(24)  # HEADER_SIZE + CRC_SIZE: the smallest valid frame
OFF_VERSION = const(0)
OFF_TYPE = const(1)
OFF_STREAM = const(2)
OFF_FLAGS = const(3)
OFF_BOOT_ID = const(4)
OFF_SEQ = const(8)
OFF_T0 = const(10)
OFF_PERIOD = const(14)
OFF_COUNT = const(18)
OFF_BODY = const(20)
FLAG_MISSING = const(1)  # DATA flags bit 0: a missing-sample bitmap follows the samples
FLAG_MISS_OVERRUN = const(2)  # DATA: at least one sample marked missing because the loop overran its slot
FLAG_MISS_SENSOR = const(4)  # DATA: at least one sample marked missing because its read failed / sensor offline
FLAGS_CAUSE = const(6)  # the cause bits: present exactly when FLAG_MISSING is
FLAGS_DATA = const(7)  # flag bits a DATA frame may carry (any other bit, or any flag elsewhere: invalid)
_HDR_PACK = "<BBBBBBBBHIIH"  # boot id as 4 separate bytes: no slicing on the board

SEQ_MOD = const(65536)
MAX_FRAME = const(65535)  # frame bytes (incl. header and CRC); decoders reject longer
TICKS_PERIOD_DEFAULT = 1 << 30  # time.ticks_* period on boards; HELLO announces the real one

# EVENT codes
EV_BOOT = const(1)
EV_SENSOR_OFFLINE = const(2)
EV_SENSOR_ONLINE = const(3)
EV_CONFIG_FALLBACK = const(4)
EV_WATCHDOG_RESET = const(5)
EV_UNHANDLED_EXCEPTION = const(6)
EV_OVERRUN_BURST = const(7)
EV_COMMAND_REJECTED = const(8)
EV_RX_ERROR = const(9)
EVENT_NAMES = {
    1: "BOOT",
    2: "SENSOR_OFFLINE",
    3: "SENSOR_ONLINE",
    4: "CONFIG_FALLBACK",
    5: "WATCHDOG_RESET",
    6: "UNHANDLED_EXCEPTION",
    7: "OVERRUN_BURST",
    8: "COMMAND_REJECTED",
    9: "RX_ERROR",
}
EVENT_FMT = "<BBH"  # code, stream, arg; then optional UTF-8 text
EVENT_SIZE = const(4)

# CMD opcodes (body: opcode u8, stream u8 (255 = all), args)
OP_START = const(1)
OP_STOP = const(2)
OP_SET_PERIOD = const(3)  # args: u32 period_us
OP_SEND_HELLO = const(4)
OP_PING = const(5)
OP_REBOOT = const(6)
OP_REPL = const(7)
OP_SEND_STATUS = const(8)
OPCODE_NAMES = {
    1: "START",
    2: "STOP",
    3: "SET_PERIOD",
    4: "SEND_HELLO",
    5: "PING",
    6: "REBOOT",
    7: "REPL",
    8: "SEND_STATUS",
}
CMD_FMT = "<BB"  # opcode, stream
CMD_SIZE = const(2)

# ACK/NACK body: opcode u8, token u16 (= the command's seq), reason u8 (0 in ACK)
ACK_FMT = "<BHB"
ACK_SIZE = const(4)
R_OK = const(0)
R_BAD_CRC = const(1)
R_UNKNOWN_OPCODE = const(2)
R_BAD_ARGS = const(3)
R_BAD_STREAM = const(4)
R_BAD_FRAME = const(5)  # wrong version/type/length
R_BUSY = const(6)
R_SENSOR_ERROR = const(7)
REASON_NAMES = {
    0: "OK",
    1: "BAD_CRC",
    2: "UNKNOWN_OPCODE",
    3: "BAD_ARGS",
    4: "BAD_STREAM",
    5: "BAD_FRAME",
    6: "BUSY",
    7: "SENSOR_ERROR",
}

# STATUS body
STATUS_FMT = "<IIIIIBHHB"  # uptime_ms, free_heap, loop_overruns, frames_sent, frames_dropped,
#                            reset_cause, cmd_errors, rx_errors, n_streams
# (frames_sent: frames of any type completely written to the link; frames_dropped: frames of
# ANY type refused by the output (ring full, or a DATA frame yielded under the fair-share
# policy); frames an overrun skipped are in the per-stream frames_skipped only)
STATUS_SIZE = const(26)
STATUS_STREAM_FMT = "<BBIIIIII"  # stream id, online, sensor_errors, frames_built, frames_dropped,
#                                  frames_skipped, missing_overrun, missing_sensor (pack_status_stream)
STATUS_STREAM_SIZE = const(26)

# reset causes (values of machine.reset_cause() vary per port; these are the wire values)
RC_UNKNOWN = const(0)
RC_POWER_ON = const(1)
RC_HARD = const(2)
RC_WATCHDOG = const(3)
RC_DEEPSLEEP = const(4)
RC_SOFT = const(5)
RESET_CAUSE_NAMES = {
    0: "unknown",
    1: "power-on",
    2: "hard",
    3: "watchdog",
    4: "deep-sleep",
    5: "soft",
}

# CmdReceiver.feed_byte results
RX_NONE = const(0)
RX_FRAME = const(1)  # a complete command frame with a good CRC is in rx.buf[:rx.n]
RX_INTERRUPT = const(2)  # 0x03 while idle: Ctrl-C from mpremote or a terminal
RX_ERROR = const(3)  # a frame was dropped (bad CRC, bad COBS, too long, stale); rx_errors counted

CMD_CODE_BYTE = const(4)  # the first COBS code byte of every command frame (see protocol.md)


# ---- sizes ----------------------------------------------------------------


def bitmap_size(count):
    """Bytes of the missing-sample bitmap of a DATA frame with `count` samples."""
    return (count + 7) >> 3


def bitmap_offset(count, sample_size):
    """Offset of a DATA frame's bitmap (present only with FLAG_MISSING): right after the samples."""
    return HEADER_SIZE + count * sample_size


def data_length(count, sample_size, missing):
    """Frame bytes before the CRC of a DATA frame: header + samples (+ bitmap if missing)."""
    n = HEADER_SIZE + count * sample_size
    if missing:
        n += (count + 7) >> 3
    return n


def data_frame_size(count, sample_size, missing=True):
    """Frame bytes (header + body + CRC) of a DATA frame; by default the largest one (with the
    bitmap), i.e. the buffer a board allocates.  missing=False: a frame without the bitmap."""
    return data_length(count, sample_size, missing) + CRC_SIZE


def cobs_max(n):
    """Worst-case COBS-encoded size of n bytes (without delimiters)."""
    return n + n // 254 + 1


def wire_max(n):
    """Worst-case bytes on the wire for a frame of n bytes: 0x00 + COBS + 0x00."""
    return n + n // 254 + 3


# ---- header and bodies (allocation-free) --------------------------------


def pack_header(buf, ftype, stream, boot_id, seq, t0_us, period_us=0, count=0, flags=0):
    """Write the 20-byte header at buf[0:20].

    boot_id is a 4-byte buffer (bytes/bytearray), so no int >= 2**30 is needed on
    32-bit boards.  seq is masked to 16 bits; t0_us and period_us must be < 2**30 on
    a board (ticks_us values are).  Returns HEADER_SIZE (the body offset).
    """
    struct.pack_into(
        _HDR_PACK,
        buf,
        0,
        VERSION,
        ftype,
        stream,
        flags,
        boot_id[0],
        boot_id[1],
        boot_id[2],
        boot_id[3],
        seq & 0xFFFF,
        t0_us,
        period_us,
        count,
    )
    return HEADER_SIZE


def pack_data(buf, stream, boot_id, seq, t0_us, period_us, count, sample_size, flags):
    """Header of a DATA frame whose count samples are already at buf[HEADER_SIZE:] and, if
    flags has FLAG_MISSING, whose bitmap is at bitmap_offset(count, sample_size).  flags is 0,
    or FLAG_MISSING plus the cause bits of its marks (FLAG_MISS_OVERRUN, FLAG_MISS_SENSOR).
    Returns the frame length before the CRC (pass it to finish_frame)."""
    pack_header(buf, T_DATA, stream, boot_id, seq, t0_us, period_us, count, flags)
    if flags & FLAG_MISSING:
        return HEADER_SIZE + count * sample_size + ((count + 7) >> 3)
    return HEADER_SIZE + count * sample_size


def clear_bitmap(buf, count, off):
    """Zero the count-sample missing bitmap at buf[off:] (off = bitmap_offset(count,
    sample_size) in a DATA frame); returns the offset just past it."""
    end = off + ((count + 7) >> 3)
    i = off
    while i < end:
        buf[i] = 0
        i += 1
    return end


def mark_missing(buf, i, off):
    """Set bit i (sample i missing) in the bitmap that starts at buf[off]."""
    buf[off + (i >> 3)] |= 1 << (i & 7)


def pack_event(buf, boot_id, seq, t_us, code, stream=NO_STREAM, arg=0, text=None):
    """Header + EVENT body; text is optional bytes (copied by index).  Returns the frame length
    before the CRC (pass it to finish_frame)."""
    pack_header(buf, T_EVENT, NO_STREAM, boot_id, seq, t_us)
    struct.pack_into(EVENT_FMT, buf, HEADER_SIZE, code, stream, arg)
    n = HEADER_SIZE + EVENT_SIZE
    if text is not None:
        for c in text:
            buf[n] = c
            n += 1
    return n


def pack_ack(buf, boot_id, seq, t_us, opcode, token, reason=R_OK):
    """Header + ACK (reason 0) or NACK (reason != 0) body.  Returns the length before the CRC."""
    pack_header(buf, T_NACK if reason else T_ACK, NO_STREAM, boot_id, seq, t_us)
    struct.pack_into(ACK_FMT, buf, HEADER_SIZE, opcode, token & 0xFFFF, reason)
    return HEADER_SIZE + ACK_SIZE


def pack_status(
    buf,
    boot_id,
    seq,
    t_us,
    uptime_ms,
    free_heap,
    loop_overruns,
    frames_sent,
    frames_dropped,
    reset_cause,
    cmd_errors,
    rx_errors,
    n_streams,
):
    """Header + fixed STATUS part.  Follow with n_streams calls of pack_status_stream.

    Counters are cumulative since boot; pass them modulo 2**30 on a board (the host treats
    the u32 fields as wrapping at 2**30 when they decrease within a boot).  cmd_errors and
    rx_errors are sent modulo 65536.  Returns the offset of the first per-stream record.
    """
    pack_header(buf, T_STATUS, NO_STREAM, boot_id, seq, t_us)
    struct.pack_into(
        STATUS_FMT,
        buf,
        HEADER_SIZE,
        uptime_ms,
        free_heap,
        loop_overruns,
        frames_sent,
        frames_dropped,
        reset_cause,
        cmd_errors & 0xFFFF,
        rx_errors & 0xFFFF,
        n_streams,
    )
    return HEADER_SIZE + STATUS_SIZE


def pack_status_stream(buf, off, stream, online, sensor_errors, frames_built, frames_dropped, frames_skipped,
                       missing_overrun, missing_sensor):
    """One per-stream STATUS record at buf[off]; returns the next offset.  Every counter is
    cumulative since boot, modulo 2**30 on a board (docs/protocol.md section 6):

    - sensor_errors: failed sensor reads (a read that raised OSError);
    - frames_built: DATA frames completed (full batch), whether the output took them or not;
    - frames_dropped: built DATA frames the output refused (ring full, or yielded under the
      fair-share policy), and only those;
    - frames_skipped: DATA frames never built because an overrun left them nothing but missed
      slots (their seq is consumed), so frames_built + frames_skipped is the stream's next seq;
    - missing_overrun / missing_sensor: samples marked missing in BUILT frames because the loop
      overran their slot / because the read failed or the sensor was offline.
    """
    struct.pack_into(
        STATUS_STREAM_FMT, buf, off, stream, 1 if online else 0, sensor_errors, frames_built, frames_dropped,
        frames_skipped, missing_overrun, missing_sensor,
    )
    return off + STATUS_STREAM_SIZE


# ---- CRC-32 (IEEE 802.3, reflected poly 0xEDB88320, = zlib.crc32) ------------
# Kept as two 16-bit halves so no intermediate ever reaches 2**30 (small ints only on
# 32-bit boards).  The tables are built once at import.

try:
    from array import array as _array
except ImportError:  # pragma: no cover
    from uarray import array as _array

CRC_LO = _array("H", bytes(512))
CRC_HI = _array("H", bytes(512))


def _make_tables():
    for i in range(256):
        lo = i
        hi = 0
        for _ in range(8):
            if lo & 1:
                lo = ((lo >> 1) | ((hi & 1) << 15)) ^ 0x8320
                hi = (hi >> 1) ^ 0xEDB8
            else:
                lo = (lo >> 1) | ((hi & 1) << 15)
                hi = hi >> 1
        CRC_LO[i] = lo
        CRC_HI[i] = hi


_make_tables()


def _crc32_into(buf, start, end, out, off):
    """CRC-32 of buf[start:end] stored little-endian at out[off:off+4]; two 16-bit halves keep
    every intermediate a small int, so nothing is allocated even on a 32-bit board."""
    tlo = CRC_LO
    thi = CRC_HI
    lo = 0xFFFF
    hi = 0xFFFF
    i = start
    while i < end:
        k = (lo ^ buf[i]) & 0xFF
        lo = (((lo >> 8) | (hi << 8)) & 0xFFFF) ^ tlo[k]
        hi = (hi >> 8) ^ thi[k]
        i += 1
    lo ^= 0xFFFF
    hi ^= 0xFFFF
    out[off] = lo & 0xFF
    out[off + 1] = lo >> 8
    out[off + 2] = hi & 0xFF
    out[off + 3] = hi >> 8


_crc_scratch = bytearray(4)


def crc32_append(buf, end, start=0):
    """CRC-32 of buf[start:end], stored little-endian at buf[end:end+4].  Returns end + 4."""
    _crc32_into(buf, start, end, buf, end)
    return end + 4


def crc32_check(buf, n, start=0):
    """True if the last 4 bytes of buf[start:n] are the CRC-32 of the bytes before them."""
    end = n - 4
    if end < start:
        return False
    c = _crc_scratch
    _crc32_into(buf, start, end, c, 0)
    return buf[end] == c[0] and buf[end + 1] == c[1] and buf[end + 2] == c[2] and buf[end + 3] == c[3]


# ---- COBS ---------------------------------------------------------------------


def cobs_encode(src, n, dst, dpos=0):
    """COBS-encode src[0:n] into dst starting at dst[dpos]; returns the number of bytes written
    (at most cobs_max(n)).  No delimiter is written.  dst must not overlap src."""
    code_pos = dpos
    o = dpos + 1
    code = 1
    i = 0
    while i < n:
        b = src[i]
        i += 1
        if b == 0:
            dst[code_pos] = code
            code_pos = o
            o += 1
            code = 1
        else:
            dst[o] = b
            o += 1
            code += 1
            if code == 0xFF:
                dst[code_pos] = code
                code_pos = o
                o += 1
                code = 1
    dst[code_pos] = code
    return o - dpos


def wrap_frame(frame, n, out, pos=0):
    """Write 0x00, COBS(frame[0:n]), 0x00 at out[pos:]; returns the bytes written
    (at most wire_max(n))."""
    out[pos] = 0
    k = cobs_encode(frame, n, out, pos + 1)
    out[pos + 1 + k] = 0
    return k + 2


def finish_frame(frame, n, out, pos=0):
    """Append the CRC to frame[0:n] (frame needs 4 spare bytes) and write the wire form into out.
    Returns the wire length.  Pure-Python path; fastwire.finish_frame is the viper twin."""
    n = crc32_append(frame, n)
    return wrap_frame(frame, n, out, pos)


def copy_into(dst, doff, src, n):
    """dst[doff:doff+n] = src[0:n] without allocating (no slice objects).  Returns doff + n."""
    i = 0
    while i < n:
        dst[doff + i] = src[i]
        i += 1
    return doff + n


def cobs_decode(src, start, end, dst):
    """Decode one COBS segment src[start:end] (no delimiters) into dst.  Returns the decoded
    length, or -1 if the segment is malformed (a zero byte, a code running past the end) or
    does not fit in dst."""
    o = 0
    cap = len(dst)
    i = start
    while i < end:
        code = src[i]
        if code == 0:
            return -1
        i += 1
        stop = i + code - 1
        if stop > end or o + code - 1 > cap:
            return -1
        while i < stop:
            b = src[i]
            if b == 0:
                return -1
            dst[o] = b
            o += 1
            i += 1
        if code != 0xFF and i < end:
            if o >= cap:
                return -1
            dst[o] = 0
            o += 1
    return o


def fast():
    """The fastest implementation of the per-frame codec available here.

    Returns the ``fastwire`` module (viper) when it imports and passes its self-test, else
    this module.  Both offer the same functions with the same results: ``crc32_append``,
    ``crc32_check``, ``cobs_encode``, ``wrap_frame``, ``finish_frame``, ``copy_into``.
    Call once at start-up and keep the result (``fw = wire.fast()``).
    """
    try:
        import fastwire

        return fastwire
    except (ImportError, SyntaxError, ValueError, NotImplementedError, AttributeError):
        import sys

        return sys.modules[__name__]


# ---- command receiver (board side) -----------------------------------------

_S_IDLE = const(0)  # after a delimiter / at start / after \r \n: 0x03 here is an interrupt
_S_FRAME = const(1)  # inside a command frame
_S_SKIP = const(2)  # discarding until the next 0x00


def _ticks_shim():
    try:
        from time import ticks_ms, ticks_diff

        return ticks_ms, ticks_diff
    except ImportError:  # CPython
        import time

        def ticks_ms():
            return int(time.monotonic() * 1000) & 0x3FFFFFFF

        def ticks_diff(a, b):
            return ((a - b + 0x20000000) & 0x3FFFFFFF) - 0x20000000

        return ticks_ms, ticks_diff


class CmdReceiver:
    """Allocation-free receiver of host->device command frames, one byte at a time.

    ``feed_byte(b)`` returns RX_NONE, RX_FRAME (a CRC-checked command frame of ``self.n`` bytes
    is in ``self.buf``; read it with ``opcode()``, ``token()``, ``stream()``, ``arg_u32()``
    before the next feed), RX_INTERRUPT (0x03 received while idle: Ctrl-C, e.g. mpremote's
    ``\\r\\x03``) or RX_ERROR (a frame was dropped: bad COBS, bad CRC, wrong version/type,
    too long, or stale; ``rx_errors`` is counted and ``self.n`` holds the decoded length, so
    a NACK BAD_CRC can quote ``token()`` when ``self.n >= HEADER_SIZE``).

    Keyboard-interrupt rule: every command frame's first COBS code byte is exactly
    CMD_CODE_BYTE (4), so while idle the receiver starts a frame only on 0x04, ignores 0x00,
    \\r and \\n, reports 0x03 as an interrupt and skips anything else up to the next 0x00.

    A partial frame older than ``timeout_ms`` since its last byte is dropped (RX_ERROR) and
    the byte that revealed it is processed from the idle state.  ``clock`` returns ms
    (default time.ticks_ms); ticks_diff is used so it wraps safely.  Only __init__ allocates.
    """

    def __init__(self, size=64, timeout_ms=200, clock=None, ticks_diff=None):
        self.buf = bytearray(size)
        self.n = 0
        self.rx_errors = 0
        self.interrupts = 0
        self.timeout_ms = timeout_ms
        tm, td = _ticks_shim()
        self._clock = clock if clock is not None else tm
        self._diff = ticks_diff if ticks_diff is not None else td
        self._state = _S_IDLE
        self._left = 0  # data bytes left in the current COBS block
        self._code = 0  # code byte of the current COBS block
        self._last = 0  # ms of the last byte

    def reset(self):
        """Forget any partial frame (e.g. after the link was reopened)."""
        self._state = _S_IDLE
        self.n = 0

    def feed_byte(self, b):
        """Process one received byte (int 0..255); returns RX_NONE/RX_FRAME/RX_INTERRUPT/RX_ERROR."""
        now = self._clock()
        st = self._state
        stale = st != _S_IDLE and self._diff(now, self._last) > self.timeout_ms
        self._last = now
        if stale:
            self._state = _S_IDLE
            r = self._idle(b)
            if st == _S_FRAME:
                self.rx_errors += 1
                return RX_ERROR if r == RX_NONE else r
            return r
        if st == _S_IDLE:
            return self._idle(b)
        if st == _S_SKIP:
            if b == 0:
                self._state = _S_IDLE
            return RX_NONE
        # _S_FRAME
        if b == 0:
            self._state = _S_IDLE
            return self._end()
        if self._left:
            if self.n >= len(self.buf):
                return self._overflow()
            self.buf[self.n] = b
            self.n += 1
            self._left -= 1
            return RX_NONE
        # b is the next code byte: the previous block ended with an implicit zero unless 0xFF
        if self._code != 0xFF:
            if self.n >= len(self.buf):
                return self._overflow()
            self.buf[self.n] = 0
            self.n += 1
        self._code = b
        self._left = b - 1
        return RX_NONE

    def _idle(self, b):
        if b == CMD_CODE_BYTE:
            self._state = _S_FRAME
            self.n = 0
            self._code = b
            self._left = b - 1
            return RX_NONE
        if b == 3:
            self.interrupts += 1
            return RX_INTERRUPT
        if b == 0 or b == 13 or b == 10:
            return RX_NONE
        self._state = _S_SKIP
        return RX_NONE

    def _overflow(self):
        self._state = _S_SKIP
        self.rx_errors += 1
        return RX_ERROR

    def _end(self):
        buf = self.buf
        n = self.n
        if (
            self._left
            or n < OVERHEAD + CMD_SIZE
            or buf[0] != VERSION
            or buf[1] != T_CMD
            or not crc32_check(buf, n)
        ):
            self.rx_errors += 1
            return RX_ERROR
        return RX_FRAME

    # accessors of the frame in buf (valid after RX_FRAME)
    def opcode(self):
        return self.buf[HEADER_SIZE]

    def stream(self):
        """Addressed stream (ALL_STREAMS = every stream)."""
        return self.buf[HEADER_SIZE + 1]

    def token(self):
        """The command's seq, to quote in the ACK/NACK."""
        return self.buf[OFF_SEQ] | (self.buf[OFF_SEQ + 1] << 8)

    def n_args(self):
        """Bytes of arguments after opcode and stream."""
        return self.n - OVERHEAD - CMD_SIZE

    def arg_u32(self, i=0):
        """Little-endian u32 argument at argument byte i, or -1 if it is >= 2**30 (such values
        would be heap objects on 32-bit boards: NACK them as BAD_ARGS) or missing."""
        o = HEADER_SIZE + CMD_SIZE + i
        if o + 4 > self.n - CRC_SIZE:
            return -1
        b = self.buf
        if b[o + 3] & 0xC0:
            return -1
        return b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)
