"""The board's command set, written once: which opcode, which arguments, which token.

`Commands` turns `start()`, `set_period(imu, 5000)`, `reboot()`... into CMD frames
(firmware/wire.py) and hands each to a `send(frame, what) -> bool` callable, `what` being a short
description for logs ("SET_PERIOD #7 (imu, 5000 us)"). Every call returns the command's token, the
number the board quotes back in its ACK/NACK, or 0 when `send` could not write it. The monitor
fires and forgets (a token is truthy); the HIL plugin waits for the ACK that quotes the token.

    cmds = Commands(link_write, stream_name=lambda sid: names.get(sid))
    token = cmds.set_period(0, 5000)
"""
from __future__ import annotations

import struct
from collections.abc import Callable

from firmware import wire
from host.protocol.encoder import encode_command

Send = Callable[[bytes, str], bool]

_OP_BY_NAME = {name: op for op, name in wire.OPCODE_NAMES.items()}


def opcode(op: int | str) -> int:
    """An opcode from wire.OP_* or its name ("SET_PERIOD", any case); unknown names raise ValueError."""
    if isinstance(op, int):
        return op
    try:
        return _OP_BY_NAME[op.upper()]
    except KeyError:
        raise ValueError(f"unknown command {op!r}; one of {', '.join(_OP_BY_NAME)}") from None


class Commands:
    """Encodes and sends commands; one running token per board connection.

    Args:
        send: writes one encoded frame; returns False when the board is not there.
        stream_name: names a stream id for `what` (None: "stream N").
    """

    def __init__(self, send: Send, stream_name: Callable[[int], str | None] | None = None) -> None:
        self._send = send
        self._stream_name = stream_name
        self.token = 0  # the last token used; tokens run 1..65535 and wrap, never 0

    def command(self, op: int | str, stream: int = wire.ALL_STREAMS, args: bytes = b"", detail: str = "") -> int:
        """Send any command (opcode or name); the token, or 0 if it was not written."""
        code = opcode(op)
        self.token = (self.token + 1) & 0xFFFF or 1
        token = self.token
        name = wire.OPCODE_NAMES.get(code, str(code))
        if not detail and args:
            detail = f"args {bytes(args).hex()}"
        what = f"{name} #{token} ({self._target(stream)}{', ' + detail if detail else ''})"
        return token if self._send(encode_command(code, token, stream, args), what) else 0

    def _target(self, stream: int) -> str:
        if stream == wire.ALL_STREAMS:
            return "all streams"
        name = self._stream_name(stream) if self._stream_name is not None else None
        return name if name else f"stream {stream}"

    def start(self, stream: int = wire.ALL_STREAMS) -> int:
        return self.command(wire.OP_START, stream)

    def stop(self, stream: int = wire.ALL_STREAMS) -> int:
        return self.command(wire.OP_STOP, stream)

    def set_period(self, stream: int, period_us: int) -> int:
        return self.command(wire.OP_SET_PERIOD, stream, struct.pack("<I", period_us), f"{period_us} us")

    def request_hello(self) -> int:
        """SEND_HELLO: the board answers with HELLO and one CALIB per stream."""
        return self.command(wire.OP_SEND_HELLO)

    def request_status(self) -> int:
        """SEND_STATUS: the board answers with a STATUS frame."""
        return self.command(wire.OP_SEND_STATUS)

    def ping(self) -> int:
        return self.command(wire.OP_PING)

    def reboot(self) -> int:
        return self.command(wire.OP_REBOOT)

    def repl(self) -> int:
        """REPL: the app stops and leaves the board at the MicroPython REPL."""
        return self.command(wire.OP_REPL)
