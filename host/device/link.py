"""The serial link to one board: exclusive open, chunked reads, and reconnect to the *same* board.

`Link` owns a port. `read()` returns whatever bytes arrived (possibly none) and never raises for a
port that went away: it closes it, queues a `LinkEvent("disconnected")`, and on later calls asks its
`locate` callable where the board is now (by USB serial number or virtual-board identity, so a new
port name is fine) and reopens it, queueing `LinkEvent("reconnected")`. Only the first open fails
loudly (`PortNotFound`, `PortBusy`, `LinkError`).

Tests inject `opener` (path, baud -> port object with read/write/in_waiting/close) and `locate`, so a
fake port can disappear and come back without any hardware or pty.

A serial device on POSIX (pyserial's `serial.Serial`, opened by pyserial with its exclusive lock
and line settings) is read with one `select` and one `os.read` of up to `READ_MAX` bytes on the
port's file descriptor: pyserial's `in_waiting` + `read` spends an ioctl, a `Timeout`, a
`bytearray` and a second `select` on its abort pipe per read, which at ~300 reads a second (1 MB/s
through a pty) was about half of the monitor's reader thread. Everything else (URLs such as
`rfc2217://` or `socket://`, fakes) is read through pyserial's `read` as before.
"""
from __future__ import annotations

import errno
import os
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import serial

from host.device import holders, ports


class LinkError(Exception):
    """The port cannot be used (message says which and why)."""


class PortNotFound(LinkError):
    pass


class PortBusy(LinkError):
    """Another program (e.g. a second monitor) holds the port."""


class SerialLike(Protocol):
    def read(self, size: int = 1) -> bytes: ...
    def write(self, data: bytes) -> int | None: ...
    @property
    def in_waiting(self) -> int: ...
    def close(self) -> None: ...


Opener = Callable[[str, int], SerialLike]
Locator = Callable[[], "str | None"]


@dataclass(frozen=True, slots=True)
class LinkEvent:
    event: str        # "connected" | "disconnected" | "reconnected" | "busy" | "write_failed"
    detail: str
    t: float          # host wall-clock seconds


READ_TIMEOUT_S = 0.05
READ_MAX = 1 << 16  # bytes per os.read: more than a pty (4 KiB) or a USB CDC driver buffers
_NO_DATA = ("device reports readiness to read but returned no data "
            "(device disconnected or multiple access on port?)")  # pyserial's words for the same state
_RETRY = frozenset({errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR})


def open_serial(path: str, baud: int) -> serial.SerialBase:
    """Open `path` (device path or pyserial URL) exclusively, with a short read timeout.

    Raises PortNotFound / PortBusy / LinkError with a message fit for one line.
    """
    try:
        port = serial.serial_for_url(path, do_not_open=True, baudrate=baud, timeout=READ_TIMEOUT_S,
                                     write_timeout=1.0)
        if hasattr(port, "exclusive"):
            try:
                port.exclusive = True
            except (ValueError, serial.SerialException):
                pass  # URL handlers without locking (loop://, socket://) have nothing to lock
        port.open()
        return port
    except serial.SerialException as e:
        raise _classify(path, e) from None
    except OSError as e:
        raise _classify(path, e) from None
    except ValueError as e:
        raise LinkError(f"{path}: {e}") from None


def _posix_fd(port: object) -> int | None:
    """The file descriptor to read `port` through directly: only pyserial's POSIX `Serial` (a
    device path); None for URL handlers and fakes, which keep their own `read`."""
    if os.name != "posix" or not isinstance(port, serial.Serial) or not getattr(port, "is_open", False):
        return None
    fd = getattr(port, "fd", None)
    return fd if isinstance(fd, int) else None


def _classify(path: str, e: Exception) -> LinkError:
    err = getattr(e, "errno", None)
    text = str(e)
    if err in (errno.ENOENT, errno.ENODEV, errno.ENXIO) or "No such file" in text:
        return PortNotFound(f"{path}: no such port (is the board plugged in?)")
    if holders.is_busy_error(e):
        return PortBusy(holders.busy_message(path))
    if err == errno.EACCES:
        return LinkError(f"{path}: permission denied (add yourself to the dialout/uucp group)")
    return LinkError(f"{path}: cannot open port ({text})")


class Link:
    """One board's port, with reconnect.

    Args:
        path: where the board is now (device path or pyserial URL).
        baud: line rate (ignored by USB CDC, used by UART bridges).
        locate: returns the board's current path, or None while it is absent; defaults to `path`.
        opener: opens a path; defaults to `open_serial` (exclusive).
        retry_interval: seconds between reconnect attempts.
    """

    def __init__(self, path: str, baud: int = 115200, *, locate: Locator | None = None,
                 opener: Opener = open_serial, retry_interval: float = 0.5,
                 clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.baud = baud
        self._locate = locate if locate is not None else (lambda: self.path)
        self._opener = opener
        self.retry_interval = retry_interval
        self._clock = clock
        self._port: SerialLike | None = None
        self._fd: int | None = None  # the port's fd when read directly (`_posix_fd`)
        self._events: list[LinkEvent] = []
        self._lock = threading.Lock()
        self._next_try = 0.0
        self._closed = False
        self.reconnects = 0
        self.disconnects = 0

    # -- state
    @property
    def connected(self) -> bool:
        return self._port is not None

    def open(self) -> None:
        """First open: errors are raised (the caller reports them and exits)."""
        port = self._opener(self.path, self.baud)
        self._fd, self._port = _posix_fd(port), port
        self._event("connected", self.path)

    def close(self) -> None:
        self._closed = True
        with self._lock:
            port, self._port, self._fd = self._port, None, None
        if port is not None:
            try:
                port.close()
            except (OSError, serial.SerialException):
                pass

    def events(self) -> list[LinkEvent]:
        """Link events since the last call."""
        with self._lock:
            out, self._events = self._events, []
        return out

    # -- I/O
    def read(self, max_wait: float = READ_TIMEOUT_S) -> bytes:
        """Bytes that arrived (b"" if none within about `max_wait`). Handles loss and reconnect."""
        port = self._port
        if port is None:
            if not self._closed:
                self._try_reconnect()
            if self._port is None:
                time.sleep(max_wait)
            return b""
        fd = self._fd
        if fd is not None:
            try:
                if not select.select((fd,), (), (), max_wait)[0]:
                    return b""
                data = os.read(fd, READ_MAX)
            except OSError as e:
                if e.errno in _RETRY:
                    return b""
                if self._closed or self._port is not port:
                    return b""  # closed by another thread while this one waited
                self._lost(serial.SerialException(f"read failed: {e}"))
                return b""
            if data:
                return data
            if not self._closed:
                self._lost(serial.SerialException(_NO_DATA))
            return b""
        try:
            n = port.in_waiting
            data = port.read(n if n > 0 else 1)
            if data and n == 0:
                more = port.in_waiting
                if more:
                    data += port.read(more)
            return data
        except (OSError, serial.SerialException) as e:
            self._lost(e)
            return b""
        except (TypeError, AttributeError) as e:  # pyserial on a closed fd in another thread
            if self._closed:
                return b""
            self._lost(e)
            return b""

    def write(self, data: bytes) -> bool:
        """Send bytes; False (and a "write_failed" event) if the board is not there."""
        with self._lock:
            port = self._port
        if port is None:
            self._event("write_failed", "board not connected")
            return False
        try:
            port.write(data)
            return True
        except (OSError, serial.SerialException) as e:
            self._lost(e)
            self._event("write_failed", _reason(e))
            return False

    # -- internals
    def _lost(self, e: BaseException) -> None:
        with self._lock:
            port, self._port, self._fd = self._port, None, None
        if port is None:
            return
        try:
            port.close()
        except (OSError, serial.SerialException):
            pass
        self.disconnects += 1
        self._next_try = time.monotonic() + self.retry_interval
        self._event("disconnected", f"{self.path}: {_reason(e)}; waiting for the same board")

    def _try_reconnect(self) -> None:
        now = time.monotonic()
        if now < self._next_try:
            return
        self._next_try = now + self.retry_interval
        try:
            path = self._locate()
        except (OSError, ValueError):
            path = None
        if path is None:
            return
        try:
            port = self._opener(path, self.baud)
        except PortBusy as e:
            self._event("busy", str(e))
            return
        except LinkError:
            return
        moved = path != self.path
        self.path = path
        with self._lock:
            self._fd, self._port = _posix_fd(port), port
        self.reconnects += 1
        self._event("reconnected", f"{path}" + (" (new port name)" if moved else ""))

    def _event(self, event: str, detail: str) -> None:
        with self._lock:
            self._events.append(LinkEvent(event, detail, self._clock()))


def _reason(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


# ---------------------------------------------------------------- finding the same board again

def _real(path: str) -> str:
    try:
        return os.path.realpath(path)
    except (OSError, ValueError):
        return path


@dataclass(frozen=True, slots=True)
class BoardIdentity:
    kind: str   # "usb" | "virtual" | "path"
    value: str  # USB serial number, virtual board serial, or the path itself

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


def identify(path: str) -> BoardIdentity:
    """Who is behind `path`: a USB serial number, the virtual board's identity, or only the path."""
    vb = ports.read_virtual_board()
    if vb is not None and vb.serial:
        if _real(path) in {_real(vb.port), _real(str(ports.pagerless_home() / "virtual"))}:
            return BoardIdentity("virtual", str(vb.serial))
    real = _real(path)
    for bp in ports.list_boards(include_virtual=False):
        if bp.device in (path, real) and bp.serial_number:
            return BoardIdentity("usb", bp.serial_number)
    return BoardIdentity("path", path)


def locator_for(identity: BoardIdentity) -> Locator:
    """A callable that finds the board with `identity` again, wherever it is now (None if absent)."""
    if identity.kind == "usb":
        def by_serial() -> str | None:
            bp = ports.find_by_serial(identity.value)
            return bp.device if bp is not None else None
        return by_serial
    if identity.kind == "virtual":
        def by_virtual() -> str | None:
            vb = ports.read_virtual_board()
            if vb is not None and str(vb.serial) == identity.value:
                return vb.port
            return None
        return by_virtual

    def same_path() -> str | None:
        return identity.value if "://" in identity.value or os.path.exists(identity.value) else None
    return same_path
