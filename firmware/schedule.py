"""A stream's time axis: when its next sample is due and where the frame being filled began.

Deadlines are ``time.ticks_us`` values kept with ``ticks_add``/``ticks_diff``: ``due`` advances
by exactly one period per sample (no drift), and sample *i* of a frame belongs to
``t0 + i * period`` where ``t0`` is the frame's first deadline.  A new period (SET_PERIOD) waits
for the next frame boundary, because one DATA frame carries one period for all its samples.

``Schedule`` is the base of ``stream.Stream`` rather than a part it points to: ``due``, ``i``,
``period`` and ``running`` are read on every pass of the loop, and a second object would cost
an attribute lookup each time.  Its fields are plain small ints and bools so that a later
scheduler can keep them in compact arrays instead.
"""

import time

_ticks_add = time.ticks_add


class Schedule:
    def __init__(self, period_us):
        self.period = period_us  # of the frame being filled
        self.new_period = period_us  # SET_PERIOD takes effect at the next frame boundary
        self.due = 0  # deadline of sample i (ticks_us)
        self.t0 = 0  # deadline of the frame's first sample
        self.i = 0  # slot of the next sample in the frame
        self.running = False

    def resume(self, now):
        """Fresh frame, first deadline one period from `now`."""
        self.i = 0
        self.due = _ticks_add(now, self.period)
        self.running = True

    def pause(self):
        self.running = False
        self.i = 0

    def set_period(self, period_us):
        """SET_PERIOD: at once when no frame is being filled, else from the next frame."""
        self.new_period = period_us
        if not self.running or self.i == 0:
            self.period = period_us

    def next_frame(self):
        self.i = 0
        self.period = self.new_period
