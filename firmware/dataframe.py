"""A stream's DATA frame buffer and the per-stream counters STATUS reports.

``DataFrame`` owns one buffer laid out as header + ``batch`` sample slots + room for the
missing bitmap (wire.FLAG_MISSING layout), with one memoryview per slot made here, so
``driver.read_into(slot)`` fills the frame in place and a full batch is packed, CRC'd and
COBS-encoded into the output ring without copying.  The bitmap is cleared and sent only when a
sample of the batch is missing (the first ``mark`` of a batch clears it); otherwise the frame
ends after the samples and the CRC goes where the bitmap would be.  A frame refused by the ring
is dropped whole and its seq is consumed anyway, so the host sees the gap and the device counts
it: the host's losses always equal the device's drops.

Nothing here allocates after ``__init__``; every counter is masked to 30 bits (a small int on
a 32-bit board, where anything larger is a heap object).
"""

from micropython import const

import wire

_MASK30 = const(0x3FFFFFFF)


class Counters:
    """What STATUS reports per stream: written by the DataFrame (missing, dropped, frames) and
    by the stream when a read fails (errors)."""

    def __init__(self):
        self.errors = 0  # failed sensor reads (sensor_errors)
        self.missing = 0  # samples sent marked missing (samples_missing)
        self.dropped = 0  # DATA frames refused by the ring or skipped by an overrun
        self.frames = 0  # DATA frames built


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
        self.fmiss = 0  # samples missing in the batch being filled
        self.seq = 0
        first = wire.HEADER_SIZE
        mv = memoryview(self.buf)
        ss = sample_size
        self.slots = tuple(mv[first + i * ss:first + (i + 1) * ss] for i in range(batch))

    def mark(self, i):
        """Sample i of the batch is missing: set its bitmap bit (clearing the bitmap first if
        it is the batch's first missing sample)."""
        if not self.fmiss:
            wire.clear_bitmap(self.buf, self.batch, self.bm)
        wire.mark_missing(self.buf, i, self.bm)
        self.fmiss += 1
        c = self.counts
        c.missing = (c.missing + 1) & _MASK30

    def send(self, t0, period):
        """Pack the header of the full batch and queue the frame (dropped whole if no room)."""
        n = wire.pack_data(self.buf, self.sid, self.boot_id, self.seq, t0, period, self.batch, self.ss,
                           self.fmiss)
        self.fmiss = 0
        c = self.counts
        if not self.out.send(self.buf, n):
            c.dropped = (c.dropped + 1) & _MASK30
        self.seq = (self.seq + 1) & 0xFFFF
        c.frames = (c.frames + 1) & _MASK30

    def skip(self, n):
        """`n` whole frames of missed slots are not built: their seqs are consumed and counted
        as dropped, so the host's gap matches."""
        self.seq = (self.seq + n) & 0xFFFF
        c = self.counts
        c.dropped = (c.dropped + n) & _MASK30

    def clear(self):
        """Forget the batch being filled (START/STOP): no sample of it is missing any more."""
        self.fmiss = 0
