"""host/protocol/encoder.py: every frame type it builds decodes back to its values, and the bytes
are the ones the board's own wire.py path (pack_*, finish_frame) produces."""

from __future__ import annotations

import pytest

from firmware import wire
from host.protocol.decoder import Decoder
from host.protocol.encoder import (encode_ack, encode_command, encode_data, encode_event, encode_frame, encode_hello,
                                   encode_status)
from host.protocol.frames import Frame, Status, StreamStatus

BOOT = 0x44332211
BOOT_BYTES = BOOT.to_bytes(4, "little")
HELLO = {
    "board": "t", "ticks_period": 1 << 30,
    "streams": [{"id": 0, "name": "a", "kind": "analog", "period_us": 500, "batch": 3,
                 "sample_format": "<H", "sample_size": 2, "channels": [["v", "raw"]], "config": {}}],
}


def _device(n: int, buf: bytearray) -> bytes:
    out = bytearray(wire.wire_max(n + wire.CRC_SIZE))
    return bytes(out[: wire.finish_frame(buf, n, out)])


def _one(raw: bytes, dec: Decoder) -> Frame:
    (f,) = dec.feed(raw)
    assert f.raw == raw and f.boot_id == BOOT
    return f


def test_encoder_round_trips_every_frame_type():
    dec = Decoder()
    f = _one(encode_hello(BOOT, 0, HELLO, t0_us=5), dec)
    assert (f.type, f.seq, f.t0_us, f.hello()) == (wire.T_HELLO, 0, 5, HELLO)

    f = _one(encode_frame(wire.T_CALIB, 0, BOOT, 0, 7, body=b"\x01\x00\x02"), dec)
    assert (f.type, f.stream, f.body) == (wire.T_CALIB, 0, b"\x01\x00\x02")

    for seq, missing in ((0, ()), (1, (1,))):
        f = _one(encode_data(0, BOOT, seq, 1000 * seq, 500, b"\x01\x00\x02\x00\x03\x00", 2, missing), dec)
        blk = f.data()
        assert (f.type, f.seq, f.t0_us, f.period_us, f.count) == (wire.T_DATA, seq, 1000 * seq, 500, 3)
        assert blk.samples == b"\x01\x00\x02\x00\x03\x00" and blk.missing_indices() == list(missing)
        assert f.flags == (wire.FLAG_MISSING | wire.FLAG_MISS_SENSOR if missing else 0)

    st = Status(1234, 50000, 2, 10, 1, wire.RC_POWER_ON, 3, 4, [StreamStatus(0, True, 6, 9, 1, 2, 3, 7)])
    f = _one(encode_status(BOOT, 0, st, t0_us=99), dec)
    assert f.type == wire.T_STATUS and f.status() == st

    f = _one(encode_event(BOOT, 0, wire.EV_SENSOR_OFFLINE, 0, 5, "bus error", t0_us=77), dec)
    ev = f.event()
    assert (ev.name, ev.stream, ev.arg, ev.text) == ("SENSOR_OFFLINE", 0, 5, "bus error")

    for seq, reason in ((0, wire.R_OK), (0, wire.R_BAD_ARGS)):  # seqs count per (type, stream)
        f = _one(encode_ack(BOOT, seq, wire.OP_SET_PERIOD, 0xBEEF, reason), dec)
        ack = f.ack()
        assert f.type == (wire.T_NACK if reason else wire.T_ACK)
        assert (ack.ok, ack.opcode, ack.token, ack.reason) == (not reason, wire.OP_SET_PERIOD, 0xBEEF, reason)

    f = _one(encode_command(wire.OP_SET_PERIOD, 77, 0, (5000).to_bytes(4, "little"), boot_id=BOOT), dec)
    c = f.command()
    assert (f.type, f.seq, c.opcode, c.stream, c.args) == (wire.T_CMD, 77, 3, 0, (5000).to_bytes(4, "little"))

    st = dec.stats
    assert st.frames_ok == 9 and st.sessions == 1
    assert st.corrupt_segments + st.missing + st.duplicates + st.text_bytes == 0


@pytest.mark.parametrize("missing", [(), (0, 9), tuple(range(0, 300, 7))])
def test_encoder_data_matches_the_board_path(missing):
    count, size = 300, 2
    samples = bytes((i * 37 + 1) & 0xFF or 1 for i in range(count * size))  # long zero-free runs
    buf = bytearray(wire.data_frame_size(count, size))
    buf[wire.HEADER_SIZE : wire.HEADER_SIZE + len(samples)] = samples
    off = wire.bitmap_offset(count, size)
    wire.clear_bitmap(buf, count, off)
    for i in missing:
        wire.mark_missing(buf, i, off)
    flags = wire.FLAG_MISSING | wire.FLAG_MISS_OVERRUN if missing else 0
    n = wire.pack_data(buf, 3, BOOT_BYTES, 9, 123456, 500, count, size, flags)
    assert encode_data(3, BOOT, 9, 123456, 500, samples, size, missing, cause=wire.FLAG_MISS_OVERRUN) == _device(n, buf)


def test_encoder_status_event_ack_match_the_board_path():
    buf = bytearray(80)
    n = wire.pack_status(buf, BOOT_BYTES, 4, 99, 1234, 50000, 2, 10, 1, wire.RC_POWER_ON, 3, 4, 1)
    n = wire.pack_status_stream(buf, n, 0, True, 6, 9, 1, 2, 3, 7)
    st = Status(1234, 50000, 2, 10, 1, wire.RC_POWER_ON, 3, 4, [StreamStatus(0, True, 6, 9, 1, 2, 3, 7)])
    assert encode_status(BOOT, 4, st, t0_us=99) == _device(n, buf)
    n = wire.pack_event(buf, BOOT_BYTES, 5, 77, wire.EV_SENSOR_OFFLINE, 0, 5, b"bus error")
    assert encode_event(BOOT, 5, wire.EV_SENSOR_OFFLINE, 0, 5, "bus error", t0_us=77) == _device(n, buf)
    n = wire.pack_ack(buf, BOOT_BYTES, 6, 1, wire.OP_SET_PERIOD, 0xBEEF, wire.R_BAD_ARGS)
    assert encode_ack(BOOT, 6, wire.OP_SET_PERIOD, 0xBEEF, wire.R_BAD_ARGS, t0_us=1) == _device(n, buf)
