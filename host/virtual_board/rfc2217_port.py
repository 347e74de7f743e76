"""The board's UART served as an RFC 2217 port (rfc2217://127.0.0.1:PORT), modem lines included.

A pseudo-terminal has no DTR or RTS: pyserial's `dtr`/`rts` setters end in TIOCMBIS, which a pty
refuses (ENOTTY), and esptool then warns "Chip was NOT reset" and cannot reach the bootloader.
RFC 2217 (Telnet COM-PORT-OPTION) carries line changes, baud rate and purges next to the data;
pyserial speaks it as a client (`serial_for_url("rfc2217://...")`, so esptool, mpremote and
miniterm take the URL as --port) and ships the server side, `serial.rfc2217.PortManager`, which
this module drives with a stand-in serial object whose setters report to the board.

One client at a time (a second connection waits), as one program holds a real port. While a
client is connected the board's output goes to it instead of the pty.
"""
from __future__ import annotations

import socket
import threading
from typing import Callable

from serial import rfc2217


class _Lines:
    """What PortManager sees as `serial`: settings are stored, DTR/RTS changes are reported."""

    def __init__(self, on_lines: Callable[[bool | None, bool | None], None],
                 on_purge: Callable[[], None]) -> None:
        self._on_lines = on_lines
        self._on_purge = on_purge
        self.baudrate, self.bytesize, self.parity, self.stopbits = 115200, 8, "N", 1
        self.xonxoff = self.rtscts = self.break_condition = False
        self.cts = self.dsr = True
        self.ri = self.cd = False
        self._dtr = self._rts = False

    @property
    def dtr(self) -> bool:
        return self._dtr

    @dtr.setter
    def dtr(self, value: bool) -> None:
        self._dtr = bool(value)
        self._on_lines(self._dtr, None)

    @property
    def rts(self) -> bool:
        return self._rts

    @rts.setter
    def rts(self, value: bool) -> None:
        self._rts = bool(value)
        self._on_lines(None, self._rts)

    def reset_input_buffer(self) -> None:
        self._on_purge()

    def reset_output_buffer(self) -> None:
        pass


class Rfc2217Port:
    """Serve the UART on 127.0.0.1 at an ephemeral port; `url` is what tools pass as --port.

    Args:
        host_input: bytes the client sent (Telnet unescaped), for the device side.
        on_lines: DTR/RTS changes (None = that line did not change); both released on disconnect.
    """

    def __init__(self, host_input: Callable[[bytes], None],
                 on_lines: Callable[[bool | None, bool | None], None],
                 on_purge: Callable[[], None] = lambda: None) -> None:
        self._host_input = host_input
        self._on_lines = on_lines
        self._on_purge = on_purge
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"rfc2217://127.0.0.1:{self._server.getsockname()[1]}"
        self._send_lock = threading.Lock()
        self._client: tuple[socket.socket, rfc2217.PortManager] | None = None
        self.lines: _Lines | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="vboard-rfc2217", daemon=True)

    @property
    def connected(self) -> bool:
        return self._client is not None

    @property
    def baudrate(self) -> int:
        return self.lines.baudrate if self.lines is not None else 115200

    def start(self) -> "Rfc2217Port":
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._server.close()
        client = self._client
        if client is not None:
            client[0].close()
        self._thread.join(timeout=2)

    def send(self, data: bytes) -> bool:
        """Bytes from the device to the connected client; False when there is none."""
        with self._send_lock:
            client = self._client
            if client is None:
                return False
            try:
                client[0].sendall(b"".join(client[1].escape(data)))
            except OSError:
                pass  # the client is going away; its reader thread tidies up
            return True

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._session(conn)

    def _session(self, conn: socket.socket) -> None:
        lines = _Lines(self._on_lines, self._on_purge)
        writer = _Writer(conn, self._send_lock)
        manager = rfc2217.PortManager(lines, writer)
        self.lines = lines
        with self._send_lock:
            self._client = (conn, manager)
        try:
            while not self._stop.is_set():
                data = conn.recv(4096)
                if not data:
                    break
                payload = b"".join(manager.filter(data))
                if payload:
                    self._host_input(payload)
        except OSError:
            pass
        finally:
            with self._send_lock:
                self._client = None
            conn.close()
            if lines.dtr or lines.rts:
                self._on_lines(False, False)  # a closed port releases its modem lines


class _Writer:
    """The `connection` PortManager writes its Telnet negotiation to."""

    def __init__(self, conn: socket.socket, lock: threading.Lock) -> None:
        self._conn = conn
        self._lock = lock

    def write(self, data: bytes) -> None:
        with self._lock:  # never interleaved with the data Rfc2217Port.send writes
            try:
                self._conn.sendall(data)
            except OSError:
                pass
