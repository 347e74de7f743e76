"""Plot a recording: one panel per channel, gaps drawn as gaps.

x is seconds since the start of the recording: each boot session is anchored at the host time of its
first frame and advances with the device's own sample clock. A session is drawn as its own line (a
reboot never joins two runs), frames lost on the link break the line (a NaN is inserted), and missing
samples are NaN already. Only what is drawn is kept: each channel is reduced to about BUCKETS buckets
(minimum and maximum of each, so a one-sample spike still shows), whatever the recording's length.
"""
from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np

from host.monitoring.session import Batch, Session


class PlotError(Exception):
    pass


BUCKETS = 2000          # per channel: a 10-inch figure at 100 dpi is 1,000 pixels wide
_KEEP = 4 * BUCKETS     # points kept per channel before the buckets widen
_PENDING = 1 << 15      # samples per channel gathered before they are reduced
_AGG_CHUNK = 1000       # vertices Agg rasterises at a time: a dense min/max zigzag otherwise takes ~40 MB


def _reduce(x: np.ndarray, y: np.ndarray, width: float) -> tuple[np.ndarray, np.ndarray]:
    """The points of (x, y) a plot needs at bucket `width`: per run of samples in one bucket its
    minimum, its maximum and its first NaN (a gap stays a gap), in their original order."""
    b = np.floor(x / width)
    run = np.concatenate(([0], np.cumsum(b[1:] != b[:-1])))
    starts = np.flatnonzero(np.concatenate(([True], run[1:] != run[:-1])))
    nan = np.isnan(y)
    lo = np.lexsort((np.where(nan, np.inf, y), run))[starts]
    hi = np.lexsort((np.where(nan, np.inf, -y), run))[starts]
    first_nan = np.lexsort((~nan, run))[starts]
    keep = np.concatenate((lo[~nan[lo]], hi[~nan[hi]], first_nan[nan[first_nan]]))
    keep = np.unique(keep)
    return x[keep], y[keep]


class _Channel:
    """One channel's segments (one per boot session), reduced as they grow so that at most about
    _KEEP points are kept however long the recording: min/max per bucket, so spikes stay visible."""

    def __init__(self) -> None:
        self.width = 0.0  # 0: every sample kept so far
        self.done: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.pending: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
        self.n_pending = 0

    def add(self, session: int, x: np.ndarray, y: np.ndarray) -> None:
        self.pending.setdefault(session, []).append((x, y))
        self.n_pending += len(x)
        if self.n_pending >= _PENDING:
            self._settle()

    def _settle(self) -> None:
        """Reduce what is pending at the current bucket width onto what is kept; widen the buckets
        (doubling, so they nest) while more than _KEEP points remain."""
        segs = dict(self.done)
        for k, parts in self.pending.items():
            x = np.concatenate([p[0] for p in parts])
            y = np.concatenate([p[1] for p in parts])
            if self.width:
                x, y = _reduce(x, y, self.width)
            old = segs.get(k)
            segs[k] = (x, y) if old is None else (np.concatenate((old[0], x)), np.concatenate((old[1], y)))
        self.pending, self.n_pending = {}, 0
        n = sum(len(x) for x, _ in segs.values())
        while n > _KEEP:
            xs = np.concatenate([x for x, _ in segs.values()])
            span = float(np.nanmax(xs) - np.nanmin(xs))
            self.width = max(self.width * 2, span / BUCKETS, 1e-9)
            segs = {k: _reduce(x, y, self.width) for k, (x, y) in segs.items()}
            n, before = sum(len(x) for x, _ in segs.values()), n
            if n == before and self.width > span:  # one bucket per boot already: nothing left to merge
                break
        self.done = segs

    def segments(self) -> list[tuple[np.ndarray, np.ndarray]]:
        self._settle()
        return [self.done[k] for k in sorted(self.done)]


class Series:
    """What a plot draws, gathered batch by batch (`add` fits `export.load(on_batch=...)`).

    x is seconds since the first batch: each boot session is anchored at the host time of its first
    frame and advances with the device's sample clock. A session is its own segment, and a frame lost on
    the link inserts a NaN (a break in the line)."""

    def __init__(self) -> None:
        self._t_start: float | None = None
        self._anchors: dict[int, tuple[float, int]] = {}
        self._channels: dict[tuple[str, str], _Channel] = {}
        self._seen: set[tuple[str, int]] = set()
        self._pending: list[Batch] = []
        self._n_pending = 0

    def add(self, b: Batch, _session: object = None) -> None:
        if self._t_start is None:
            self._t_start = b.t_host
        if b.session not in self._anchors:
            self._anchors[b.session] = (b.t_host - self._t_start, int(b.t_us[0]))
        self._pending.append(b)
        self._n_pending += b.count
        if self._n_pending >= _PENDING:
            self._flush()

    def _flush(self) -> None:
        """Hand the pending batches to their channels, one array per stream and boot (numpy's cost
        is per call, and a batch holds a few samples)."""
        groups: dict[tuple[str, int, tuple[str, ...]], list[Batch]] = {}
        for b in self._pending:
            groups.setdefault((b.name, b.session, tuple(b.values)), []).append(b)
        self._pending, self._n_pending = [], 0
        for (stream, session, names), bs in groups.items():
            x0, us0 = self._anchors[session]
            x = x0 + (np.concatenate([b.t_us for b in bs]) - us0) / 1e6
            starts = np.cumsum([0] + [b.count for b in bs[:-1]])
            seen = (stream, session) in self._seen
            breaks = starts[[bool(b.gap_before) and (seen or k > 0) for k, b in enumerate(bs)]]
            self._seen.add((stream, session))
            xb = np.insert(x, breaks, x[breaks])
            for name in names:
                y = np.insert(np.concatenate([b.values[name] for b in bs]).astype(float), breaks, np.nan)
                ch = self._channels.get((stream, name))
                if ch is None:
                    ch = self._channels[(stream, name)] = _Channel()
                ch.add(session, xb, y)

    def segments(self) -> dict[tuple[str, str], list[tuple[np.ndarray, np.ndarray]]]:
        """(stream, channel) -> [(x, y) per boot session]."""
        self._flush()
        return {k: ch.segments() for k, ch in self._channels.items()}


def _series(batches: Iterable[Batch]) -> dict[tuple[str, str], list[tuple[np.ndarray, np.ndarray]]]:
    s = Series()
    for b in batches:
        s.add(b)
    return s.segments()


def plot(series: Series, session: Session, out: str | os.PathLike, title: str = "", dpi: int = 100) -> int:
    """Write a PNG (or any matplotlib format by extension) with one panel per channel of `series`;
    units from `session`. Returns the number of panels."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = series.segments()
    if not series:
        raise PlotError("no samples to plot (no DATA frames after a HELLO in the recording)")
    units = {}
    for st in session.streams.values():
        for c in st.channels:
            units[(st.name, c.name)] = c.unit
    n = len(series)
    fig, axes = plt.subplots(n, 1, figsize=(10, max(2.0, 1.6 * n)), sharex=True, squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, ((stream, ch), segs) in zip(axes[:, 0], series.items()):
        for k, (x, y) in enumerate(segs):
            ax.plot(x, y, lw=0.8, color=colors[k % len(colors)],
                    label=f"boot {k + 1}" if len(segs) > 1 else None)
        ax.set_ylabel(f"{stream}\n{ch} [{units.get((stream, ch), '')}]", fontsize=8)
        ax.grid(True, alpha=0.3)
        if len(segs) > 1:
            ax.legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("time since recording start [s]")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    try:
        with matplotlib.rc_context({"agg.path.chunksize": _AGG_CHUNK}):
            fig.savefig(out, dpi=dpi)
    except OSError as e:
        raise PlotError(f"{out}: cannot write plot ({e.strerror or e})") from None
    finally:
        plt.close(fig)
    return n
