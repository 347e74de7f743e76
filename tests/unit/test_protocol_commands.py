"""host.protocol.commands: one encoding of every command, tokens that never repeat 0, and the
answer of a send that failed."""
from __future__ import annotations

import struct

import pytest

from firmware import wire
from host.protocol.commands import Commands, opcode
from host.protocol.decoder import Decoder


def _decode(data: bytes):
    (f,) = Decoder().feed(data)
    return f


def test_each_command_is_one_cmd_frame_with_its_opcode_stream_and_args() -> None:
    sent: list[tuple[bytes, str]] = []
    cmds = Commands(lambda data, what: sent.append((data, what)) or True,
                    stream_name={0: "imu"}.get)
    assert [cmds.start(), cmds.stop(0), cmds.set_period(0, 5000), cmds.request_hello(), cmds.request_status(),
            cmds.ping(), cmds.reboot(), cmds.repl(), cmds.command("stop", 3)] == list(range(1, 10))
    got = [(c.opcode, c.stream, c.args) for c in (_decode(d).command() for d, _ in sent)]
    assert got == [
        (wire.OP_START, wire.ALL_STREAMS, b""), (wire.OP_STOP, 0, b""),
        (wire.OP_SET_PERIOD, 0, struct.pack("<I", 5000)), (wire.OP_SEND_HELLO, wire.ALL_STREAMS, b""),
        (wire.OP_SEND_STATUS, wire.ALL_STREAMS, b""), (wire.OP_PING, wire.ALL_STREAMS, b""),
        (wire.OP_REBOOT, wire.ALL_STREAMS, b""), (wire.OP_REPL, wire.ALL_STREAMS, b""),
        (wire.OP_STOP, 3, b"")]
    assert [_decode(d).seq for d, _ in sent] == list(range(1, 10))  # the token is the CMD's seq
    assert [w for _, w in sent][:3] == ["START #1 (all streams)", "STOP #2 (imu)", "SET_PERIOD #3 (imu, 5000 us)"]
    assert sent[-1][1] == "STOP #9 (stream 3)"


def test_tokens_wrap_past_zero_and_a_failed_send_returns_zero() -> None:
    ok = [True]
    cmds = Commands(lambda data, what: ok[0])
    cmds.token = 0xFFFE
    assert cmds.ping() == 0xFFFF and cmds.ping() == 1
    ok[0] = False
    assert cmds.ping() == 0


def test_opcode_names() -> None:
    assert opcode("set_period") == wire.OP_SET_PERIOD and opcode(9) == 9
    with pytest.raises(ValueError, match="unknown command 'jump'"):
        opcode("jump")
