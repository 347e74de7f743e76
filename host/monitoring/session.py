"""What the monitor knows about one board: decoder + units + counters, with no I/O and no clock.

`Session.feed(data, t)` takes bytes as read from the port (or from a recording) and the host time
they arrived, and returns the DATA batches they completed, already in physical units. Everything
the live view shows (latest values, rates, sparklines, link counters, device health, the event log)
is state on the session, so the TUI, the machine-readable output, export and plot all share it, and
a replay gives exactly what the live run showed.
"""
from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable

import numpy as np

from firmware import wire
from host.device.recording import Damage
from host.sensors import units
from host.protocol.decoder import Decoder
from host.protocol.frames import DeviceText, Frame, StreamInfo
from host.protocol.linkstats import LinkStats
from host.monitoring.ledger import Ledger, unique_names
from host.monitoring.state import (EVENT_LOG, HELLO_BUFFER, HISTORY, Batch, ChannelState, ChannelViews, DeviceState, LogLine,
                                   StreamState, prune_arrivals, prune_window, window_rate)

_DATA_NAME = wire.TYPE_NAMES[wire.T_DATA]
_T_DATA, _FLAG_MISSING = wire.T_DATA, wire.FLAG_MISSING
_new = tuple.__new__  # _new(Batch, fields): a Batch without a Python call


class Session:
    """Decoder + units + counters for one link (possibly several boots of the board).

    Args:
        line_rate: payload bytes/s the link can carry (for "share of the line rate"); None = unknown.
    """

    def __init__(self, line_rate: float | None = None) -> None:
        self.decoder = Decoder()
        self.line_rate = line_rate
        self.streams: dict[int, StreamState] = {}
        self.device = DeviceState()
        self.log: deque[LogLine] = deque(maxlen=EVENT_LOG)
        self.log_count = 0  # lines ever logged (views show log[-(log_count - seen):])
        self.now = 0.0
        self.frames_by_type: dict[str, int] = {}
        self.link_events = 0
        self._bytes_win: deque = deque()
        self._frames_win: deque = deque()
        self._last_data_seq: dict[tuple[int, int], int] = {}
        self._session_seen = 0
        self._text_buf = ""
        self.on_ack = None  # called with (Ack, host time) for each ACK/NACK (host.monitoring.liveness)
        self.on_frame = None  # called with (Frame, host time) for each non-DATA frame, once applied (host.fleet)
        self.ledger = Ledger()
        self._pre_hello: deque[tuple[Frame, float]] = deque()  # DATA frames waiting for their HELLO
        self._replay: list[tuple[Frame, float]] = []  # ... whose HELLO just came, to decode now
        self.lost_before_hello = 0  # DATA frames the buffer could not hold (in the ledger too)

    # -- inputs
    @property
    def stats(self) -> LinkStats:
        return self.decoder.stats

    def feed(self, data: bytes, t: float) -> list[Batch]:
        """Bytes as read from the port at host time `t`; returns the DATA batches completed."""
        return self.feed_reads(((t, data),))

    def feed_reads(self, reads: Iterable[tuple[float, bytes]]) -> list[Batch]:
        """Several reads in arrival order, each (host time, bytes): the same batches, times and
        state as `feed` on each in turn, with the conversion to units done once per stream for
        all their DATA frames (numpy's cost is per call, and a 4 KiB read holds ~10 small frames)."""
        out: list[Batch] = []
        run: list[tuple[Frame, float]] = []  # consecutive DATA frames of the current boot, not yet converted
        by_type = self.frames_by_type
        ledger_frame = self.ledger.frame
        feed = self.decoder.feed
        rejected = self.decoder.rejected
        for t, data in reads:
            if t > self.now:
                self.now = t
            if data:
                self._bytes_win.append((t, len(data)))
            items = feed(data)
            nframes = 0
            for item in items:
                if item.__class__ is DeviceText:
                    if run:
                        self._data_run(run, out)
                        run = []
                    self._device_text(item.text, t)
                    continue
                nframes += 1
                ledger_frame(item)
                if item.type == _T_DATA and item.session == self._session_seen:
                    by_type[_DATA_NAME] = by_type.get(_DATA_NAME, 0) + 1
                    run.append((item, t))
                    continue
                if run:
                    self._data_run(run, out)
                    run = []
                b = self._frame(item, t)
                if b is not None:
                    out.append(b)
                if self._replay:
                    self._data_run(self._replay, out)
                    self._replay = []
            while rejected:
                self._log(t, "link", rejected.popleft())
            if nframes:
                self._frames_win.append((t, nframes))
        if run:
            self._data_run(run, out)
        self._prune_rates()
        return out

    def _prune_rates(self) -> None:
        """Drop what no rate looks at any more, on every feed: a view that never asks for a rate
        (headless, replay, export) must not keep an entry per read and per frame forever."""
        prune_window(self._bytes_win, self.now)
        prune_window(self._frames_win, self.now)
        for st in self.streams.values():
            prune_arrivals(st._arrivals, self.now)

    def finish(self, t: float) -> list[Batch]:
        """End of input (end of a recording): decode what is left in the decoder's tail."""
        out = []
        for item in self.decoder.flush():
            if isinstance(item, DeviceText):
                self._device_text(item.text, t)
            else:
                b = self._frame(item, t)
                if b is not None:
                    out.append(b)
        if self._text_buf.strip():
            self._log(t, "text", self._text_buf.strip())
        self._text_buf = ""
        self._forget_pre_hello(t, lambda f: True, "no HELLO came for them")
        self.ledger.corrupt(self.stats.corrupt_segments)
        self.ledger.finish()
        return out

    def link_event(self, event: str, detail: str, t: float) -> None:
        self.now = max(self.now, t)
        self.link_events += 1
        self.ledger.corrupt(self.stats.corrupt_segments)
        self.ledger.link_event(event)
        self._log(t, "link", f"{event}: {detail}" if detail else event)

    def note(self, text: str, t: float, source: str = "host") -> None:
        self._log(t, source, text)

    def recording_damage(self, damage: Damage) -> None:
        """A recording skipped `damage.nbytes` damaged bytes here, between the records fed before and
        the records fed after: frames they held are lost to the recording, not to the link."""
        where = "torn tail" if damage.torn else "damaged region"
        self.ledger.corrupt(self.stats.corrupt_segments)
        self.ledger.damage()
        self._log(damage.t, "host", f"recording: {where} of {damage.nbytes} bytes at offset {damage.offset} "
                                    "skipped")

    # -- derived figures
    def bytes_per_s(self, now: float | None = None) -> float:
        return window_rate(self._bytes_win, self.now if now is None else now)

    def frames_per_s(self, now: float | None = None) -> float:
        return window_rate(self._frames_win, self.now if now is None else now)

    def line_share(self, now: float | None = None) -> float | None:
        if not self.line_rate:
            return None
        return self.bytes_per_s(now) / self.line_rate

    def reconciliation(self) -> tuple[str, list[str]]:
        """The sample ledger's verdict ("ok" | "fail" | "pending") and its total and reasons."""
        rep = self.ledger.report()
        return rep.verdict, [rep.total.line(), *rep.total.reasons]

    # -- internals
    def _stream_name(self, sid: int) -> str:
        s = self.streams.get(sid)
        return s.name if s is not None else f"stream {sid}"

    def _log(self, t: float, source: str, text: str) -> None:
        self.log.append(LogLine(t, source, text))
        self.log_count += 1

    def log_since(self, seen: int) -> list[LogLine]:
        """Log lines after the first `seen` ever logged (those still kept)."""
        n = min(self.log_count - seen, len(self.log))
        return list(self.log)[len(self.log) - n:] if n > 0 else []

    def _device_text(self, text: str, t: float) -> None:
        buf = self._text_buf + text.replace("\r\n", "\n").replace("\r", "\n")
        *lines, rest = buf.split("\n")
        for line in lines:
            if line.strip():
                self._log(t, "text", line.rstrip())
        # a prompt has no newline after it: show it once it is clearly complete
        if rest.endswith((">>> ", "> ", "=== ")) or len(rest) > 200:
            self._log(t, "text", rest.rstrip())
            rest = ""
        self._text_buf = rest

    def _frame(self, f: Frame, t: float) -> Batch | None:
        name = f.type_name
        self.frames_by_type[name] = self.frames_by_type.get(name, 0) + 1
        if f.session != self._session_seen:
            self._session_seen = f.session
            self._forget_pre_hello(t, lambda g: g.session != f.session, "their boot ended before its HELLO")
            if f.session > 1 or self.device.boot_id is not None:
                self._log(t, "host", f"new boot id {f.boot_id:08x} (session {f.session})")
            self.device.boot_id = f.boot_id
        ft = f.type
        if ft == wire.T_DATA:
            return self._data(f, t)
        if ft == wire.T_HELLO:
            self._hello(f.hello(), t)
        elif ft == wire.T_CALIB:
            s = self.streams.get(f.stream)
            if s is not None:
                s.calibration = f.body
                s.convert_error = ""
        elif ft == wire.T_STATUS:
            self._status(f)
        elif ft == wire.T_EVENT:
            ev = f.event()
            where = f" {self._stream_name(ev.stream)}" if ev.stream != wire.NO_STREAM else ""
            self._log(t, "device", f"{ev.name}{where} arg={ev.arg}" + (f": {ev.text}" if ev.text else ""))
        elif ft in (wire.T_ACK, wire.T_NACK):
            a = f.ack()
            op = wire.OPCODE_NAMES.get(a.opcode, str(a.opcode))
            self._log(t, "ack", f"{op} #{a.token} " + ("ok" if a.ok else f"refused: {a.reason_name}"))
            if self.on_ack is not None:
                self.on_ack(a, t)
        if self.on_frame is not None:
            self.on_frame(f, t)
        return None

    def _hello(self, hello: dict, t: float) -> None:
        d = self.device
        d.hello = hello
        d.board = str(hello.get("board", d.board))
        fw = hello.get("firmware")  # key fixed by docs/protocol.md (HELLO body)
        d.fw = str(fw) if fw is not None else d.fw
        names, dups = unique_names(self.decoder.streams)
        if dups:
            self._log(t, "host", f"HELLO names several streams {', '.join(dups)}: columns named name#id")
        for sid, info in self.decoder.streams.items():
            old = self.streams.get(sid)
            st = self._stream_state(info)
            st.name = names[sid]
            if old is not None and old.kind == st.kind:
                st.calibration = old.calibration
                st.frames, st.samples, st.gaps = old.frames, old.samples, old.gaps
                st.samples_missing = old.samples_missing
                st._arrivals = old._arrivals
                for new_ch, old_ch in zip(st.channels, old.channels):
                    new_ch.history = old_ch.history
                    new_ch.latest = old_ch.latest
            self.streams[sid] = st
        names = ", ".join(f"{s.name} ({s.kind}, {s.nominal_hz:g} Hz)" for s in self.streams.values())
        self._log(t, "host", f"HELLO from {d.board or '?'} fw {d.fw or '?'}: {names or 'no streams'}")
        self._forget_pre_hello(t, lambda f: f.stream not in self.streams, "the HELLO does not name their stream")
        if self._pre_hello:
            self._replay += self._pre_hello
            self._pre_hello.clear()
            self._log(t, "host", f"decoding {len(self._replay)} DATA frame(s) that came before the HELLO")

    def _forget_pre_hello(self, t: float, which, why: str) -> None:
        gone = [f for f, _ in self._pre_hello if which(f)]
        if gone:
            self._pre_hello = deque(x for x in self._pre_hello if not which(x[0]))
            for f in gone:
                self.ledger.unseen(f)
            self.lost_before_hello += len(gone)
            self._log(t, "host", f"{len(gone)} DATA frame(s) never decoded: {why}")

    @staticmethod
    def _stream_state(info: StreamInfo) -> StreamState:
        try:
            chans = [ChannelState(n, u) for n, u in units.channel_units(info.kind)]
        except units.UnitsError:
            chans = [ChannelState(str(c[0] if isinstance(c, list | tuple) else c), "raw")
                     for c in info.channels]
        return StreamState(info.id, info.name or f"stream{info.id}", info.kind, info.period_us, chans,
                           info.config)

    def _status(self, f: Frame) -> None:
        s = f.status()
        d = self.device
        d.uptime_ms, d.free_heap, d.loop_overruns = s.uptime_ms, s.free_heap, s.loop_overruns
        d.frames_sent, d.frames_dropped = s.frames_sent, s.frames_dropped
        d.reset_cause = wire.RESET_CAUSE_NAMES.get(s.reset_cause, f"cause {s.reset_cause}")
        for x in s.streams:
            st = self.streams.get(x.stream)
            if st is not None:
                st.online = x.online
                st.sensor_errors = x.sensor_errors
                st.device_dropped = x.frames_dropped

    def _data(self, f: Frame, t: float) -> Batch | None:
        out: list[Batch] = []
        self._data_run([(f, t)], out)
        return out[0] if out else None

    def _data_run(self, frames: list[tuple[Frame, float]], out: list[Batch]) -> None:
        """DATA frames of one boot with their arrival times, in arrival order -> their Batches,
        appended to `out` in that order. Counters per frame; units once per stream for all."""
        groups: dict[int, list[tuple[Frame, int, float]]] = {}
        order: list[int] = []  # the stream of each frame kept, in arrival order
        last_seq = self._last_data_seq
        streams = self.streams
        for f, t in frames:
            sid = f.stream
            st = streams.get(sid)
            if st is None:  # before its boot's HELLO: kept until the HELLO comes
                self._pre_hello.append((f, t))
                if len(self._pre_hello) > HELLO_BUFFER:
                    old, _ = self._pre_hello.popleft()
                    self.ledger.unseen(old)
                    self.lost_before_hello += 1
                continue
            key = (f.session, sid)
            seq = f.seq
            last = last_seq.get(key)
            gap = 0
            if last is not None:
                g = (seq - last - 1) & 0xFFFF
                if g < 0x8000:
                    gap = g
            last_seq[key] = seq
            st._arrivals.append((t, f.count))
            grp = groups.get(sid)
            if grp is None:
                grp = groups[sid] = []
            grp.append((f, gap, t))
            order.append(sid)
        if not order:
            return
        done = {}
        for sid, grp in groups.items():
            st = streams[sid]
            st.frames += len(grp)
            st.gaps += sum([g for _, g, _ in grp])
            done[sid] = iter(self._convert(st, grp))
        out.extend([next(done[sid]) for sid in order])

    def _convert(self, st: StreamState, group: list[tuple[Frame, int, float]]) -> list[Batch]:
        """One stream's DATA frames -> Batches whose arrays are views into one conversion."""
        counts, t0s, periods, bodies = [], [], [], []
        flags = 0
        for f, _, _ in group:
            c = f.count
            counts.append(c)
            t0s.append(f.t_us)
            periods.append(f.period_us)
            bodies.append(f.body[:c * f.sample_size])  # = data().samples
            flags |= f.flags
        total = sum(counts)
        st.samples += total
        if flags & _FLAG_MISSING:
            blks = [f.data() for f, _, _ in group]
            missing = np.concatenate([
                np.unpackbits(np.frombuffer(b.missing, np.uint8), bitorder="little")[: b.count] for b in blks
            ]).astype(bool)
            st.samples_missing += int(missing.sum())
            mask = missing
        else:
            missing = np.zeros(total, bool)
            mask = None
        if len(group) == 1:
            f = group[0][0]
            t_us = f.t_us + f.period_us * np.arange(total, dtype=np.int64)
            samples = bodies[0]
        else:
            n = np.array(counts)
            idx = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(n) - n, n)
            t_us = np.repeat(np.array(t0s, np.int64), n) + np.repeat(np.array(periods, np.int64), n) * idx
            samples = b"".join(bodies)
        try:
            values = units.to_physical(st.kind, samples, st.calibration, st.config, missing=mask)
        except (units.UnitsError, ValueError) as e:
            if not st.convert_error:
                self._log(group[0][2], "host", f"{st.name}: cannot convert to units ({e})")
            st.convert_error = str(e)
            values = {c.name: np.full(total, np.nan) for c in st.channels}
        for ch in st.channels:
            arr = values.get(ch.name)
            if arr is None:
                continue
            ch.history.extend(arr[-HISTORY:].tolist())
            last = arr[-1]
            if not math.isnan(last):
                ch.latest = float(last)
            else:
                good = arr[~np.isnan(arr)]
                if good.size:
                    ch.latest = float(good[-1])
        unit_of = {c.name: c.unit for c in st.channels}  # one dict for the run's batches (read-only)
        out = []
        append = out.append
        a = 0
        name = st.name
        for (f, gap, t), c in zip(group, counts):
            b = a + c
            append(_new(Batch, (t, f.session, f.boot_id, f.stream, name, f.seq, gap, t_us[a:b],
                                ChannelViews(values, a, b), unit_of, missing[a:b])))
            a = b
        return out
