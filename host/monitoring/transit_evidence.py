"""Evidence of frames lost between the device and the host, by arrival position, and its
allocation to the gaps the ledger found (docs/protocol.md, "Sample ledger").

A gap is explained only by evidence inside its *arrival window* (between the stream's frame before
the gap and the frame or STATUS after it): a damaged region of the recording, the port going away,
or corrupt segments on the link (one frame per segment at most, each segment used once).  Apart
from `host.monitoring.ledger` because the matching (a maximum flow) is its own problem: the ledger
only asks "how much of these gaps does the evidence explain?"."""
from __future__ import annotations

import bisect


class TransitEvidence:
    """Positions (the ledger's arrival counter) of corrupt segments, port events and damage."""

    def __init__(self) -> None:
        self._cpos: list[int] = []   # positions of corrupt-segment evidence
        self._cn: list[int] = []     # segments still unused at each
        self._port: list[int] = []
        self._damage: list[int] = []

    def corrupt(self, pos: int, segments: int) -> None:
        self._cpos.append(pos)
        self._cn.append(segments)

    def port_event(self, pos: int) -> None:
        self._port.append(pos)

    def damage(self, pos: int) -> None:
        self._damage.append(pos)

    def allocate(self, jobs: list, consume: bool, used: dict | None = None) -> list[tuple]:
        """Frames lost in transit among each job's gaps (job: (gaps, frames to explain)), from the
        evidence in their windows: [(link, port, recording, unexplained)] per job.  Corrupt segments
        are matched to link gaps as a maximum flow (job -> gap -> segment in its window), so one
        stream never takes a segment another stream needed while it had one of its own.
        `consume`: segments used here are gone for later calls; else they are noted in `used`."""
        used = {} if used is None else used
        items = []
        for j, (gaps, _) in enumerate(jobs):
            for s, e, lo, hi in gaps:
                kind = 2 if _within(self._damage, lo, hi) else 1 if _within(self._port, lo, hi) else 0
                items.append((kind, e - s, lo, hi, j))
        left = [t for _, t in jobs]
        got = [[0, 0, 0] for _ in jobs]
        link = [(n, lo, hi, j) for k, n, lo, hi, j in items if k == 0 and left[j] > 0]
        for j, c in self._match(link, left, used).items():
            got[j][0] += c
            left[j] -= c
        for kind in (1, 2):
            for k, n, _, _, j in items:
                if k == kind and left[j] > 0:
                    c = min(n, left[j])
                    got[j][kind] += c
                    left[j] -= c
        if consume:
            for i, n in used.items():
                self._cn[i] -= n
            used.clear()
        return [(*g, x) for g, x in zip(got, left)]

    def _match(self, gaps: list, want: list, used: dict) -> dict[int, int]:
        """Max flow source -> job (frames to explain) -> gap (its size) -> corrupt entry in its
        window (unused segments) -> sink; returns frames explained per job, marks segments used."""
        cap: dict = {}
        adj: dict = {}

        def edge(a, b, c: int) -> None:
            if c > 0 and (a, b) not in cap:
                cap[a, b], cap[b, a] = c, 0
                adj.setdefault(a, []).append(b)
                adj.setdefault(b, []).append(a)

        for g, (n, lo, hi, j) in enumerate(gaps):
            edge("S", ("j", j), want[j])
            edge(("j", j), ("g", g), n)
            for k in range(bisect.bisect_right(self._cpos, lo), bisect.bisect_right(self._cpos, hi)):
                edge(("c", k), "T", self._cn[k] - used.get(k, 0))
                edge(("g", g), ("c", k), n)
        while "S" in adj:
            prev: dict = {"S": None}
            queue = ["S"]
            for a in queue:
                for b in adj[a]:
                    if b not in prev and cap[a, b] > 0:
                        prev[b] = a
                        queue.append(b)
            if "T" not in prev:
                break
            path, b = [], "T"
            while prev[b] is not None:
                path.append((prev[b], b))
                b = prev[b]
            push = min(cap[e] for e in path)
            for a, b in path:
                cap[a, b] -= push
                cap[b, a] += push
        out: dict[int, int] = {}
        for g, (_, _, _, j) in enumerate(gaps):
            for b in adj.get(("g", g), ()):
                if b[0] == "c" and cap[b, ("g", g)] > 0:  # reverse capacity = flow gap -> entry
                    used[b[1]] = used.get(b[1], 0) + cap[b, ("g", g)]
                    out[j] = out.get(j, 0) + cap[b, ("g", g)]
        return out


def _within(positions: list[int], lo: int, hi: int) -> bool:
    i = bisect.bisect_right(positions, lo)
    return i < len(positions) and positions[i] <= hi
