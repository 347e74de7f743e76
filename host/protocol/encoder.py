"""Host-side frame building: commands for a board, and device frames for tests, benches and demos.

Every frame is laid out by ``firmware/wire.py``'s own packers (``pack_header``, ``pack_data``,
``mark_missing``, ``pack_status``, ``pack_event``, ``pack_ack``), so the format is written down
once and a frame built here is byte for byte the one a board sends for the same values.  Only
the two per-byte steps use host code for speed, with the same results: ``zlib.crc32`` is the
CRC-32 of ``wire.crc32_append``, and ``frames.cobs_encode`` the stuffing of ``wire.cobs_encode``.

``boot_id`` is an int (little-endian on the wire, as ``Frame.boot_id`` reads it) or 4 bytes.
"""

from __future__ import annotations

import json
import struct
import zlib

from firmware import wire
from host.protocol.frames import Status, cobs_encode

_CRC = struct.Struct("<I")
_CMD = struct.Struct(wire.CMD_FMT)


def _boot_bytes(boot_id: int | bytes) -> bytes:
    if isinstance(boot_id, int):
        return boot_id.to_bytes(4, "little")
    if len(boot_id) != 4:
        raise ValueError("boot_id must be 4 bytes")
    return bytes(boot_id)


def _finish(buf: bytearray, n: int) -> bytes:
    """Wire form of the frame in buf[:n] (buf has CRC_SIZE spare bytes after it):
    0x00, COBS(frame + CRC-32), 0x00."""
    if n + wire.CRC_SIZE > wire.MAX_FRAME:
        raise ValueError("frame too long: %d bytes" % (n + wire.CRC_SIZE))
    _CRC.pack_into(buf, n, zlib.crc32(memoryview(buf)[:n]))
    return b"\x00" + cobs_encode(buf[: n + wire.CRC_SIZE]) + b"\x00"


def encode_frame(
    ftype: int,
    stream: int,
    boot_id: int | bytes,
    seq: int,
    t0_us: int = 0,
    period_us: int = 0,
    count: int = 0,
    body: bytes = b"",
    *,
    flags: int = 0,
) -> bytes:
    """Any frame in wire form, header fields as given (tests build invalid ones with it)."""
    body = bytes(body)
    n = wire.HEADER_SIZE + len(body)
    buf = bytearray(n + wire.CRC_SIZE)
    wire.pack_header(buf, ftype, stream, _boot_bytes(boot_id), seq, t0_us & 0xFFFFFFFF, period_us, count, flags)
    buf[wire.HEADER_SIZE : n] = body
    return _finish(buf, n)


def encode_data(
    stream: int,
    boot_id: int | bytes,
    seq: int,
    t0_us: int,
    period_us: int,
    samples: bytes,
    sample_size: int,
    missing: tuple[int, ...] | list[int] = (),
    *,
    cause: int = wire.FLAG_MISS_SENSOR,
) -> bytes:
    """A DATA frame from raw sample bytes (len a multiple of sample_size) and missing indices:
    samples first, then the bitmap with FLAG_MISSING only if some sample is missing.  ``cause``
    is the cause flags of the marks (wire.FLAG_MISS_OVERRUN, FLAG_MISS_SENSOR or both), set
    only when a sample is missing."""
    if sample_size < 1 or len(samples) % sample_size:
        raise ValueError("samples length %d is not a multiple of %d" % (len(samples), sample_size))
    count = len(samples) // sample_size
    for i in missing:
        if not 0 <= i < count:
            raise ValueError("missing index %d out of range" % i)
    flagged = bool(missing)
    if flagged and (not cause or cause & ~wire.FLAGS_CAUSE):
        raise ValueError("cause must be FLAG_MISS_OVERRUN and/or FLAG_MISS_SENSOR, not %r" % cause)
    buf = bytearray(wire.data_frame_size(count, sample_size, flagged))
    buf[wire.HEADER_SIZE : wire.HEADER_SIZE + len(samples)] = samples
    off = wire.bitmap_offset(count, sample_size)
    for i in missing:
        wire.mark_missing(buf, i, off)
    n = wire.pack_data(buf, stream, _boot_bytes(boot_id), seq, t0_us & 0xFFFFFFFF, period_us, count, sample_size,
                       wire.FLAG_MISSING | cause if flagged else 0)
    return _finish(buf, n)


def encode_hello(boot_id: int | bytes, seq: int, info: dict, t0_us: int = 0) -> bytes:
    """A HELLO frame announcing ``info`` (board, ticks_period, streams, ...) as compact JSON."""
    return encode_frame(
        wire.T_HELLO, wire.NO_STREAM, boot_id, seq, t0_us,
        body=json.dumps(info, separators=(",", ":")).encode(),
    )


def encode_status(boot_id: int | bytes, seq: int, status: Status, t0_us: int = 0) -> bytes:
    """A STATUS frame: the fixed part, then one record per entry of ``status.streams``."""
    streams = status.streams
    buf = bytearray(wire.HEADER_SIZE + wire.STATUS_SIZE + len(streams) * wire.STATUS_STREAM_SIZE + wire.CRC_SIZE)
    n = wire.pack_status(
        buf, _boot_bytes(boot_id), seq, t0_us & 0xFFFFFFFF, status.uptime_ms, status.free_heap,
        status.loop_overruns, status.frames_sent, status.frames_dropped, status.reset_cause, status.cmd_errors,
        status.rx_errors, len(streams),
    )
    for s in streams:
        n = wire.pack_status_stream(buf, n, s.stream, s.online, s.sensor_errors, s.frames_built, s.frames_dropped,
                                    s.frames_skipped, s.missing_overrun, s.missing_sensor)
    return _finish(buf, n)


def encode_event(
    boot_id: int | bytes, seq: int, code: int, stream: int = wire.NO_STREAM, arg: int = 0,
    text: str = "", t0_us: int = 0,
) -> bytes:
    """An EVENT frame (``code`` one of wire.EV_*), with optional UTF-8 text."""
    raw = text.encode("utf-8")
    buf = bytearray(wire.HEADER_SIZE + wire.EVENT_SIZE + len(raw) + wire.CRC_SIZE)
    n = wire.pack_event(buf, _boot_bytes(boot_id), seq, t0_us & 0xFFFFFFFF, code, stream, arg, raw)
    return _finish(buf, n)


def encode_ack(
    boot_id: int | bytes, seq: int, opcode: int, token: int, reason: int = wire.R_OK, t0_us: int = 0
) -> bytes:
    """The board's answer to the command whose seq was ``token``: ACK if ``reason`` is R_OK, else NACK."""
    buf = bytearray(wire.HEADER_SIZE + wire.ACK_SIZE + wire.CRC_SIZE)
    n = wire.pack_ack(buf, _boot_bytes(boot_id), seq, t0_us & 0xFFFFFFFF, opcode, token, reason)
    return _finish(buf, n)


def encode_command(
    opcode: int, token: int, stream: int = wire.ALL_STREAMS, args: bytes = b"", boot_id: int | bytes = 0
) -> bytes:
    """A host->device CMD frame in wire form.  The addressed stream goes in the body and the
    header's stream byte is always 255, so the first COBS code byte is wire.CMD_CODE_BYTE (4)
    and a 0x03 seen by an idle receiver is always Ctrl-C.  ``token`` is the seq the device
    quotes back in its ACK/NACK; ``boot_id`` is informational (the device ignores it)."""
    if not 0 <= stream <= 255:
        raise ValueError("stream out of range: %d" % stream)
    wire_bytes = encode_frame(
        wire.T_CMD, wire.NO_STREAM, boot_id, token, body=_CMD.pack(opcode, stream) + bytes(args)
    )
    assert wire_bytes[1] == wire.CMD_CODE_BYTE
    return wire_bytes
