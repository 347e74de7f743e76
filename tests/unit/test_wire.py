"""firmware/wire.py and firmware/ring.py under CPython, checked against the host decoder."""

import os
import random
import struct
import zlib

import pytest

from firmware import wire
from firmware.ring import Ring
from host.protocol.decoder import Decoder
from host.protocol.encoder import encode_command, encode_data, encode_frame
from host.protocol.frames import FrameError, StreamStatus, cobs_decode, cobs_encode

BOOT = b"\x11\x22\x33\x44"


def _device_frame(ftype, stream, seq, t0, period, count, body):
    """Build a frame the way the firmware does: pack_header, body by index, finish_frame."""
    n = wire.HEADER_SIZE + len(body)
    frame = bytearray(n + wire.CRC_SIZE)
    wire.pack_header(frame, ftype, stream, BOOT, seq, t0, period, count)
    wire.copy_into(frame, wire.HEADER_SIZE, body, len(body))
    out = bytearray(wire.wire_max(n + 4))
    k = wire.finish_frame(frame, n, out)
    return bytes(out[:k])


def _data_frame(stream, seq, t0, period, count, ss, samples, missing):
    """A DATA frame the way the firmware builds it: samples in place after the header, the
    bitmap (cleared on the first missing sample) after them, pack_data, finish_frame."""
    frame = bytearray(wire.data_frame_size(count, ss))
    wire.copy_into(frame, wire.HEADER_SIZE, samples, len(samples))
    bm = wire.bitmap_offset(count, ss)
    for k, i in enumerate(missing):
        if k == 0:
            wire.clear_bitmap(frame, count, bm)
        wire.mark_missing(frame, i, bm)
    flags = wire.FLAG_MISSING | wire.FLAG_MISS_SENSOR if missing else 0
    n = wire.pack_data(frame, stream, BOOT, seq, t0, period, count, ss, flags)
    assert n == wire.data_length(count, ss, bool(missing))
    out = bytearray(wire.wire_max(n + 4))
    return bytes(out[: wire.finish_frame(frame, n, out)])


def test_wire_data_layout_samples_first_bitmap_only_when_missing():
    assert wire.FLAG_MISSING == 1 and wire.bitmap_offset(10, 14) == 20 + 140
    assert wire.data_length(10, 14, 0) == 160 and wire.data_length(10, 14, 1) == 162
    assert wire.data_frame_size(10, 14) == 166 and wire.data_frame_size(10, 14, False) == 164
    buf = bytearray(wire.data_frame_size(9, 2))
    assert wire.clear_bitmap(buf, 9, wire.bitmap_offset(9, 2)) == 40
    wire.mark_missing(buf, 0, 38)
    wire.mark_missing(buf, 8, 38)
    assert buf[38:40] == b"\x01\x01"
    n = wire.pack_data(buf, 5, BOOT, 7, 100, 10, 9, 2, wire.FLAG_MISSING | wire.FLAG_MISS_OVERRUN)
    assert n == 40 and buf[wire.OFF_FLAGS] == 3 and buf[wire.OFF_TYPE] == wire.T_DATA
    n = wire.pack_data(buf, 5, BOOT, 7, 100, 10, 9, 2, 0)
    assert n == 38 and buf[wire.OFF_FLAGS] == 0
    f = Decoder().feed(_data_frame(5, 7, 100, 10, 9, 2, bytes(range(1, 19)), (8,)))[0]
    assert f.data().missing_indices() == [8] and f.data().samples == bytes(range(1, 19))


def test_wire_header_layout_matches_spec():
    buf = bytearray(24)
    assert wire.pack_header(buf, wire.T_DATA, 7, BOOT, 0x1_2345, 0x3FFF_FFFF, 1000, 50) == 20
    assert struct.unpack_from(wire.HEADER_FMT, buf) == (wire.VERSION, 1, 7, 0, BOOT, 0x2345, 0x3FFF_FFFF, 1000, 50)
    assert wire.VERSION == 2 and buf[0] == 2 and buf[1] == 1 and buf[2] == 7 and buf[3] == 0
    assert buf[4:8] == BOOT and buf[8:10] == b"\x45\x23"
    assert buf[10:14] == (0x3FFF_FFFF).to_bytes(4, "little") and buf[14:18] == (1000).to_bytes(4, "little")
    assert buf[18:20] == (50).to_bytes(2, "little")
    assert struct.calcsize(wire.HEADER_FMT) == wire.HEADER_SIZE == wire.OFF_BODY
    assert wire.OVERHEAD == wire.HEADER_SIZE + wire.CRC_SIZE
    assert struct.calcsize(wire.STATUS_FMT) == wire.STATUS_SIZE
    assert struct.calcsize(wire.STATUS_STREAM_FMT) == wire.STATUS_STREAM_SIZE
    assert len(set(wire.TYPES)) == len(wire.TYPES)


@pytest.mark.parametrize("n", [0, 1, 3, 4, 9, 63, 64, 255, 256, 1000, 4099])
def test_wire_crc32_matches_zlib(n):
    rnd = random.Random(n)
    for _ in range(5):
        data = bytes(rnd.getrandbits(8) for _ in range(n))
        buf = bytearray(data + b"\xaa" * 4)
        assert wire.crc32_append(buf, n) == n + 4
        assert int.from_bytes(buf[n:], "little") == zlib.crc32(data)
        assert wire.crc32_check(buf, n + 4)
        if n:
            buf[rnd.randrange(n)] ^= 1 << rnd.randrange(8)
            assert not wire.crc32_check(buf, n + 4)
    # start offset and the standard check value
    buf = bytearray(b"xx123456789....")
    wire.crc32_append(buf, 11, 2)
    assert buf[11:15] == (0xCBF43926).to_bytes(4, "little")
    assert not wire.crc32_check(bytearray(3), 3)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00",
        b"\x00" * 7,
        b"\x01" * 253,
        b"\x01" * 254,
        b"\x01" * 255,
        b"\x01" * 508,
        b"\x01" * 254 + b"\x00",
        b"\x00" + b"\x02" * 254 + b"\x00" + b"\x03",
        bytes(range(256)) * 3,
        os.urandom(1500),
    ],
    ids=lambda d: "len%d" % len(d),
)
def test_wire_cobs_edge_cases(data):
    n = len(data)
    out = bytearray(wire.cobs_max(n))
    k = wire.cobs_encode(data, n, out)
    enc = bytes(out[:k])
    assert b"\x00" not in enc
    assert k <= wire.cobs_max(n)
    assert enc == cobs_encode(data)
    assert cobs_decode(enc) == data
    dst = bytearray(n)
    assert wire.cobs_decode(enc, 0, k, dst) == n and bytes(dst) == data
    if n:  # too small a destination is refused, not overrun
        assert wire.cobs_decode(enc, 0, k, bytearray(n - 1)) == -1


def test_wire_cobs_decode_rejects_malformed():
    assert wire.cobs_decode(b"\x05ab", 0, 3, bytearray(10)) == -1  # code runs past the end
    assert wire.cobs_decode(b"\x03a\x00", 0, 3, bytearray(10)) == -1  # zero inside
    with pytest.raises(FrameError):
        cobs_decode(b"\x05ab")


def test_wire_device_frames_round_trip_through_host_decoder():
    hello = {
        "board": "t", "mcu": "x", "firmware": "0", "protocol": 2, "ticks_period": 1 << 30,
        "reset_cause": 1,
        "streams": [{"id": 0, "name": "a", "kind": "analog", "period_us": 500, "batch": 3,
                     "sample_format": "<H", "sample_size": 2, "channels": [["v", "raw"]], "config": {}}],
    }
    body = __import__("json").dumps(hello).encode()
    stream = _device_frame(wire.T_HELLO, wire.NO_STREAM, 0, 5, 0, 0, body)
    stream += _data_frame(0, 0, 1000, 500, 3, 2, b"\x00\x00\x01\x00\xff\xff", (1,))
    stream += _data_frame(0, 1, 2500, 500, 3, 2, b"\x02\x00\x03\x00\x04\x00", ())
    ev = bytearray(40)
    n = wire.pack_event(ev, BOOT, 0, 77, wire.EV_SENSOR_OFFLINE, 0, 5, b"bus error")
    out = bytearray(80)
    stream += bytes(out[: wire.finish_frame(ev, n, out)])
    st = bytearray(80)
    n = wire.pack_status(st, BOOT, 0, 99, 1234, 50000, 2, 10, 1, wire.RC_POWER_ON, 3, 4, 1)
    n = wire.pack_status_stream(st, n, 0, True, 6, 11, 1, 2, 3, 7)
    stream += bytes(out[: wire.finish_frame(st, n, out)])
    ak = bytearray(40)
    n = wire.pack_ack(ak, BOOT, 0, 1, wire.OP_SET_PERIOD, 0xBEEF, wire.R_BAD_ARGS)
    stream += bytes(out[: wire.finish_frame(ak, n, out)])

    items = Decoder().feed(stream)
    assert [f.type for f in items] == [wire.T_HELLO, wire.T_DATA, wire.T_DATA, wire.T_EVENT, wire.T_STATUS,
                                       wire.T_NACK]
    h, d, d2, e, s, a = items
    assert h.hello()["streams"][0]["sample_size"] == 2 and h.boot_id == 0x44332211
    blk = d.data()
    assert blk.count == 3 and blk.missing_indices() == [1] and blk.samples == b"\x00\x00\x01\x00\xff\xff"
    assert d.flags == wire.FLAG_MISSING | wire.FLAG_MISS_SENSOR and d.body == b"\x00\x00\x01\x00\xff\xff\x02"
    blk = d2.data()
    assert d2.flags == 0 and d2.body == blk.samples == b"\x02\x00\x03\x00\x04\x00"
    assert blk.missing_count() == 0 and blk.missing == b"\x00"
    assert (d.t0_us, d.period_us, d.stream) == (1000, 500, 0)
    ev = e.event()
    assert (ev.code, ev.stream, ev.arg, ev.text, ev.name) == (2, 0, 5, "bus error", "SENSOR_OFFLINE")
    status = s.status()
    assert (status.uptime_ms, status.frames_dropped, status.cmd_errors, status.rx_errors) == (1234, 1, 3, 4)
    assert status.streams[0] == StreamStatus(0, True, 6, 11, 1, 2, 3, 7)
    assert (status.streams[0].samples_missing, status.streams[0].frames_lost) == (10, 3)
    ack = a.ack()
    assert (ack.ok, ack.opcode, ack.token, ack.reason_name) == (False, 3, 0xBEEF, "BAD_ARGS")
    # host encoders produce the same bytes as the device helpers
    assert encode_data(0, BOOT, 0, 1000, 500, b"\x00\x00\x01\x00\xff\xff", 2, (1,)) == d.raw
    assert encode_data(0, BOOT, 1, 2500, 500, b"\x02\x00\x03\x00\x04\x00", 2) == d2.raw


def test_wire_command_frames_start_with_code_byte_4():
    for op in range(1, 9):
        for stream in (0, 1, 3, 254, 255):
            for token in (0, 1, 3, 0x0300, 0xFFFF):
                w = encode_command(op, token, stream, b"\x00\x03\x00\x00")
                assert w[0] == 0 and w[1] == wire.CMD_CODE_BYTE and w[-1] == 0
                assert b"\x00" not in w[1:-1]


class _Clock:
    def __init__(self):
        self.ms = 0

    def __call__(self):
        return self.ms


def _feed(rx, data):
    return [rx.feed_byte(b) for b in data]


def test_wire_cmd_receiver_frames_and_interrupts():
    clk = _Clock()
    rx = wire.CmdReceiver(clock=clk)
    # a command whose bytes contain 0x03 everywhere possible is a frame, not an interrupt
    cmd = encode_command(wire.OP_SET_PERIOD, 0x0303, 3, (0x030303).to_bytes(4, "little"))
    assert 3 in cmd[2:-1]
    res = _feed(rx, cmd)
    assert res.count(wire.RX_FRAME) == 1 and wire.RX_INTERRUPT not in res
    assert (rx.opcode(), rx.stream(), rx.token(), rx.arg_u32()) == (3, 3, 0x0303, 0x030303)
    assert rx.n_args() == 4
    # mpremote's takeover: \r\x03 then \r\x01
    assert _feed(rx, b"\r\x03\x03\r\x01") == [0, 2, 2, 0, 0]
    assert _feed(rx, b"\x00\r\x03") == [0, 0, 2]  # the 0x01 put it in skip mode; 0x00 ends it
    assert _feed(rx, b"\n\n\x03")[-1] == wire.RX_INTERRUPT
    assert rx.interrupts == 4
    # args >= 2**30 are refused (would be big ints on a 32-bit board)
    _feed(rx, encode_command(wire.OP_SET_PERIOD, 1, 0, (1 << 30).to_bytes(4, "little")))
    assert rx.arg_u32() == -1 and rx.n_args() == 4
    _feed(rx, encode_command(wire.OP_PING, 2))
    assert rx.arg_u32() == -1 and rx.n_args() == 0 and rx.stream() == wire.ALL_STREAMS


def test_wire_cmd_receiver_rejects_bad_crc_and_garbage():
    rx = wire.CmdReceiver(clock=_Clock())
    cmd = bytearray(encode_command(wire.OP_START, 7))
    cmd[6] ^= 0x40  # corrupt inside the COBS body (no zero created)
    assert cmd[6] != 0
    res = _feed(rx, cmd)
    assert wire.RX_FRAME not in res and res[-1] == wire.RX_ERROR and rx.rx_errors == 1
    assert rx.n >= wire.HEADER_SIZE  # a NACK BAD_CRC can still quote the token
    # a device-type frame (DATA) is not a command
    res = _feed(rx, encode_frame(wire.T_DATA, 1, 0, 0, 1, 1, 1, b"\x00\x01"))
    assert wire.RX_FRAME not in res
    # too long for the buffer
    small = wire.CmdReceiver(size=30, clock=_Clock())
    res = _feed(small, encode_command(wire.OP_SET_PERIOD, 1, 0, bytes(20)))
    assert wire.RX_ERROR in res and wire.RX_FRAME not in res
    assert _feed(small, encode_command(wire.OP_PING, 9))[-1] == wire.RX_FRAME


def test_wire_cmd_receiver_drops_stale_partial_frames():
    clk = _Clock()
    rx = wire.CmdReceiver(timeout_ms=100, clock=clk)
    cmd = encode_command(wire.OP_STOP, 5)
    assert _feed(rx, cmd[:10]) == [0] * 10
    clk.ms += 150
    # after the timeout the leftover bytes are not glued onto the old partial frame
    assert _feed(rx, b"\x03") == [wire.RX_INTERRUPT]
    assert rx.rx_errors == 1
    _feed(rx, cmd[:10])
    clk.ms += 150
    res = _feed(rx, cmd)
    assert res[0] == wire.RX_ERROR and res[-1] == wire.RX_FRAME and rx.rx_errors == 2
    # within the timeout a slow sender still gets through (ticks wrap too)
    clk.ms = (1 << 30) - 40
    for b in cmd:
        r = rx.feed_byte(b)
        clk.ms = (clk.ms + 50) & ((1 << 30) - 1)
    assert r == wire.RX_FRAME


def test_wire_ring_drop_newest_whole_and_partial_writes():
    storage = bytearray(100)
    ring = Ring(storage)
    frames = [bytes([i]) * (10 + i) for i in range(1, 12)]
    pushed = [f for f in frames if ring.push(f, len(f))]
    assert ring.dropped == len(frames) - len(pushed) > 0
    sink = bytearray()
    rnd = random.Random(3)

    def write(buf, off, n):  # accepts at most 7 bytes per call, sometimes none
        k = min(n, rnd.choice([0, 7, 3]))
        sink.extend(buf[off : off + k])
        return k or None

    for _ in range(10000):
        if not ring.pending():
            break
        ring.drain(write)
    assert bytes(sink) == b"".join(pushed) and ring.count == 0


def test_wire_ring_drain_chunked_across_wraps():
    """drain(write, most) (Output.pump's path) writes at most `most` bytes a call, resumes partial
    entries, pops whole ones and keeps FIFO order while the writer wraps."""
    rnd = random.Random(11)
    ring = Ring(bytearray(256))
    expect, sink, popped = [], bytearray(), 0

    def write(buf, off, n):
        assert n <= 13
        k = min(n, rnd.choice([0, 5, 13]))
        sink.extend(buf[off : off + k])
        return k or None

    for i in range(4000):
        if rnd.random() < 0.4:
            f = bytes([i & 0xFF]) * rnd.randrange(1, 60)
            if ring.push(f, len(f)):
                expect.append(f)
        else:
            c = ring.count
            k = ring.drain(write, 13)
            assert k == 0 or 0 < k <= 13
            popped += c - ring.count
    while ring.count:
        ring.drain(write, 13)
    assert bytes(sink) == b"".join(expect) and ring.pending() == 0
    assert popped <= len(expect) and ring.free() == 254


def test_wire_ring_wraps_and_keeps_fifo_order():
    rnd = random.Random(5)
    ring = Ring(bytearray(300), copy=wire.copy_into)
    expect, got = [], []
    for i in range(3000):
        if rnd.random() < 0.55:
            f = bytes([i & 0xFF]) * rnd.randrange(1, 90)
            if ring.push(f, len(f)):
                expect.append(f)
            assert ring.free() >= 0
        elif ring.pending():
            off, n = ring.offset(), ring.pending()
            k = rnd.randrange(1, n + 1)
            got.append(bytes(ring.buf[off : off + k]))
            ring.consume(k)
    while ring.pending():
        off, n = ring.offset(), ring.pending()
        got.append(bytes(ring.buf[off : off + n]))
        ring.consume(n)
    assert b"".join(got) == b"".join(expect)
    assert ring.pushed == len(expect) and ring.dropped > 0
    # reserve/commit: encode straight into the ring
    r2 = Ring(bytearray(64))
    off = r2.reserve(wire.wire_max(30))
    assert off > 0
    frame = bytearray(34)
    k = wire.finish_frame(frame, 30, r2.buf, off)
    r2.commit(k)
    assert r2.pending() == k and r2.reserve(60) == -1 and r2.dropped == 1
