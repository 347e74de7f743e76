"""What a frame is on the host: the decoded value types, their body parsers, and COBS.

``Frame`` is one validated frame as the decoder returns it, with typed accessors for its body
(``data()``, ``hello()``, ``status()``, ``event()``, ``ack()``, ``command()``); ``DeviceText``
is what the device printed between frames.  The body layouts come from ``firmware/wire.py``.

COBS on the host is the ``cobs`` package (C); ``cobs_encode`` and ``cobs_decode`` adapt it to
this project's contract: encoding byte-identical to ``wire.cobs_encode`` (which ends a final run
of 254 non-zero bytes with an extra 0x01 block, as docs/protocol.md says) and malformed input
reported as ``FrameError``.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import NamedTuple

from cobs import cobs as _cobs

from firmware import wire

_STATUS = struct.Struct(wire.STATUS_FMT)
_STATUS_STREAM = struct.Struct(wire.STATUS_STREAM_FMT)
_EVENT = struct.Struct(wire.EVENT_FMT)
_ACK = struct.Struct(wire.ACK_FMT)
_CMD = struct.Struct(wire.CMD_FMT)
assert _STATUS.size == wire.STATUS_SIZE and _STATUS_STREAM.size == wire.STATUS_STREAM_SIZE
assert _EVENT.size == wire.EVENT_SIZE and _ACK.size == wire.ACK_SIZE and _CMD.size == wire.CMD_SIZE


class FrameError(ValueError):
    """A frame or COBS segment is malformed (raised by the accessors and helpers here, never by
    Decoder.feed, which counts instead)."""


@dataclass(slots=True)
class DataBlock:
    """A DATA frame's body: ``samples`` the count * sample_size raw bytes (missing samples are
    present but meaningless), ``missing`` the bitmap (bit i set = sample i missing): the one sent
    after the samples when the frame has FLAG_MISSING, else ceil(count/8) zero bytes."""

    count: int
    sample_size: int
    missing: bytes
    samples: bytes

    def is_missing(self, i: int) -> bool:
        return bool(self.missing[i >> 3] >> (i & 7) & 1)

    def missing_indices(self) -> list[int]:
        return [i for i in range(self.count) if self.missing[i >> 3] >> (i & 7) & 1]

    def missing_count(self) -> int:
        return sum(bin(b).count("1") for b in self.missing)

    def sample(self, i: int) -> bytes:
        s = self.sample_size
        return self.samples[i * s : (i + 1) * s]


@dataclass(slots=True)
class StreamStatus:
    """One stream's STATUS record: counters since boot, modulo 2**30 (``wire.pack_status_stream``
    and docs/protocol.md section 6 say what each counts)."""

    stream: int
    online: bool
    sensor_errors: int
    frames_built: int
    frames_dropped: int
    frames_skipped: int
    missing_overrun: int
    missing_sensor: int

    @property
    def samples_missing(self) -> int:
        """Samples marked missing in built frames, both causes (mod 2**30)."""
        return (self.missing_overrun + self.missing_sensor) % (1 << 30)

    @property
    def frames_lost(self) -> int:
        """Frames of this stream the host can never receive: refused by the output or skipped
        by an overrun (both consume a seq, so they are the host's seq gaps) (mod 2**30)."""
        return (self.frames_dropped + self.frames_skipped) % (1 << 30)


@dataclass(slots=True)
class Status:
    uptime_ms: int
    free_heap: int
    loop_overruns: int
    frames_sent: int
    frames_dropped: int
    reset_cause: int
    cmd_errors: int
    rx_errors: int
    streams: list[StreamStatus]


@dataclass(slots=True)
class Event:
    code: int
    stream: int
    arg: int
    text: str

    @property
    def name(self) -> str:
        return wire.EVENT_NAMES.get(self.code, "EVENT_%d" % self.code)


@dataclass(slots=True)
class Ack:
    ok: bool
    opcode: int
    token: int
    reason: int

    @property
    def reason_name(self) -> str:
        return wire.REASON_NAMES.get(self.reason, "REASON_%d" % self.reason)


@dataclass(slots=True)
class Command:
    opcode: int
    stream: int
    args: bytes


@dataclass(slots=True)
class StreamInfo:
    """A stream as announced in HELLO (``raw`` is the whole JSON object)."""

    id: int
    name: str
    kind: str
    period_us: int
    batch: int
    sample_format: str
    sample_size: int
    channels: list
    config: dict
    raw: dict


class Frame(NamedTuple):
    """One validated frame.  ``raw`` is its exact wire form (0x00, COBS, 0x00) for recording;
    ``t_us`` is t0_us unwrapped over the device's ticks period within the boot;
    ``session`` counts boot ids seen by this decoder (1 = first).

    A named tuple, not a dataclass: the decoder builds ~3,000 a second per MB/s with
    ``tuple.__new__`` (C, no Python ``__init__`` call), and a frame is never changed once built."""

    type: int
    stream: int
    boot_id: int
    seq: int
    t0_us: int
    period_us: int
    count: int
    body: bytes
    raw: bytes
    t_us: int = 0
    session: int = 0
    sample_size: int = 0  # DATA: bytes per sample (from HELLO, or inferred from the length)
    flags: int = 0  # header flags (wire.FLAG_MISSING: a DATA body ends with the missing bitmap;
    #                  wire.FLAG_MISS_OVERRUN / FLAG_MISS_SENSOR: the causes of its marks)
    corrupt: int = 0  # the decoder's corrupt segments before this frame (the ledger's evidence windows)

    @property
    def type_name(self) -> str:
        return wire.TYPE_NAMES.get(self.type, "TYPE_%d" % self.type)

    def data(self) -> DataBlock:
        if self.type != wire.T_DATA:
            raise FrameError("not a DATA frame: %s" % self.type_name)
        bm = (self.count + 7) >> 3
        n = self.count * self.sample_size
        body = self.body
        if self.flags & wire.FLAG_MISSING:
            return DataBlock(self.count, self.sample_size, body[n : n + bm], body[:n])
        return DataBlock(self.count, self.sample_size, bytes(bm), body[:n])

    def hello(self) -> dict:
        if self.type != wire.T_HELLO:
            raise FrameError("not a HELLO frame: %s" % self.type_name)
        return json.loads(self.body.decode("utf-8"))

    def status(self) -> Status:
        if self.type != wire.T_STATUS:
            raise FrameError("not a STATUS frame: %s" % self.type_name)
        return parse_status(self.body)

    def event(self) -> Event:
        if self.type != wire.T_EVENT:
            raise FrameError("not an EVENT frame: %s" % self.type_name)
        code, stream, arg = _EVENT.unpack_from(self.body)
        return Event(code, stream, arg, self.body[wire.EVENT_SIZE :].decode("utf-8", "replace"))

    def ack(self) -> Ack:
        if self.type not in (wire.T_ACK, wire.T_NACK):
            raise FrameError("not an ACK/NACK frame: %s" % self.type_name)
        opcode, token, reason = _ACK.unpack(self.body)
        return Ack(self.type == wire.T_ACK, opcode, token, reason)

    def command(self) -> Command:
        if self.type != wire.T_CMD:
            raise FrameError("not a CMD frame: %s" % self.type_name)
        opcode, stream = _CMD.unpack_from(self.body)
        return Command(opcode, stream, self.body[wire.CMD_SIZE :])


@dataclass(slots=True)
class DeviceText:
    """Bytes the device printed outside frames (banner, traceback, ``>>>`` prompt)."""

    text: str
    raw: bytes


def parse_status(body: bytes) -> Status:
    """A STATUS body (fixed part, then one record per stream); FrameError if the lengths disagree."""
    f = _STATUS.unpack_from(body)
    n = f[8]
    if len(body) != wire.STATUS_SIZE + n * wire.STATUS_STREAM_SIZE:
        raise FrameError("STATUS body length %d does not match %d streams" % (len(body), n))
    streams = []
    off = wire.STATUS_SIZE
    for _ in range(n):
        sid, online, *counters = _STATUS_STREAM.unpack_from(body, off)
        streams.append(StreamStatus(sid, bool(online), *counters))
        off += wire.STATUS_STREAM_SIZE
    return Status(*f[:8], streams)


def parse_streams(hello: dict) -> dict[int, StreamInfo]:
    """The streams a HELLO announces, by id; FrameError on an entry a decoder cannot size."""
    out = {}
    for s in hello["streams"]:
        sid = s["id"]
        fmt = s.get("sample_format", "")
        size = s.get("sample_size")
        if size is None:
            size = struct.calcsize(fmt)
        if not isinstance(sid, int) or not 0 <= sid < 255 or not isinstance(size, int) or size < 1:
            raise FrameError("bad stream entry in HELLO: %r" % (s,))
        out[sid] = StreamInfo(
            id=sid,
            name=str(s.get("name", "")),
            kind=str(s.get("kind", "")),
            period_us=int(s.get("period_us", 0)),
            batch=int(s.get("batch", 0)),
            sample_format=fmt,
            sample_size=size,
            channels=list(s.get("channels", [])),
            config=dict(s.get("config", {})),
            raw=s,
        )
    return out


def cobs_encode(data: bytes) -> bytes:
    """COBS-encode ``data`` (no delimiters), byte-identical to ``wire.cobs_encode``."""
    data = bytes(data)
    out = _cobs.encode(data)
    run = len(data) - data.rfind(b"\x00") - 1
    if run and run % 254 == 0:
        out += b"\x01"
    return out


def cobs_decode(seg: bytes) -> bytes:
    """Decode one COBS segment (no delimiters), either form.  Raises FrameError if malformed."""
    try:
        return _cobs.decode(bytes(seg))
    except _cobs.DecodeError as e:
        raise FrameError("bad COBS segment: %s" % e) from None
