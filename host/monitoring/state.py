"""The monitor's view of a board as plain values: batches, log lines, per-stream and device state,
and the sliding-window rates they show. `session.Session` fills them; the screen, export, plot and
fleet read them.
"""
from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np


RATE_WINDOW_S = 2.0   # sliding window for Hz, bytes/s and frames/s
MIN_RATE_FRAMES = 4   # a stream's Hz is judged over at least this many frames (slow batches)
HISTORY = 120         # samples kept per channel for sparklines
EVENT_LOG = 500       # lines kept in the event log
HELLO_BUFFER = 4096   # DATA frames kept until their boot's HELLO says how to decode them


class ChannelViews(Mapping):
    """A batch's channel arrays, {name: values}: views into the conversion of its whole run of
    frames, sliced when asked.  At 1 MB/s a board sends ~2,700 frames a second and most batches are
    never read channel by channel (the views show the session's state), so a dict of 7 views
    built per frame would be most of the session's per-frame cost."""

    __slots__ = ("_cols", "_lo", "_hi")

    def __init__(self, cols: dict[str, np.ndarray], lo: int, hi: int) -> None:
        self._cols, self._lo, self._hi = cols, lo, hi

    def __getitem__(self, name: str) -> np.ndarray:
        return self._cols[name][self._lo:self._hi]

    def __iter__(self) -> Iterator[str]:
        return iter(self._cols)

    def __len__(self) -> int:
        return len(self._cols)

    def __repr__(self) -> str:
        return repr(dict(self.items()))


class Batch(NamedTuple):
    """One DATA frame in physical units. Arrays have one entry per sample; NaN = missing sample.

    A named tuple (the session builds one per DATA frame with ``tuple.__new__``, no Python call)."""
    t_host: float            # host time the frame was completed (s since epoch)
    session: int             # boot session number within this decoder (1 = first seen)
    boot_id: int
    stream: int
    name: str
    seq: int
    gap_before: int          # DATA frames of this stream missing just before this one (host-seen)
    t_us: np.ndarray         # device time of each sample, us, unwrapped within the session
    values: Mapping[str, np.ndarray]   # ChannelViews from the session (read-only)
    units: dict[str, str]
    missing: np.ndarray      # bool per sample

    @property
    def count(self) -> int:
        return len(self.t_us)


@dataclass(slots=True)
class LogLine:
    t: float
    source: str   # "device" (EVENT frame) | "text" (device print) | "link" | "host" | "ack"
    text: str


@dataclass
class ChannelState:
    name: str
    unit: str
    latest: float = math.nan
    history: deque = field(default_factory=lambda: deque(maxlen=HISTORY))


@dataclass
class StreamState:
    id: int
    name: str
    kind: str
    period_us: int
    channels: list[ChannelState]
    config: dict
    calibration: bytes = b""
    frames: int = 0
    samples: int = 0
    samples_missing: int = 0      # host-seen (bitmap) missing samples
    gaps: int = 0                 # host-seen missing DATA frames
    online: bool | None = None    # from STATUS
    sensor_errors: int = 0
    device_dropped: int = 0
    convert_error: str = ""
    _arrivals: deque = field(default_factory=deque, repr=False)  # (t_host, samples)

    def rate_hz(self, now: float) -> float:
        """Samples per second as they arrive: NaN until two frames came, 0 once the stream stalls."""
        return arrival_rate(self._arrivals, now)

    @property
    def nominal_hz(self) -> float:
        return 1e6 / self.period_us if self.period_us else math.nan


@dataclass
class DeviceState:
    board: str = ""
    fw: str = ""
    boot_id: int | None = None
    uptime_ms: int | None = None
    free_heap: int | None = None
    loop_overruns: int | None = None
    reset_cause: str = ""
    frames_sent: int | None = None
    frames_dropped: int | None = None
    hello: dict | None = None


def arrival_rate(arrivals: deque, now: float) -> float:
    """The samples that came after the first frame kept, over the time since it arrived.

    A stream sends a batch per frame, often seconds apart (env: 30 samples every 3 s), so a fixed
    window would show 0 between frames and a burst when one lands. The window therefore keeps at
    least MIN_RATE_FRAMES frames, however old, beside everything of the last RATE_WINDOW_S."""
    prune_arrivals(arrivals, now)
    if len(arrivals) < 2:
        return math.nan
    span = arrivals[-1][0] - arrivals[0][0]
    if span <= 1e-3:  # arrived together (a backlog read at once): no rate to see yet
        return math.nan
    if now - arrivals[-1][0] > max(RATE_WINDOW_S, 2 * span / (len(arrivals) - 1)):
        return 0.0  # nothing for two frame intervals: stalled
    return sum(n for _, n in list(arrivals)[1:]) / span


def prune_arrivals(arrivals: deque, now: float) -> None:
    while len(arrivals) > MIN_RATE_FRAMES and arrivals[0][0] < now - RATE_WINDOW_S:
        arrivals.popleft()


def prune_window(arrivals: deque, now: float) -> None:
    while arrivals and arrivals[0][0] < now - RATE_WINDOW_S:
        arrivals.popleft()


def window_rate(arrivals: deque, now: float) -> float:
    prune_window(arrivals, now)
    if not arrivals:
        return 0.0
    span = max(now - arrivals[0][0], RATE_WINDOW_S / 4) if len(arrivals) > 1 else RATE_WINDOW_S
    return sum(n for _, n in arrivals) / span
