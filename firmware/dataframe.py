"""A stream's DATA frame buffer and the per-stream counters STATUS reports.

``DataFrame`` owns one buffer laid out as header + ``batch`` sample slots + room for the
missing bitmap (wire.FLAG_MISSING layout), with one memoryview per slot made here, so
``driver.read_into(slot)`` fills the frame in place and a full batch is packed, CRC'd and
COBS-encoded into the output ring without copying.  The bitmap is cleared and sent only when a
sample of the batch is missing (the first ``mark`` of a batch clears it); otherwise the frame
ends after the samples and the CRC goes where the bitmap would be.  Each mark carries its cause
(``OVERRUN`` or ``SENSOR``): the frame's header gets the matching FLAG_MISS_* bits, and the
marks are added to the stream's counters only when the frame is BUILT (a batch discarded by a
STOP was never produced, so its marks count nowhere).  A frame refused by the output is dropped
whole and its seq is consumed anyway, so the host sees the gap and the device counts it: the
host's gaps always equal frames_dropped + frames_skipped.

Nothing here allocates after ``__init__``; every counter is masked to 30 bits (a small int on
a 32-bit board, where anything larger is a heap object).
"""

import micropython
from micropython import const

import wire

_MASK30 = const(0x3FFFFFFF)


OVERRUN = const(0)  # mark causes: the loop overran the sample's slot
SENSOR = const(1)  # the read failed or the sensor was offline


class Counters:
    """What STATUS reports per stream (wire.pack_status_stream): written by the DataFrame and
    by the stream when a read fails (errors).  frames + skipped is the stream's next seq."""

    def __init__(self):
        self.errors = 0  # failed sensor reads (sensor_errors)
        self.frames = 0  # DATA frames built (frames_built)
        self.dropped = 0  # built DATA frames the output refused (frames_dropped)
        self.skipped = 0  # DATA frames an overrun left with only missed slots (frames_skipped)
        self.miss_overrun = 0  # samples marked missing in built frames: overrun (missing_overrun)
        self.miss_sensor = 0  # ... : read failed / sensor offline (missing_sensor)


class DataFrame:
    def __init__(self, sid, boot_id, batch, sample_size, counts):
        self.sid = sid
        self.boot_id = boot_id
        self.batch = batch
        self.ss = sample_size
        self.counts = counts
        self.out = None  # output.Output (set by Stream.attach)
        self.buf = bytearray(wire.data_frame_size(batch, sample_size))
        self.bm = wire.bitmap_offset(batch, sample_size)  # used only with FLAG_MISSING
        self.f_over = 0  # samples of the batch being filled marked missing by an overrun
        self.f_sens = 0  # ... by a failed read or an offline sensor
        self.seq = 0
        first = wire.HEADER_SIZE
        mv = memoryview(self.buf)
        ss = sample_size
        self.slots = tuple(mv[first + i * ss:first + (i + 1) * ss] for i in range(batch))

    def mark(self, i, cause):
        """Sample i of the batch is missing for `cause` (OVERRUN or SENSOR): set its bitmap bit
        (clearing the bitmap first if it is the batch's first missing sample)."""
        if not (self.f_over or self.f_sens):
            wire.clear_bitmap(self.buf, self.batch, self.bm)
        wire.mark_missing(self.buf, i, self.bm)
        if cause == OVERRUN:
            self.f_over += 1
        else:
            self.f_sens += 1

    def mark_span(self, i, end, cause):
        """Samples i..end-1 missing for `cause`: one call for a span (a burst frame's slots), so
        an overloaded fast stream's marking does not cost a Python call per slot."""
        n = end - i
        if n <= 0:
            return
        if not (self.f_over or self.f_sens):
            wire.clear_bitmap(self.buf, self.batch, self.bm)
        _set_bits(self.buf, self.bm, i, end)
        if cause == OVERRUN:
            self.f_over += n
        else:
            self.f_sens += n

    def send(self, t0, period):
        """The batch is full: the frame is built (its marks counted by cause), packed and queued
        (dropped whole if the output refuses it)."""
        c = self.counts
        fo = self.f_over
        fs = self.f_sens
        flags = 0
        if fo:
            flags = wire.FLAG_MISSING | wire.FLAG_MISS_OVERRUN
            c.miss_overrun = (c.miss_overrun + fo) & _MASK30
        if fs:
            flags |= wire.FLAG_MISSING | wire.FLAG_MISS_SENSOR
            c.miss_sensor = (c.miss_sensor + fs) & _MASK30
        self.f_over = 0
        self.f_sens = 0
        n = wire.pack_data(self.buf, self.sid, self.boot_id, self.seq, t0, period, self.batch, self.ss, flags)
        c.frames = (c.frames + 1) & _MASK30
        if not self.out.send_data(self.buf, n, self.sid):
            c.dropped = (c.dropped + 1) & _MASK30
        self.seq = (self.seq + 1) & 0xFFFF

    def skip(self, n):
        """`n` whole frames of missed slots are not built: their seqs are consumed and counted
        in `skipped`, so the host's gap matches."""
        self.seq = (self.seq + n) & 0xFFFF
        c = self.counts
        c.skipped = (c.skipped + n) & _MASK30

    def clear(self):
        """Forget the batch being filled (START/STOP): it is never built, so its marks count
        nowhere."""
        self.f_over = 0
        self.f_sens = 0


@micropython.viper
def _set_bits(buf, off: int, i: int, end: int):
    """Bits i..end-1 of the bitmap at buf[off:] (wire.mark_missing's layout) set."""
    b = ptr8(buf)  # noqa: F821 (viper built-in)
    while i < end:
        b[off + (i >> 3)] |= 1 << (i & 7)
        i += 1
