"""One reader pipeline over a `Link`, shared by the monitor's live feed and the HIL capture.

`Reader` runs a thread that reads the link, timestamps each read with the host clock and hands it
to the consumer (`on_read(t, data)`), together with the link's events (`on_event(LinkEvent)`).
With a `Recorder` it writes every read, every write (`Reader.write`) and every link event to the
recording the moment it happens, on the reading thread, so a slow consumer never delays or loses
recorded bytes and the file replays exactly what crossed the port.

The consumer's callbacks run on the reader's thread: they should hand work on (a queue, a
decoder guarded by a lock), not block. An exception in the loop ends it; it is kept in `error`
and passed to `on_error`, never lost.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

from host.device.link import LinkEvent
from host.device.recording import Kind, Recorder

#: longest a read blocks, so stop() and pause() are answered within about this
READ_WAIT_S = 0.05


class LinkLike(Protocol):
    """What the reader needs of a `host.device.link.Link` (tests pass fakes)."""

    def read(self, max_wait: float = ...) -> bytes: ...
    def write(self, data: bytes) -> bool: ...
    def events(self) -> list: ...
    def close(self) -> None: ...


class Reader:
    """Reads `link` on a thread until `stop()` or `close()`.

    Args:
        link: the board's link (already open; it reconnects by itself).
        on_read: called with (host time s since the epoch, bytes) for every non-empty read.
        on_event: called with each `LinkEvent` (connected, disconnected, reconnected, ...).
        recorder: where every read, write and link event goes (None: nothing recorded).
        on_idle: called after every pass of the loop, data or not (periodic work such as summaries).
        on_error: called with the exception that ended the loop.
        clock: host wall clock in seconds (the recording's time base).
    """

    def __init__(self, link: LinkLike, on_read: Callable[[float, bytes], None],
                 on_event: Callable[[LinkEvent], None] | None = None, *, recorder: Recorder | None = None,
                 on_idle: Callable[[], None] | None = None,
                 on_error: Callable[[BaseException], None] | None = None,
                 clock: Callable[[], float] = time.time, name: str = "pagerless-reader") -> None:
        self.link = link
        self.recorder = recorder
        self._on_read = on_read
        self._on_event = on_event
        self._on_idle = on_idle
        self._on_error = on_error
        self._clock = clock
        self._name = name
        self._rec_lock = threading.Lock()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._paused = False
        self._pause_gen = 0   # pause() requests made
        self._parked_gen = 0  # the last request the thread has obeyed
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> Reader:
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """End the thread (the link and the recorder stay open)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=timeout)

    def close(self) -> None:
        """Stop, close the link, sync and close the recorder."""
        self.stop()
        self.link.close()
        if self.recorder is not None:
            with self._rec_lock:
                self.recorder.close()

    def pause(self, timeout: float = 1.0) -> bool:
        """Stop reading and wait until the thread is parked outside `link.read` (the port stays
        open), so the link may be closed or replaced safely. False if it did not park in time."""
        with self._cond:
            self._paused = True
            self._pause_gen += 1
            gen = self._pause_gen
            if self._thread is None or not self._thread.is_alive():
                return True
            return self._cond.wait_for(lambda: self._parked_gen == gen or self._stop.is_set(), timeout)

    def resume(self, link: LinkLike | None = None) -> None:
        """Read again, from `link` when given (a reopened port)."""
        with self._cond:
            if link is not None:
                self.link = link
            self._paused = False
            self._cond.notify_all()

    # -- writing and recording -----------------------------------------------------------------
    def write(self, data: bytes) -> bool:
        """Write to the link; recorded (TX) when the link took it."""
        t = self._clock()
        ok = self.link.write(data)
        if ok:
            self._record(Kind.TX, data, t)
        return ok

    def meta(self, info: dict) -> None:
        """A META record (who is on the port, which tool, when): opens a session in the recording."""
        if self.recorder is not None:
            with self._rec_lock:
                self.recorder.meta(info, int(self._clock() * 1e9))

    def sync(self) -> None:
        """Flush and fsync the recording now (a reader of the file sees every record so far)."""
        if self.recorder is not None:
            with self._rec_lock:
                self.recorder.sync()

    def _record(self, kind: Kind, data: bytes, t: float) -> None:
        if self.recorder is not None:
            with self._rec_lock:
                self.recorder.write(kind, data, int(t * 1e9))

    # -- the thread ----------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                with self._cond:
                    if self._paused:
                        self._parked_gen = self._pause_gen
                        self._cond.notify_all()
                        self._cond.wait(READ_WAIT_S)
                        continue
                    link = self.link
                data = link.read(READ_WAIT_S)
                t = self._clock()
                if data:
                    self._record(Kind.RX, data, t)
                    self._on_read(t, data)
                for ev in link.events():
                    if self.recorder is not None:
                        with self._rec_lock:
                            self.recorder.link(ev.event, ev.detail, int(ev.t * 1e9))
                    if self._on_event is not None:
                        self._on_event(ev)
                if self._on_idle is not None:
                    self._on_idle()
                if self.recorder is not None:
                    with self._rec_lock:
                        self.recorder.poll()
        except BaseException as exc:  # noqa: BLE001 - kept and handed on, never lost
            self.error = exc
            if self._on_error is not None:
                self._on_error(exc)
