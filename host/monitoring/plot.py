"""Plot a recording: one panel per channel, gaps drawn as gaps.

x is seconds on the device's own sample clock, 0 at the first sample of the first boot (the t0 of
its earliest sample, whichever stream's frame arrived first: a stream batching 6.4 s of samples
starts at 0, not at -5 s); a later boot is placed where the host saw its clock start. A session is
drawn as its own line (a reboot never joins two runs), frames lost on the link break the line (a NaN is inserted), and missing
samples are NaN already. Only what is drawn is kept: each channel is reduced to about BUCKETS buckets
(minimum and maximum of each, so a one-sample spike still shows), whatever the recording's length.
"""
from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np

from host.monitoring.session import Session
from host.monitoring.state import Batch


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

    def segments(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Boot session -> (x, y), in session order."""
        self._settle()
        return {k: self.done[k] for k in sorted(self.done)}


class Series:
    """What a plot draws, gathered batch by batch (`add` fits `export.load(on_batch=...)`).

    Channels keep x as device seconds within their boot; where each boot sits on the plot's axis
    (module docstring) is only known once every stream's first frame came, so it is applied in
    `segments()`. A session is its own segment, and a frame lost on the link inserts a NaN."""

    def __init__(self) -> None:
        self._t0_us: dict[int, int] = {}        # per boot: device time of its earliest sample
        self._origin: dict[int, float] = {}     # per boot: host time its device clock read 0 (earliest)
        self._channels: dict[tuple[str, str], _Channel] = {}
        self._seen: set[tuple[str, int]] = set()
        self._pending: list[Batch] = []
        self._n_pending = 0

    def add(self, b: Batch, _session: object = None) -> None:
        if not b.count:
            return
        k = b.session
        t0, origin = int(b.t_us[0]), b.t_host - int(b.t_us[-1]) / 1e6  # a frame is sent after its last sample
        self._t0_us[k] = min(self._t0_us.get(k, t0), t0)
        self._origin[k] = min(self._origin.get(k, origin), origin)
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
            x = np.concatenate([b.t_us for b in bs]) / 1e6
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

    def offsets(self) -> dict[int, float]:
        """Per boot session: what to add to its device seconds to place it on the plot's axis."""
        if not self._t0_us:
            return {}
        first = min(self._t0_us)
        zero = self._origin[first] + self._t0_us[first] / 1e6  # host time of the first sample
        return {k: self._origin[k] - zero for k in self._t0_us}

    def segments(self) -> dict[tuple[str, str], list[tuple[np.ndarray, np.ndarray]]]:
        """(stream, channel) -> [(x, y) per boot session], x in seconds since the first sample."""
        self._flush()
        off = self.offsets()
        out = {}
        for key, ch in self._channels.items():
            out[key] = [(x + off[k], y) for k, (x, y) in ch.segments().items()]
        return out


def _series(batches: Iterable[Batch]) -> dict[tuple[str, str], list[tuple[np.ndarray, np.ndarray]]]:
    s = Series()
    for b in batches:
        s.add(b)
    return s.segments()


def check_output(out: str | os.PathLike) -> None:
    """PlotError unless matplotlib writes the format `out`'s extension names (asked before any work)."""
    from matplotlib.backend_bases import FigureCanvasBase

    formats = FigureCanvasBase.get_supported_filetypes()
    ext = os.path.splitext(os.fspath(out))[1].lstrip(".").lower()
    if ext not in formats:
        what = f"a .{ext} file" if ext else "a file without an extension"
        raise PlotError(f"{out}: cannot write {what}; name it .png, .svg or .pdf "
                        f"(or {', '.join(f for f in sorted(formats) if f not in ('png', 'svg', 'pdf'))})")


def panel_order(keys, session: Session) -> list[tuple[str, str]]:
    """(stream, channel) keys in the order the HELLO announced streams and their channels; any the
    session does not know (a stream seen only in an earlier boot's HELLO) after them, as they came."""
    rank = {}
    for st in session.streams.values():
        for c in st.channels:
            rank[(st.name, c.name)] = len(rank)
    keys = list(keys)
    return sorted(keys, key=lambda k: (rank.get(k, len(rank)), keys.index(k)))


def figure(series: Series, session: Session, title: str = ""):
    """The matplotlib figure `plot` writes: one panel per channel, in announced order, title above."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    segments = series.segments()
    if not segments:
        raise PlotError("no samples to plot (no DATA frames after a HELLO in the recording)")
    units = {}
    for st in session.streams.values():
        for c in st.channels:
            units[(st.name, c.name)] = c.unit
    series = {k: segments[k] for k in panel_order(segments, session)}
    n = len(series)
    fig, axes = plt.subplots(n, 1, figsize=(10, max(2.0, 1.6 * n + 0.6)), sharex=True, squeeze=False,
                             layout="constrained")  # makes room for the title, unlike tight_layout
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, ((stream, ch), segs) in zip(axes[:, 0], series.items()):
        for k, (x, y) in enumerate(segs):
            ax.plot(x, y, lw=0.8, color=colors[k % len(colors)],
                    label=f"boot {k + 1}" if len(segs) > 1 else None)
        ax.set_ylabel(f"{stream}\n{ch} [{units.get((stream, ch), '')}]", fontsize=8)
        ax.grid(True, alpha=0.3)
        if len(segs) > 1:
            ax.legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("time since the first sample [s] (device clock)")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot(series: Series, session: Session, out: str | os.PathLike, title: str = "", dpi: int = 100) -> int:
    """Write a PNG (or any matplotlib format by extension) with one panel per channel of `series`;
    units from `session`. Returns the number of panels."""
    import matplotlib
    import matplotlib.pyplot as plt

    check_output(out)
    fig = figure(series, session, title)
    n = len(fig.axes)
    try:
        with matplotlib.rc_context({"agg.path.chunksize": _AGG_CHUNK}):
            fig.savefig(out, dpi=dpi)
    except OSError as e:
        raise PlotError(f"{out}: cannot write plot ({e.strerror or e})") from None
    finally:
        plt.close(fig)
    return n
