"""Bench instrumentation: a stream that keeps a histogram of its sampling-interval jitter.

``main.build`` makes the first stream a ``JitterStream`` only when config ``bench_jitter`` is
set (bench/firmware_bench.py), so a normal boot's hot path carries no instrumentation, not even
a branch.  Jitter here is |lateness of this sample - lateness of the previous one|, in 1 us
buckets (the last bucket holds everything >= 1023 us); the histogram is allocated once, at
boot, and ``sample()`` stays allocation-free (the bench runs under heap_lock).  A stream that
reads bursts from its chip's FIFO comes here once per frame, so its jitter is that of the
burst reads (its samples are timed by the chip).  Lateness is a signed now30 difference (a
sample taken before its slot's deadline after an overrun is early: negative), so the jitter
is kept within 0..2**30 - 1 and the maximum never prints as an unsigned wrap.
"""

from array import array

import micropython
from micropython import const

from schedule import diff30
from stream import Stream

_BUCKETS = const(1024)


class JitterStream(Stream):
    FAST = False  # every sample through sample() below, not fastloop

    def __init__(self, sid, name, sensor, cls, period_us, batch, settings, boot_id):
        Stream.__init__(self, sid, name, sensor, cls, period_us, batch, settings, boot_id)
        self.hist = array("I", bytes(4 * _BUCKETS))
        self.last_late = 0
        self.jitter_max = 0

    @micropython.native
    def sample(self, now, late):
        if late >= self.period and not self.burst:  # the overrun first: this slot's lateness
            self.overrun(late, now)
            late = diff30(now, self.due)
        d = diff30(late, self.last_late)
        if d < 0:
            d = -d
        if d > self.jitter_max:
            self.jitter_max = d
        if d >= _BUCKETS:
            d = _BUCKETS - 1
        h = self.hist
        h[d] += 1
        self.last_late = late
        Stream.sample(self, now, late)

    def jitter_summary(self):
        """p50, p99 and max of the histogram, for the end-of-run summary line; allocates."""
        h = self.hist
        total = sum(h)
        out = {"jitter_samples": total, "jitter_max_us": self.jitter_max}
        for q, key in ((50, "jitter_p50_us"), (99, "jitter_p99_us")):
            acc = 0
            for i in range(len(h)):
                acc += h[i]
                if acc * 100 >= q * total:
                    out[key] = i
                    break
        return out
