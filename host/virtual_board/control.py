"""Fault injection from another process: a JSON-lines control socket beside the board.

The runner serves it; `BoardClient` speaks it, so a test or a shell (`python -m host.virtual_board
fault ...`) can unplug a chip on a board started elsewhere. Only the names in ALLOWED can be called.
"""
from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path

ALLOWED = {
    "status", "reset", "power_cycle", "unplug", "replug", "set_nack_rate", "set_bus_stuck", "hang", "freeze",
    "set_wrong_id", "set_backpressure", "set_bit_error_rate", "set_drop_rate", "set_link_rate",
    "disconnect", "reconnect", "truth",
}


class ControlError(Exception):
    """The board refused or could not run a control call."""


class ControlServer:
    def __init__(self, board, path: Path):
        self.board = board
        self.path = Path(path)
        if self.path.exists():
            self.path.unlink()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(str(self.path))
        self._sock.listen(4)
        self._thread = threading.Thread(target=self._serve, name="vboard-control", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        try:
            self._sock.close()
        finally:
            if self.path.exists():
                self.path.unlink()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._client, args=(conn,), daemon=True).start()

    def _client(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rwb") as f:
            for line in f:
                try:
                    req = json.loads(line)
                    op, args = req["op"], req.get("args", [])
                    if op not in ALLOWED:
                        raise ControlError(f"unknown control call {op!r}")
                    if op == "truth":
                        result = self.board.chip(args[0]).truth()
                    else:
                        result = getattr(self.board, op)(*args)
                    reply = {"ok": True, "result": result}
                except Exception as exc:  # every failure goes back to the caller as one line
                    reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
                f.write(json.dumps(reply).encode() + b"\n")
                f.flush()


class BoardClient:
    """Calls the fault API of a board running in another process: `BoardClient(sock).unplug("bme280")`."""

    def __init__(self, path: str | os.PathLike, timeout: float = 10.0):
        self.path = str(path)
        self.timeout = timeout

    def call(self, op: str, *args):
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(self.timeout)
                s.connect(self.path)
                s.sendall(json.dumps({"op": op, "args": list(args)}).encode() + b"\n")
                data = b""
                while not data.endswith(b"\n"):
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
        except OSError as exc:
            raise ControlError(f"cannot reach the virtual board at {self.path}: {exc.strerror or exc}") from None
        reply = json.loads(data or b'{"ok": false, "error": "no reply"}')
        if not reply["ok"]:
            raise ControlError(reply["error"])
        return reply["result"]

    def __getattr__(self, op: str):
        if op not in ALLOWED:
            raise AttributeError(op)
        return lambda *args: self.call(op, *args)
