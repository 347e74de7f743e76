"""Bounded ring of whole encoded frames on caller-supplied storage (board and CPython).

Storage layout: each entry is a 2-byte little-endian length followed by that many bytes
(normally one frame's wire bytes: 0x00, COBS, 0x00).  An entry is always contiguous: when
it does not fit between the write position and the end of the storage, the writer wraps to
offset 0 (the tail of the storage is left unused until the reader passes it).  So the
largest entry that always fits is ``len(storage) // 2 - 2`` bytes; one entry of up to
``len(storage) - 2`` bytes fits into an empty ring.

Overflow policy: **drop the newest, whole.**  ``push``/``reserve`` on a ring without room
for the entire entry store nothing, return False/-1 and count ``dropped``; entries already
queued are never truncated, overwritten or reordered, and a partially written head entry is
always completed first.  (The sampler keeps counting seq for dropped frames, so the host
sees the gap and reconciles it with the device's drop counters.)

Writing out without blocking and without slicing (slicing a memoryview allocates)::

    n = ring.pending()                 # unsent bytes of the head entry (0 = empty)
    if n:
        k = out.write(storage, ring.offset(), n)   # MicroPython stream write(buf, off, len)
        if k:
            ring.consume(k)            # partial writes are resumed on the next call

or simply ``ring.drain(out.write)`` which does exactly that for one entry
(``ring.drain(out.write, chunk)``: at most chunk bytes of it).

Zero-copy producing: ``off = ring.reserve(maxlen)`` (-1 = no room, dropped counted), encode
straight into ``storage[off:off+maxlen]``, then ``ring.commit(actual_len)``.

Nothing here allocates after ``__init__`` (small-int arithmetic and index stores only).
Not interrupt- or thread-safe: use it from one task.
"""


class Ring:
    def __init__(self, storage, copy=None):
        """storage: bytearray (or writable buffer) owned by the caller.
        copy: optional fast copier ``copy(dst, doff, src, n)`` (e.g. fastwire.copy_into);
        default is an index loop."""
        self.buf = storage
        self.size = len(storage)
        self._copy = copy
        self.dropped = 0  # entries refused whole (counter since construction)
        self.pushed = 0  # entries accepted
        self.count = 0  # entries queued
        self._rd = 0  # offset of the head entry's length prefix
        self._wr = 0  # offset where the next entry goes
        self._end = 0  # when wrapped: end of the data before the wrap point
        self._wrapped = False  # True when data is in [rd, end) and [0, wr)
        self._sent = 0  # bytes of the head entry already written out
        self._res = -1  # offset of a reserved (uncommitted) entry's prefix

    # -- producer ------------------------------------------------------------------------

    def reserve(self, n):
        """Reserve room for an entry of up to n bytes; returns the storage offset where the
        caller writes the entry's bytes, or -1 (no room: counted as dropped).  Finish with
        commit(actual) (actual <= n) or cancel()."""
        need = n + 2
        if self.count == 0:
            self._rd = 0
            self._wr = 0
            self._sent = 0
            self._wrapped = False
        wr = self._wr
        if self._wrapped:
            if wr + need > self._rd:
                self.dropped += 1
                return -1
        elif wr + need > self.size:
            if self.count == 0 or need > self._rd:
                self.dropped += 1
                return -1
            self._end = wr
            self._wrapped = True
            wr = 0
            self._wr = 0
        self._res = wr
        return wr + 2

    def commit(self, n):
        """Queue the reserved entry with its actual length n."""
        p = self._res
        if p < 0:
            raise ValueError("commit without reserve")
        self.buf[p] = n & 0xFF
        self.buf[p + 1] = n >> 8
        self._wr = p + 2 + n
        self._res = -1
        self.count += 1
        self.pushed += 1

    def cancel(self):
        """Give up a reservation (nothing is queued, nothing counted)."""
        self._res = -1

    def push(self, src, n):
        """Copy src[0:n] in as one entry.  Returns False (and counts ``dropped``) if the whole
        entry does not fit; nothing is stored then."""
        off = self.reserve(n)
        if off < 0:
            return False
        cp = self._copy
        if cp is not None:
            cp(self.buf, off, src, n)
        else:
            b = self.buf
            i = 0
            while i < n:
                b[off + i] = src[i]
                i += 1
        self.commit(n)
        return True

    # -- consumer ------------------------------------------------------------------------

    def pending(self):
        """Unsent bytes of the head entry (0 if the ring is empty)."""
        if self.count == 0:
            return 0
        b = self.buf
        r = self._rd
        return (b[r] | (b[r + 1] << 8)) - self._sent

    def offset(self):
        """Storage offset of the head entry's first unsent byte."""
        return self._rd + 2 + self._sent

    def consume(self, k):
        """Mark k more bytes of the head entry as written; pops it when complete.
        Returns True when the head entry was completed (popped)."""
        if self.count == 0:
            return False
        b = self.buf
        r = self._rd
        n = b[r] | (b[r + 1] << 8)
        s = self._sent + k
        if s < n:
            self._sent = s
            return False
        self._sent = 0
        r += 2 + n
        self.count -= 1
        if self._wrapped and r >= self._end:
            r = 0
            self._wrapped = False
        self._rd = r
        if self.count == 0:
            self._rd = 0
            self._wr = 0
            self._wrapped = False
        return True

    def drain(self, write, most=0):
        """One non-blocking write attempt of the head entry (at most `most` bytes if > 0):
        ``write(buf, off, n)`` returns the bytes written (None = would block).  Returns the bytes
        written (0 if none/empty).  pending() and consume() are inlined: on the rp2 port a
        method call costs ~12 emulated us, and Output.pump runs this once per write."""
        if self.count == 0:
            return 0
        b = self.buf
        r = self._rd
        s = self._sent
        n = b[r] | (b[r + 1] << 8)
        m = n - s
        if 0 < most < m:
            m = most
        k = write(b, r + 2 + s, m)
        if not k:
            return 0
        s += k
        if s < n:
            self._sent = s
            return k
        self._sent = 0
        self.count -= 1
        if self.count == 0:
            self._rd = 0
            self._wr = 0
            self._wrapped = False
            return k
        r += 2 + n
        if self._wrapped and r >= self._end:
            r = 0
            self._wrapped = False
        self._rd = r
        return k

    def clear(self):
        """Drop everything queued (not counted as dropped), e.g. on STOP."""
        self.count = 0
        self._rd = 0
        self._wr = 0
        self._sent = 0
        self._wrapped = False
        self._res = -1

    def free(self):
        """Largest entry that reserve() would accept right now."""
        if self.count == 0:
            return self.size - 2
        if self._wrapped:
            f = self._rd - self._wr - 2
        else:
            a = self.size - self._wr
            f = (a if a > self._rd else self._rd) - 2
        return f if f > 0 else 0
