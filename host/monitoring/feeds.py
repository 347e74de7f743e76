"""Feeds for the monitor: a live link (with recording) or a recording replayed in time.

Both give the same interface to the views (TUI, machine-readable output): `poll()` applies what
arrived to the shared `Session` and returns the DATA batches; `command(...)` sends a command frame.

`LiveFeed` reads the port on a background thread, which also writes every chunk to the recorder the
moment it arrives (so a slow UI never delays or loses recorded bytes); `poll()` runs on the caller's
thread and is the only place the session changes, so views never see it half-updated.
"""
from __future__ import annotations

import queue
import struct
import threading
import time
from collections.abc import Callable
from typing import Protocol

from firmware import wire
from host.protocol.decoder import encode_command
from host.monitoring.export import apply_record
from host.device.recording import Kind, Record, Recorder
from host.monitoring.session import Batch, Session


class LinkLike(Protocol):
    connected: bool
    path: str

    def read(self, max_wait: float = ...) -> bytes: ...
    def write(self, data: bytes) -> bool: ...
    def events(self) -> list: ...
    def close(self) -> None: ...


class CommandMixin:
    session: Session
    _token: int = 0

    def send(self, data: bytes, what: str) -> bool:  # pragma: no cover - overridden
        raise NotImplementedError

    def command(self, opcode: int, stream: int = wire.ALL_STREAMS, args: bytes = b"") -> bool:
        """Send one command frame (token = a running counter, quoted back in ACK/NACK)."""
        self._token = (self._token + 1) & 0xFFFF
        name = wire.OPCODE_NAMES.get(opcode, str(opcode))
        target = "all streams" if stream == wire.ALL_STREAMS else self.session.streams.get(stream, None)
        target_s = target if isinstance(target, str) else (target.name if target else f"stream {stream}")
        return self.send(encode_command(opcode, self._token, stream, args), f"{name} #{self._token} ({target_s})")

    def start(self, stream: int = wire.ALL_STREAMS) -> bool:
        return self.command(wire.OP_START, stream)

    def stop(self, stream: int = wire.ALL_STREAMS) -> bool:
        return self.command(wire.OP_STOP, stream)

    def set_period(self, stream: int, period_us: int) -> bool:
        return self.command(wire.OP_SET_PERIOD, stream, struct.pack("<I", period_us))

    def request_hello(self) -> bool:
        return self.command(wire.OP_SEND_HELLO)

    def reboot(self) -> bool:
        return self.command(wire.OP_REBOOT)


class LiveFeed(CommandMixin):
    """A board on a link, optionally recorded.

    Args:
        link: a `host.device.link.Link` (or a fake with read/write/events/close).
        session: the state to update.
        recorder: where every received chunk, sent command and link event goes (None: no recording).
        hello_on_connect: ask for metadata (HELLO + CALIB) on connect and reconnect.
    """

    live = True

    def __init__(self, link: LinkLike, session: Session, recorder: Recorder | None = None,
                 hello_on_connect: bool = True, clock: Callable[[], float] = time.time) -> None:
        self.link = link
        self.session = session
        self.recorder = recorder
        self.hello_on_connect = hello_on_connect
        self._clock = clock
        self._q: queue.Queue = queue.Queue()
        self._rec_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.finished = False
        self.error: BaseException | None = None

    # -- reader thread
    def start_reader(self) -> None:
        if self.hello_on_connect:
            self.request_hello()
        self._thread = threading.Thread(target=self._reader, name="pagerless-link-reader", daemon=True)
        self._thread.start()

    def _reader(self) -> None:
        try:
            while not self._stop.is_set():
                data = self.link.read(0.05)
                t = self._clock()
                if data:
                    self._record(Kind.RX, data, t)
                    self._q.put((t, data))
                for ev in self.link.events():
                    self._record_link(ev.event, ev.detail, ev.t)
                    self._q.put((ev.t, ev))
                    if ev.event == "reconnected" and self.hello_on_connect:
                        self.request_hello()
                if self.recorder is not None:
                    with self._rec_lock:
                        self.recorder.poll()
        except BaseException as e:  # surfaced by poll() on the caller's thread
            self.error = e
            self._q.put(None)

    def _record(self, kind: Kind, data: bytes, t: float) -> None:
        if self.recorder is not None:
            with self._rec_lock:
                self.recorder.write(kind, data, int(t * 1e9))

    def _record_link(self, event: str, detail: str, t: float) -> None:
        if self.recorder is not None:
            with self._rec_lock:
                self.recorder.link(event, detail, int(t * 1e9))

    # -- caller's thread
    def poll(self, timeout: float = 0.0) -> list[Batch]:
        """Apply everything received so far to the session; wait up to `timeout` for the first item."""
        out: list[Batch] = []
        try:
            item = self._q.get(timeout=timeout) if timeout > 0 else self._q.get_nowait()
        except queue.Empty:
            return out
        reads: list[tuple[float, bytes]] = []  # consecutive reads go to the session together
        while True:
            if isinstance(item, tuple) and isinstance(item[1], bytes):
                reads.append(item)
            else:
                if reads:
                    out += self.session.feed_reads(reads)
                    reads = []
                if item is None:
                    if self.error is not None:
                        err, self.error = self.error, None
                        raise err
                elif isinstance(item[1], _Note):
                    self.session.note(item[1].text, item[0])
                else:
                    ev = item[1]
                    self.session.link_event(ev.event, ev.detail, ev.t)
            try:
                item = self._q.get_nowait()
            except queue.Empty:
                if reads:
                    out += self.session.feed_reads(reads)
                return out

    def send(self, data: bytes, what: str) -> bool:
        t = self._clock()
        ok = self.link.write(data)
        if ok:
            self._record(Kind.TX, data, t)
            self._q.put((t, _Note(f"sent {what}")))
        return ok

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        self.link.close()
        if self.recorder is not None:
            with self._rec_lock:
                self.recorder.close()


class _Note:
    """A host note travelling through the queue (shown in the event log)."""

    def __init__(self, text: str) -> None:
        self.text = text


class ReplayFeed(CommandMixin):
    """A recording played back through the same session (and so the same decoder and views).

    Args:
        records: the recording's records.
        speed: 1.0 = real time, 10 = ten times faster, 0 = as fast as possible.
    """

    live = False

    def __init__(self, records: list[Record], session: Session, speed: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.records = records
        self.session = session
        self.speed = speed
        self._clock = clock
        self._i = 0
        self._t0_wall: float | None = None
        self._t0_rec = records[0].t if records else 0.0
        self.finished = not records
        self.batch_records = 64  # per poll at speed 0, so log lines and samples interleave

    def poll(self, timeout: float = 0.0) -> list[Batch]:
        if self.finished:
            return []
        if self._t0_wall is None:
            self._t0_wall = self._clock()
        out: list[Batch] = []
        limit = None if self.speed <= 0 else self._t0_rec + (self._clock() - self._t0_wall) * self.speed
        recs = self.records
        stop = len(recs) if limit is not None else min(len(recs), self._i + self.batch_records)
        while self._i < stop and (limit is None or recs[self._i].t <= limit):
            rec = recs[self._i]
            self._i += 1
            if rec.kind == Kind.TX:
                self.session.note(f"sent {len(rec.payload)} command bytes", rec.t)
                continue
            out += apply_record(self.session, rec)
        if self._i >= len(recs):
            out += self.session.finish(recs[-1].t)
            self.finished = True
            self.session.note("end of recording", recs[-1].t)
        return out

    def send(self, data: bytes, what: str) -> bool:
        self.session.note(f"replay: not sending {what}", self.session.now)
        return False

    def close(self) -> None:
        pass
