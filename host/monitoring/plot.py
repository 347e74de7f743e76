"""Plot a recording: one panel per channel, gaps drawn as gaps.

x is seconds since the start of the recording: each boot session is anchored at the host time of its
first frame and advances with the device's own sample clock. A session is drawn as its own line (a
reboot never joins two runs), frames lost on the link break the line (a NaN is inserted), and missing
samples are NaN already.
"""
from __future__ import annotations

import os

import numpy as np

from host.monitoring.export import Loaded


class PlotError(Exception):
    pass


def _series(loaded: Loaded) -> dict[tuple[str, str], list[tuple[np.ndarray, np.ndarray]]]:
    """(stream, channel) -> list of (x, y) segments, one per boot session, NaN at gaps."""
    t_start = loaded.batches[0].t_host if loaded.batches else 0.0
    anchors: dict[int, tuple[float, int]] = {}
    parts: dict[tuple[str, str, int], list[tuple[np.ndarray, np.ndarray]]] = {}
    for b in loaded.batches:
        if b.session not in anchors:
            anchors[b.session] = (b.t_host - t_start, int(b.t_us[0]))
        x0, us0 = anchors[b.session]
        x = x0 + (b.t_us - us0) / 1e6
        for name, y in b.values.items():
            key = (b.name, name, b.session)
            lst = parts.setdefault(key, [])
            if b.gap_before and lst:
                lst.append((np.array([np.nan]), np.array([np.nan])))
            lst.append((x, y))
    out: dict[tuple[str, str], list[tuple[np.ndarray, np.ndarray]]] = {}
    for (stream, ch, _session), segs in parts.items():
        xs = np.concatenate([s[0] for s in segs])
        ys = np.concatenate([s[1] for s in segs])
        out.setdefault((stream, ch), []).append((xs, ys))
    return out


def plot(loaded: Loaded, out: str | os.PathLike, title: str = "", dpi: int = 100) -> int:
    """Write a PNG (or any matplotlib format by extension) with one panel per channel.
    Returns the number of panels."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = _series(loaded)
    if not series:
        raise PlotError("no samples to plot (no DATA frames after a HELLO in the recording)")
    units = {}
    for st in loaded.session.streams.values():
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
        fig.savefig(out, dpi=dpi)
    except OSError as e:
        raise PlotError(f"{out}: cannot write plot ({e.strerror or e})") from None
    finally:
        plt.close(fig)
    return n
