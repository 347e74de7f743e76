"""Feeds for the monitor: a live link (with recording) or a recording replayed in time.

Both give the same interface to the views (TUI, machine-readable output): `poll()` applies what
arrived to the shared `Session` and returns the DATA batches; both are `host.protocol.commands.Commands`,
so `start()`, `set_period()`, ... send a command frame, fire and forget (a token, 0 if not sent): the
ACK shows up in the event log.

`LiveFeed` reads the port through a `host.device.reader.Reader`, whose thread also writes every
chunk to the recorder the moment it arrives (so a slow UI never delays or loses recorded bytes);
`poll()` runs on the caller's thread and is the only place the session changes, so views never see
it half-updated. It also judges the board's liveness (`host.monitoring.liveness`): a stall when no
frame came for several expected periods, and commands that got no ACK; both go to the event log.
"""
from __future__ import annotations

import queue
import re
import time
from collections.abc import Callable, Iterable

from host.device.reader import LinkLike, Reader
from host.device.recording import Damage, Kind, Record, Recorder
from firmware import wire
from host.monitoring.export import apply_record
from host.monitoring.liveness import Liveness
from host.monitoring.session import Session
from host.monitoring.state import Batch
from host.protocol.commands import Commands, opcode

# what a board at its REPL sends back (to SEND_HELLO's bytes, or on its own): the friendly prompt, the
# raw REPL's banner, its "OK<Ctrl-D>" reply framing, or a traceback from what it took as typed input
_REPL_TEXT = re.compile(r'^>>>|raw REPL; CTRL-B to exit|^OK\x04|File "<stdin>"|^\x04?>$')
# interrupt whatever runs, leave the raw REPL (Ctrl-B), soft reset from the friendly REPL (Ctrl-D):
# only a soft reset from the friendly REPL runs boot.py and main.py again
START_APP = b"\r\x03\x03\x02\x04"


def board_line_rate(board: str) -> float | None:
    """The default line rate (bytes/s) of the board a HELLO names, when its definition has a link
    section; None for an unknown board or one without."""
    from host.device.boards import load_board
    from host.errors import BoardDefinitionError

    try:
        link = load_board(board).link
    except BoardDefinitionError:
        return None
    return None if link is None else float(link.default_bytes_per_s)


def _stream_names(session: Session) -> Callable[[int], str | None]:
    def name(sid: int) -> str | None:
        st = session.streams.get(sid)
        return st.name if st is not None else None
    return name


class LiveFeed(Commands):
    """A board on a link, optionally recorded.

    Args:
        link: a `host.device.link.Link` (or a fake with read/write/events/close).
        session: the state to update.
        recorder: where every received chunk, sent command and link event goes (None: no recording).
        hello_on_connect: ask for metadata (HELLO + CALIB) on connect and reconnect.
        start_app: when the board turns out to sit at its REPL, start the app (soft reset) at once
            instead of only saying so (`at_repl`, and `start_app()` for a key).
        clock: host time in seconds, for arrivals, notes and the liveness judgement.
        liveness: the stall/ACK judge (default: `Liveness` with its default thresholds).
    """

    live = True

    def __init__(self, link: LinkLike, session: Session, recorder: Recorder | None = None,
                 hello_on_connect: bool = True, clock: Callable[[], float] = time.time,
                 liveness: Liveness | None = None, start_app: bool = False) -> None:
        self.link = link
        self.session = session
        self.recorder = recorder
        self.hello_on_connect = hello_on_connect
        self._clock = clock
        self._q: queue.SimpleQueue = queue.SimpleQueue()  # unbounded, C: ~300 reads a second at 1 MB/s
        super().__init__(self.send, _stream_names(session))
        self.reader = Reader(link, self._on_read, self._on_event, recorder=recorder,
                             on_error=lambda _exc: self._q.put(None), clock=clock,
                             name="pagerless-link-reader")
        self.finished = False
        self.liveness = liveness if liveness is not None else Liveness(self._host_note)
        session.on_ack = lambda a, t: self.liveness.answered(a.token, a.ok, t)
        self._frames_seen = 0
        self._hello_seen: dict | None = None
        self._op = 0
        self.auto_start_app = start_app
        self.at_repl = False  # the board answered as a REPL, not as the app, since the last frame
        self._text_seen = 0
        self._frames_at_repl = 0
        self.on_poll = None  # called with (batches, host time) after each poll (host.fleet publishes them)

    def _host_note(self, t: float, text: str) -> None:
        self.session.note(text, t)

    @property
    def error(self) -> BaseException | None:
        return self.reader.error

    # -- reader thread
    def start_reader(self) -> None:
        self.liveness.started(self._clock())
        if self.hello_on_connect:
            self.request_hello()
        self.reader.start()

    def _on_read(self, t: float, data: bytes) -> None:
        self._q.put((t, data))

    def _on_event(self, ev) -> None:
        self._q.put((ev.t, ev))
        if ev.event == "reconnected" and self.hello_on_connect:
            self.request_hello()

    # -- caller's thread
    def poll(self, timeout: float = 0.0) -> list[Batch]:
        """Apply everything received so far to the session; wait up to `timeout` for the first item;
        then judge liveness at the clock's time."""
        out = self._drain(timeout)
        self.liveness.check(self._clock())
        if self.on_poll is not None:
            self.on_poll(out, self._clock())
        return out

    def _fed(self, reads: list[tuple[float, bytes]]) -> list[Batch]:
        out = self.session.feed_reads(reads)
        s = self.session
        if s.stats.frames_ok != self._frames_seen:
            self._frames_seen = s.stats.frames_ok
            self.liveness.frame(reads[-1][0])
        if s.device.hello is not self._hello_seen:
            self._hello_seen = s.device.hello
            self.liveness.streams(s.decoder.streams.values())
        self._watch_repl(reads[-1][0])
        return out

    def _watch_repl(self, t: float) -> None:
        """Notice a board at its (friendly or raw) REPL: it sends text, never frames, so without
        this the view stays empty. Said once per stay; any frame means the app runs again."""
        s = self.session
        lines = s.log_since(self._text_seen)
        self._text_seen = s.log_count
        if self.at_repl and s.stats.frames_ok != self._frames_at_repl:
            self.at_repl = False
        if self.at_repl or not any(x.source == "text" and _REPL_TEXT.search(x.text) for x in lines):
            return
        self.at_repl = True
        self._frames_at_repl = s.stats.frames_ok
        if self.auto_start_app:
            s.note("the board is at its REPL, not running the app: starting it (soft reset)", t)
            self.start_app()
        else:
            s.note("the board is at its REPL, not running the app: press a to start it (soft reset), "
                   "or run the monitor with --start-app", t)

    def start_app(self) -> bool:
        """Leave the REPL and soft-reset, so boot.py and main.py run (the app then sends its HELLO)."""
        ok = self.reader.write(START_APP)
        if ok:
            self._q.put((self._clock(), _Note("sent Ctrl-C, Ctrl-B, Ctrl-D: start the app (soft reset)")))
        return ok

    def _drain(self, timeout: float) -> list[Batch]:
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
                    out += self._fed(reads)
                    reads = []
                if item is None:
                    err, self.reader.error = self.reader.error, None
                    if err is not None:
                        raise err
                elif isinstance(item[1], _Note):
                    note = item[1]
                    self.session.note(note.text, item[0])
                    if note.token:
                        self.liveness.sent(note.token, note.opcode, item[0])
                else:
                    ev = item[1]
                    self.session.link_event(ev.event, ev.detail, ev.t)
                    if ev.event in ("disconnected", "reconnected"):
                        self.liveness.link(ev.event == "reconnected", ev.t)
            try:
                item = self._q.get_nowait()
            except queue.Empty:
                if reads:
                    out += self._fed(reads)
                return out

    def command(self, op: int | str, stream: int = wire.ALL_STREAMS, args: bytes = b"", detail: str = "") -> int:
        self._op = opcode(op)  # for send(): the ACK that must answer it
        return super().command(op, stream, args, detail)

    def send(self, data: bytes, what: str) -> bool:
        t = self._clock()
        ok = self.reader.write(data)
        if ok:
            self._q.put((t, _Note(f"sent {what}", self.token, self._op)))
        return ok

    def close(self) -> None:
        self.reader.close()


class _Note:
    """A host note travelling through the queue (shown in the event log); for a command sent,
    its token and opcode (the liveness judge waits for their ACK)."""

    def __init__(self, text: str, token: int = 0, opcode: int = 0) -> None:
        self.text = text
        self.token = token
        self.opcode = opcode


class ReplayFeed(Commands):
    """A recording played back through the same session (and so the same decoder and views).

    Args:
        records: the recording's records (and Damage markers) in order: a list, or a streaming
            `host.device.recording.RecordingReader`, consumed as the replay goes.
        speed: 1.0 = real time, 10 = ten times faster, 0 = as fast as possible.
    """

    live = False

    def __init__(self, records: Iterable[Record | Damage], session: Session, speed: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._records = iter(records)
        self._next = next(self._records, None)
        self.session = session
        self.speed = speed
        self._clock = clock
        self._t0_wall: float | None = None
        self._t0_rec = self._next.t if self._next is not None else 0.0
        self._t_last = self._t0_rec
        self.finished = self._next is None
        super().__init__(self.send, _stream_names(session))
        self.batch_records = 64  # per poll at speed 0, so log lines and samples interleave

    def poll(self, timeout: float = 0.0) -> list[Batch]:
        if self.finished:
            return []
        if self._t0_wall is None:
            self._t0_wall = self._clock()
        out: list[Batch] = []
        limit = None if self.speed <= 0 else self._t0_rec + (self._clock() - self._t0_wall) * self.speed
        n = 0
        while self._next is not None and (limit is None and n < self.batch_records
                                          or limit is not None and self._next.t <= limit):
            rec, self._next = self._next, next(self._records, None)
            n += 1
            self._t_last = rec.t
            if isinstance(rec, Record) and rec.kind == Kind.TX:
                self.session.note(f"sent {len(rec.payload)} command bytes", rec.t)
                continue
            out += apply_record(self.session, rec)
        if self._next is None:
            out += self.session.finish(self._t_last)
            self.finished = True
            self.session.note("end of recording", self._t_last)
        return out

    def send(self, data: bytes, what: str) -> bool:
        self.session.note(f"replay: not sending {what}", self.session.now)
        return False

    def close(self) -> None:
        pass
