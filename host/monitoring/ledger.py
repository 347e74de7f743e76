"""The sample ledger: every sample a board produced, accounted for by cause, over every boot,
reconnect and recording file (docs/protocol.md, "Sample ledger").

The device's seq numbers are the backbone: a stream's frames_built + frames_skipped is its next
seq, so any seq the host never received is a frame the device dropped (ring full), skipped
(overrun), or that went missing between the device and us.  The device counters say how many of
a stretch's missing frames are its own; what is left was lost in transit and is attributed only
from evidence found in the gap's *arrival window* (between the stream's frame before the gap and
the frame or STATUS after it): a damaged region of the recording, the port going away, or corrupt
segments on the link (one frame per segment at most, each segment used once).  Whatever no
evidence explains is "unexplained", and any of it fails the verdict.  Stretches after a boot's
last STATUS are settled from evidence only; the rest is "not_reported", with the reason.

Feed it in arrival order: `frame` for every frame the decoder returned, `link_event` for the
port's events, `damage` where a recording skipped bytes.  All lines are in samples.  The result
types (`Lines`, `Report`) live in `host.monitoring.ledger_lines`, the evidence of loss in transit
and its matching to gaps in `host.monitoring.transit_evidence`.
"""
from __future__ import annotations

from firmware import wire
from host.monitoring.ledger_lines import (FRAME_LINES, LINE_NAMES, SCHEMA, Lines, Report, unique_names,
                                          verdict_of)
from host.monitoring.transit_evidence import TransitEvidence
from host.protocol.frames import Frame, parse_streams

__all__ = ["FRAME_LINES", "LINE_NAMES", "PORT_EVENTS", "SCHEMA", "Ledger", "Lines", "Report", "unique_names",
           "verdict_of"]

PORT_EVENTS = frozenset({"disconnected", "reconnected", "lost"})
_MOD = 1 << 30
_CAUSES = wire.FLAG_MISS_OVERRUN | wire.FLAG_MISS_SENSOR
_T_DATA, _FLAG_MISSING = wire.T_DATA, wire.FLAG_MISSING


def _s16(d: int) -> int:
    d &= 0xFFFF
    return d - 0x10000 if d >= 0x8000 else d


class _Track:
    """One stream in one boot.  Seqs are unwrapped ("u"); [base, hi) is the stretch accounted."""

    __slots__ = ("sid", "name", "batch", "batch_known", "base", "hi", "last_pos", "gaps", "known", "dropped",
                 "skipped", "has_status", "frames", "samples", "frames_dropped", "lines")

    def __init__(self, sid: int, batch: int | None) -> None:
        self.sid, self.name = sid, f"stream{sid}"
        # a stream first named by a STATUS has no batch yet: its frame-counted lines stay in frames
        # (batch 1) until a DATA frame or the HELLO says how many samples a frame holds
        self.batch, self.batch_known = (batch, True) if batch else (1, False)
        self.base: int | None = None
        self.hi = 0
        self.last_pos = 0
        self.gaps: list[list[int]] = []  # [start, end, window lo, window hi] not yet settled
        self.known = False  # device counters at the settled point are known
        self.dropped = self.skipped = 0  # device counters at the settled point
        self.has_status = False
        self.frames = self.samples = 0  # received since base
        self.frames_dropped = 0
        self.lines = Lines()

    def start(self, u: int, pos: int, known: bool, dropped: int = 0, skipped: int = 0) -> None:
        self.base = self.hi = u
        self.last_pos = pos
        self.known, self.dropped, self.skipped = known, dropped, skipped

    def set_batch(self, batch: int) -> None:
        """The batch is known now: lines settled before it, counted in frames, become samples."""
        if not self.batch_known:
            for k in FRAME_LINES:
                setattr(self.lines, k, getattr(self.lines, k) * batch)
        self.batch, self.batch_known = batch, True

    def produced(self) -> int:
        if self.base is None:
            return 0
        return self.samples + self.batch * (self.hi - self.base - self.frames)


class _Boot:
    __slots__ = ("session", "boot_id", "start_pos", "from_boot", "max_seq", "has_status", "final", "tracks")

    def __init__(self, session: int, boot_id: int, pos: int) -> None:
        self.session, self.boot_id, self.start_pos = session, boot_id, pos
        self.from_boot = False
        self.max_seq = 0
        self.has_status = self.final = False
        self.tracks: dict[int, _Track] = {}


class Ledger:
    """The ledger of one monitor run (live or a recording), over all its boots."""

    def __init__(self) -> None:
        self.boots: list[_Boot] = []
        self._by_session: dict[int, _Boot] = {}
        self._pos = 0
        self._corrupt_seen: int | None = None
        self._evidence = TransitEvidence()

    # -- inputs
    def frame(self, f: Frame) -> None:
        """Every frame the decoder returned, in arrival order (f.corrupt: segments before it)."""
        if f.corrupt != self._corrupt_seen:
            self.corrupt(f.corrupt)
        self._pos += 1
        boot = self._by_session.get(f.session)
        if boot is None:
            for old in self.boots:
                self._finish(old, "the boot ended before a STATUS reported them")
            boot = self._by_session[f.session] = _Boot(f.session, f.boot_id, self._pos)
            self.boots.append(boot)
        t = f.type
        if t == _T_DATA:
            self._data(boot, f)
        elif t == wire.T_HELLO:
            self._hello(boot, f)
        elif t == wire.T_STATUS:
            self._status(boot, f)
        if t != wire.T_CMD and f.seq > boot.max_seq:
            boot.max_seq = f.seq

    def corrupt(self, total: int) -> None:
        """The decoder's corrupt-segment count (LinkStats.corrupt_segments) as of now."""
        if self._corrupt_seen is not None and total > self._corrupt_seen:
            self._pos += 1
            self._evidence.corrupt(self._pos, total - self._corrupt_seen)
        self._corrupt_seen = total if self._corrupt_seen is None else max(total, self._corrupt_seen)

    def link_event(self, event: str) -> None:
        if event in PORT_EVENTS:
            self._pos += 1
            self._evidence.port_event(self._pos)

    def damage(self) -> None:
        """A recording skipped bytes here (whatever they held arrived between the neighbours)."""
        self._pos += 1
        self._evidence.damage(self._pos)

    def unseen(self, f: Frame) -> None:
        """A DATA frame already entered, that the monitor could not decode (no HELLO in time)."""
        boot = self._by_session.get(f.session)
        tr = boot.tracks.get(f.stream) if boot else None
        if tr is None:
            return
        L = tr.lines
        marks, cause = _marks(f)
        L.delivered -= f.count - marks
        if marks:
            setattr(L, cause, getattr(L, cause) - marks)
        L.lost_before_hello += f.count

    def finish(self) -> None:
        """End of input: the last boot's unsettled stretches are settled from evidence."""
        if self.boots:
            self._finish(self.boots[-1], "after the last STATUS at the end of the run")

    # -- per frame type
    def _track(self, boot: _Boot, sid: int, batch: int | None = None) -> _Track:
        tr = boot.tracks.get(sid)
        if tr is None:
            tr = boot.tracks[sid] = _Track(sid, batch)
            if boot.from_boot:
                tr.start(0, boot.start_pos, True)
        return tr

    def _hello(self, boot: _Boot, f: Frame) -> None:
        if f.seq == 0 and boot.max_seq == 0 and not boot.tracks:
            boot.from_boot = True  # we saw the boot: every counter and seq starts at 0
        streams = parse_streams(f.hello())
        names, _ = unique_names(streams)
        for sid, info in streams.items():
            tr = self._track(boot, sid, max(info.batch, 1))
            tr.name = names[sid]
            tr.set_batch(max(info.batch, 1))

    def _data(self, boot: _Boot, f: Frame) -> None:
        count = f.count
        tr = boot.tracks.get(f.stream)
        if tr is None:
            tr = self._track(boot, f.stream, count)
        if not tr.batch_known:
            tr.set_batch(count)
        if tr.base is None:
            tr.start(f.seq, self._pos, False)
        hi = tr.hi
        d = (f.seq - hi) & 0xFFFF
        if d:
            if d >= 0x8000:
                return  # behind what is accounted (a duplicate the decoder let through)
            tr.gaps.append([hi, hi + d, tr.last_pos, self._pos])
        tr.hi, tr.last_pos = hi + d + 1, self._pos
        tr.frames += 1
        tr.samples += count
        if f.flags & _FLAG_MISSING:
            marks, cause = _marks(f)
            L = tr.lines
            L.delivered += count - marks
            setattr(L, cause, getattr(L, cause) + marks)
        else:
            tr.lines.delivered += count

    def _status(self, boot: _Boot, f: Frame) -> None:
        boot.has_status = True
        todo = []
        for x in f.status().streams:
            tr = self._track(boot, x.stream)
            n = (x.frames_built + x.frames_skipped) % _MOD
            if tr.base is None:
                tr.start(n, self._pos, True, x.frames_dropped, x.frames_skipped)
                tr.has_status = True
                continue
            todo.append((tr, tr.hi + _s16(n - tr.hi), x.frames_dropped, x.frames_skipped))
        self._settle(todo)

    # -- accounting
    def _settle(self, todo: list) -> None:
        """A STATUS says each stream's frames below n_u are all built or skipped, and every one sent
        is already here (one ring, in order): settle their gaps with the device's counts."""
        rows = []
        for tr, n_u, dropped, skipped in todo:
            if n_u > tr.hi:
                tr.gaps.append([tr.hi, n_u, tr.last_pos, self._pos])
                tr.hi = n_u
            tr.last_pos = self._pos  # later gaps are of frames sent after this STATUS
            g = sum(e - s for s, e, _, _ in tr.gaps)
            # joined late with the first frame before the first STATUS: counters at base unknown
            dev = (dropped - tr.dropped) % _MOD + (skipped - tr.skipped) % _MOD if tr.known else 0
            rows.append((tr, tr.gaps, max(g - dev, 0), g - dev, dropped, skipped))
            tr.gaps = []
        done = self._evidence.allocate([(gaps, t) for _, gaps, t, _, _, _ in rows], consume=True)
        for (link, port, rec, left), (tr, _, _, excess, dropped, skipped) in zip(done, rows):
            L, b = tr.lines, tr.batch
            if tr.known:
                dd, dk = (dropped - tr.dropped) % _MOD, (skipped - tr.skipped) % _MOD
                if excess < 0:
                    left += excess
                    L.reasons.append(f"{tr.name}: the device reports {-excess} more dropped/skipped frame(s) "
                                     "than seqs missing")
            else:
                dd = min(left, dropped)
                dk = min(left - dd, skipped)
                left -= dd + dk
                tr.known = True
            if left > 0:
                L.reasons.append(f"{tr.name}: {left} frame(s) missing with no device count and no evidence")
            L.dropped_device += dd * b
            L.skipped_overrun += dk * b
            L.lost_link += link * b
            L.lost_port_gone += port * b
            L.lost_recording += rec * b
            L.unexplained += left * b
            tr.frames_dropped += dd
            tr.dropped, tr.skipped, tr.has_status = dropped, skipped, True

    def _finish(self, boot: _Boot, why: str) -> None:
        if boot.final:
            return
        boot.final = True
        self._tails(boot, {tr.sid: tr.lines for tr in boot.tracks.values()}, why, consume=True)
        for tr in boot.tracks.values():
            tr.gaps = []

    def _tails(self, boot: _Boot, lines: dict, why: str, consume: bool, used: dict | None = None) -> None:
        """Stretches no STATUS settled: evidence explains what it can, the rest is not reported."""
        trs = [tr for tr in boot.tracks.values() if tr.gaps]
        jobs = [(tr.gaps, sum(e - s for s, e, _, _ in tr.gaps)) for tr in trs]
        for tr, (link, port, rec, left) in zip(trs, self._evidence.allocate(jobs, consume, used)):
            L, b = lines[tr.sid], tr.batch
            L.lost_link += link * b
            L.lost_port_gone += port * b
            L.lost_recording += rec * b
            L.not_reported += left * b
            if left:
                L.reasons.append(f"{tr.name}: {left} frame(s) missing {why}")

    # -- output
    def report(self) -> Report:
        """The ledger as of now (unsettled stretches of the current boot shown as not reported)."""
        used: dict = {}
        boots, streams, total = [], {}, Lines()
        pending = False
        for boot in self.boots:
            bl = Lines()
            per = {}
            copies = {}
            for tr in boot.tracks.values():
                copies[tr.sid] = L = Lines()
                L.add(tr.lines)
            if not boot.final:
                self._tails(boot, copies, "after the last STATUS (not reported yet)", False, used)
            for tr in boot.tracks.values():
                L = copies[tr.sid]
                L.produced = tr.produced()
                per[tr.name] = L
                bl.add(L)
                streams.setdefault(tr.name, Lines()).add(L)
            wait = not boot.final and not boot.has_status and bool(boot.tracks)
            pending = pending or wait
            boots.append({"session": boot.session, "boot_id": f"{boot.boot_id:08x}", "from_boot": boot.from_boot,
                          "streams": {n: x.as_dict() for n, x in per.items()}, "total": bl.as_dict(),
                          "verdict": verdict_of(bl, wait)})
            total.add(bl)
        return Report(boots, streams, total, verdict_of(total, pending))

    def device_frames_dropped(self) -> int:
        return sum(tr.frames_dropped for b in self.boots for tr in b.tracks.values())


def _marks(f: Frame) -> tuple[int, str]:
    """Missing marks of a DATA frame and the ledger line they belong to."""
    if not f.flags & wire.FLAG_MISSING:
        return 0, "missing_mixed"
    bm = (f.count + 7) >> 3
    n = int.from_bytes(f.body[-bm:], "little").bit_count()
    cause = f.flags & _CAUSES
    if cause == wire.FLAG_MISS_OVERRUN:
        return n, "missing_overrun"
    if cause == wire.FLAG_MISS_SENSOR:
        return n, "missing_sensor"
    return n, "missing_mixed"
