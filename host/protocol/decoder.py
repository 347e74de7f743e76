"""Pure incremental decoder of the pagerless wire format (see docs/protocol.md).

No I/O: feed it the bytes read from the link, in any chunking, and it returns the complete
frames and the device text that leaked between frames, keeping the unterminated tail
internally::

    dec = Decoder()
    for item in dec.feed(chunk):          # list[Frame | DeviceText]
        if isinstance(item, Frame) and item.type == wire.T_DATA:
            d = item.data()               # DataBlock: raw sample bytes + missing bitmap
    dec.stats                             # LinkStats; dec.stats.reconcile()

The layout and constants come from ``firmware/wire.py`` (the single source of truth); the
host uses ``zlib.crc32`` (the same CRC-32) for speed.  Memory is bounded: an unterminated
segment longer than ``MAX_SEGMENT`` is dropped (counted in ``LinkStats.oversize``) and the
decoder discards bytes up to the next 0x00.
"""

from __future__ import annotations

import json
import re
import struct
import zlib
from dataclasses import dataclass, field

from firmware import wire

__all__ = [
    "Ack",
    "Command",
    "DataBlock",
    "Decoder",
    "DeviceText",
    "Event",
    "Frame",
    "FrameError",
    "LinkStats",
    "Status",
    "StreamInfo",
    "StreamReconciliation",
    "StreamStatus",
    "cobs_decode",
    "cobs_encode",
    "encode_command",
    "encode_data",
    "encode_event",
    "encode_frame",
    "encode_hello",
    "encode_status",
    "MAX_SEGMENT",
]

MAX_SEGMENT = wire.cobs_max(wire.MAX_FRAME)  # longest COBS segment a valid frame can have
MAX_COUNT = 8192  # samples per DATA frame the decoder accepts (sanity bound)

_HDR = struct.Struct("<BBBBIHIIH")  # wire.HEADER_FMT with the boot id read as a u32
_CRC = struct.Struct("<I")
_STATUS = struct.Struct(wire.STATUS_FMT)
_STATUS_STREAM = struct.Struct(wire.STATUS_STREAM_FMT)
_EVENT = struct.Struct(wire.EVENT_FMT)
_ACK = struct.Struct(wire.ACK_FMT)
_CMD = struct.Struct(wire.CMD_FMT)
assert _HDR.size == wire.HEADER_SIZE and _STATUS.size == wire.STATUS_SIZE
assert _STATUS_STREAM.size == wire.STATUS_STREAM_SIZE and _EVENT.size == wire.EVENT_SIZE

_KNOWN_TYPES = frozenset(wire.TYPES)
_STREAM_TYPES = frozenset((wire.T_DATA, wire.T_CALIB))
_COUNTER_MOD = 1 << 30  # STATUS counters wrap modulo 2**30 on boards

# Device text: printable ASCII, \b \t \n \f \r ESC, and well-formed UTF-8 multibyte sequences.
_TEXT_RE = re.compile(
    rb"(?:[\x08\x09\x0a\x0c\x0d\x1b\x20-\x7e]"
    rb"|[\xc2-\xdf][\x80-\xbf]"
    rb"|[\xe0-\xef][\x80-\xbf]{2}"
    rb"|[\xf0-\xf4][\x80-\xbf]{3})*"
)
_TEXT_MIN_FIRST = 0x08  # segments starting with a byte below this are frame candidates
# ... and so are segments whose second byte is the version (0x01, never device text): a DATA
# frame with FLAG_MISSING may have its first zero anywhere, so its first COBS code byte is
# arbitrary, but the byte after it is always frame byte 0, the version.


def _frame_start(seg) -> bool:
    """True if a segment (or the start of one, >= 2 bytes) is a frame candidate, not text."""
    return seg[0] < _TEXT_MIN_FIRST or seg[1] == wire.VERSION


class FrameError(ValueError):
    """A frame or COBS segment is malformed (raised by the helpers, never by Decoder.feed)."""


# ---------------------------------------------------------------- parsed bodies


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
    stream: int
    online: bool
    sensor_errors: int
    frames_dropped: int
    samples_missing: int


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


# ---------------------------------------------------------------- decoder outputs


@dataclass(slots=True)
class Frame:
    """One validated frame.  ``raw`` is its exact wire form (0x00, COBS, 0x00) for recording;
    ``t_us`` is t0_us unwrapped over the device's ticks period within the session;
    ``session`` counts boot ids seen by this decoder (1 = first)."""

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
    flags: int = 0  # header flags (wire.FLAG_MISSING: a DATA body ends with the missing bitmap)

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
        return _parse_status(self.body)

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


def _parse_status(body: bytes) -> Status:
    f = _STATUS.unpack_from(body)
    n = f[8]
    if len(body) != wire.STATUS_SIZE + n * wire.STATUS_STREAM_SIZE:
        raise FrameError("STATUS body length %d does not match %d streams" % (len(body), n))
    streams = []
    off = wire.STATUS_SIZE
    for _ in range(n):
        sid, online, se, fd, sm = _STATUS_STREAM.unpack_from(body, off)
        streams.append(StreamStatus(sid, bool(online), se, fd, sm))
        off += wire.STATUS_STREAM_SIZE
    return Status(*f[:8], streams)


def _parse_streams(hello: dict) -> dict[int, StreamInfo]:
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


# ---------------------------------------------------------------- statistics


@dataclass
class StreamReconciliation:
    stream: int
    host_missing: int  # DATA frames the host saw missing (seq gaps) since the baseline
    device_dropped: int  # DATA frames the device reports dropping since the baseline
    lost_in_transit: int  # host_missing - device_dropped (> 0: lost on the link)
    balanced: bool
    explanation: str


@dataclass
class LinkStats:
    """Counters of one decoder.  Totals are cumulative over sessions; ``device_dropped`` is the
    latest STATUS's per-stream ``frames_dropped`` (cumulative since that device's boot)."""

    bytes: int = 0
    frames_ok: int = 0
    crc_errors: int = 0  # segments that decoded but whose CRC did not match
    framing_errors: int = 0  # bad COBS, too short, or non-text garbage
    invalid_frames: int = 0  # CRC good but the header/body failed validation
    oversize: int = 0  # unterminated segments longer than MAX_SEGMENT, dropped
    garbage_bytes: int = 0  # bytes of the three kinds above
    text_bytes: int = 0
    duplicates: int = 0  # frames whose seq was already seen (not emitted by default)
    missing: int = 0  # frames missing from seq gaps, all types and streams
    missing_by_stream: dict[int, int] = field(default_factory=dict)  # DATA frames only
    device_dropped: dict[int, int] = field(default_factory=dict)
    device_frames_dropped: int = 0  # latest STATUS, all frame types
    sessions: int = 0
    has_baseline: bool = False  # reconcile() has a baseline for this session (boot or STATUS)
    # reconciliation baselines (per session)
    _base_device: dict[int, int] = field(default_factory=dict, repr=False)
    _base_missing: dict[int, int] = field(default_factory=dict, repr=False)
    _base_corrupt: int = field(default=0, repr=False)

    @property
    def corrupt_segments(self) -> int:
        return self.crc_errors + self.framing_errors + self.invalid_frames + self.oversize

    def reconcile(self) -> list[StreamReconciliation]:
        """Per stream: do host-side gaps equal the device's reported drops (since the session's
        baseline: its boot if the host saw HELLO seq 0, else its first STATUS)?

        Frames dropped on the device (ring full) consume a seq, so they show up as gaps;
        frames corrupted on the link show up as gaps *and* as CRC/framing errors.  So
        ``host_missing == device_dropped + lost_in_transit`` where ``lost_in_transit`` should
        not exceed the corrupt segments counted since the baseline.  Exact only when the last
        DATA frame of each stream arrived after the last STATUS (drops after a frame show up
        as a gap at the next frame).
        """
        out = []
        corrupt = self.corrupt_segments - self._base_corrupt
        if not self.has_baseline:
            return out
        for sid in sorted(set(self.device_dropped) | set(self.missing_by_stream)):
            host = self.missing_by_stream.get(sid, 0) - self._base_missing.get(sid, 0)
            dev = (self.device_dropped.get(sid, 0) - self._base_device.get(sid, 0)) % _COUNTER_MOD
            lost = host - dev
            if lost == 0:
                ok, why = True, "host gaps equal device-reported drops (%d)" % dev
            elif 0 < lost <= corrupt:
                ok, why = (
                    False,
                    "%d frame(s) lost in transit; %d corrupt segment(s) (CRC/framing) seen on the link"
                    % (lost, corrupt),
                )
            elif lost > 0:
                ok, why = (
                    False,
                    "%d frame(s) missing beyond device drops and only %d corrupt segment(s): "
                    "frames lost without trace (host read overrun or port buffer overflow?)" % (lost, corrupt),
                )
            else:
                ok, why = (
                    False,
                    "device reports %d more drop(s) than host gaps: drops after the stream's last "
                    "received frame, or gaps masked by a seq wrap" % -lost,
                )
            out.append(StreamReconciliation(sid, host, dev, lost, ok, why))
        return out

    def balanced(self) -> bool:
        """True if every stream reconciles exactly."""
        return all(r.balanced for r in self.reconcile())


# ---------------------------------------------------------------- COBS (host)


def cobs_encode(data: bytes) -> bytes:
    """COBS-encode ``data`` (no delimiters); byte-identical to wire.cobs_encode."""
    out = bytearray()
    for piece in bytes(data).split(b"\x00"):
        while len(piece) >= 254:
            out.append(255)
            out += piece[:254]
            piece = piece[254:]
        out.append(len(piece) + 1)
        out += piece
    return bytes(out)


def cobs_decode(seg: bytes) -> bytes:
    """Decode one COBS segment (no delimiters).  Raises FrameError if malformed."""
    n = len(seg)
    parts = []
    i = 0
    while i < n:
        code = seg[i]
        j = i + code
        if code == 0 or j > n:
            raise FrameError("bad COBS code %d at %d of %d" % (code, i, n))
        parts.append(seg[i + 1 : j])
        i = j
        if code != 255 and i < n:
            parts.append(b"\x00")
    out = b"".join(parts)
    if b"\x00" in seg:
        raise FrameError("zero byte inside a COBS segment")
    return out


# ---------------------------------------------------------------- host encoders


def _boot_bytes(boot_id: int | bytes) -> bytes:
    if isinstance(boot_id, int):
        return boot_id.to_bytes(4, "little")
    if len(boot_id) != 4:
        raise ValueError("boot_id must be 4 bytes")
    return bytes(boot_id)


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
    version: int = wire.VERSION,
    flags: int = 0,
) -> bytes:
    """A complete frame in wire form: 0x00, COBS(header + body + CRC-32), 0x00."""
    frame = (
        struct.pack(
            wire.HEADER_FMT, version, ftype, stream, flags, _boot_bytes(boot_id), seq & 0xFFFF,
            t0_us & 0xFFFFFFFF, period_us, count,
        )
        + bytes(body)
    )
    if len(frame) + wire.CRC_SIZE > wire.MAX_FRAME:
        raise ValueError("frame too long: %d bytes" % (len(frame) + wire.CRC_SIZE))
    frame += _CRC.pack(zlib.crc32(frame))
    return b"\x00" + cobs_encode(frame) + b"\x00"


def encode_data(
    stream: int,
    boot_id: int | bytes,
    seq: int,
    t0_us: int,
    period_us: int,
    samples: bytes,
    sample_size: int,
    missing: tuple[int, ...] | list[int] = (),
) -> bytes:
    """A DATA frame from raw sample bytes (len a multiple of sample_size) and missing indices:
    samples first, then the bitmap with FLAG_MISSING only if some sample is missing."""
    if sample_size < 1 or len(samples) % sample_size:
        raise ValueError("samples length %d is not a multiple of %d" % (len(samples), sample_size))
    count = len(samples) // sample_size
    bm = bytearray((count + 7) >> 3)
    for i in missing:
        if not 0 <= i < count:
            raise ValueError("missing index %d out of range" % i)
        bm[i >> 3] |= 1 << (i & 7)
    if not missing:
        return encode_frame(wire.T_DATA, stream, boot_id, seq, t0_us, period_us, count, bytes(samples))
    return encode_frame(wire.T_DATA, stream, boot_id, seq, t0_us, period_us, count, bytes(samples) + bytes(bm),
                        flags=wire.FLAG_MISSING)


def encode_hello(boot_id: int | bytes, seq: int, info: dict, t0_us: int = 0) -> bytes:
    return encode_frame(
        wire.T_HELLO, wire.NO_STREAM, boot_id, seq, t0_us,
        body=json.dumps(info, separators=(",", ":")).encode(),
    )


def encode_status(boot_id: int | bytes, seq: int, status: Status, t0_us: int = 0) -> bytes:
    body = _STATUS.pack(
        status.uptime_ms, status.free_heap, status.loop_overruns, status.frames_sent,
        status.frames_dropped, status.reset_cause, status.cmd_errors, status.rx_errors,
        len(status.streams),
    )
    for s in status.streams:
        body += _STATUS_STREAM.pack(
            s.stream, int(s.online), s.sensor_errors, s.frames_dropped, s.samples_missing
        )
    return encode_frame(wire.T_STATUS, wire.NO_STREAM, boot_id, seq, t0_us, body=body)


def encode_event(
    boot_id: int | bytes, seq: int, code: int, stream: int = wire.NO_STREAM, arg: int = 0,
    text: str = "", t0_us: int = 0,
) -> bytes:
    body = _EVENT.pack(code, stream, arg) + text.encode("utf-8")
    return encode_frame(wire.T_EVENT, wire.NO_STREAM, boot_id, seq, t0_us, body=body)


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


# ---------------------------------------------------------------- the decoder


class _Session:
    __slots__ = ("boot_id", "streams", "hello", "last_seq", "ticks_period", "t_last", "t_acc", "from_boot")

    def __init__(self, boot_id: int):
        self.boot_id = boot_id
        self.streams: dict[int, StreamInfo] | None = None  # None until HELLO
        self.hello: dict | None = None
        self.last_seq: dict[tuple[int, int], int] = {}
        self.ticks_period = wire.TICKS_PERIOD_DEFAULT
        self.t_last: int | None = None
        self.t_acc = 0
        self.from_boot = False


class Decoder:
    """Incremental, resynchronising decoder.  ``feed(data) -> list[Frame | DeviceText]``.

    Args:
        emit_duplicates: also return frames whose seq was already seen (default: count and drop).
        max_segment: bound on an unterminated segment (bytes); longer ones are dropped.
    """

    def __init__(self, *, emit_duplicates: bool = False, max_segment: int = MAX_SEGMENT):
        self.stats = LinkStats()
        self.emit_duplicates = emit_duplicates
        self.max_segment = max_segment
        self._tail = bytearray()
        self._discard = False  # dropping an oversize segment until the next 0x00
        self._text_seg = False  # the tail continues a segment already emitted (in part) as text
        self._session: _Session | None = None

    # -- public ---------------------------------------------------------------------------

    @property
    def hello(self) -> dict | None:
        """The current session's HELLO (None until one is received)."""
        return self._session.hello if self._session else None

    @property
    def streams(self) -> dict[int, StreamInfo]:
        s = self._session
        return dict(s.streams) if s and s.streams else {}

    @property
    def boot_id(self) -> int | None:
        return self._session.boot_id if self._session else None

    @property
    def pending(self) -> int:
        """Bytes buffered waiting for a delimiter (always <= max_segment)."""
        return len(self._tail)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame | DeviceText]:
        out: list[Frame | DeviceText] = []
        if not data:
            return out
        data = bytes(data)
        st = self.stats
        st.bytes += len(data)
        if self._discard:
            i = data.find(b"\x00")
            if i < 0:
                st.garbage_bytes += len(data)
                return out
            st.garbage_bytes += i
            data = data[i:]
            self._discard = False
        if b"\x00" in data:
            if self._tail:
                self._tail += data
                parts = bytes(self._tail).split(b"\x00")
            else:
                parts = data.split(b"\x00")
            tail = parts.pop()
            seg_fn = self._segment
            if self._text_seg:
                self._text_seg = False
                seg = parts[0]
                parts[0] = b""
                if seg:
                    self._text_or_garbage(seg, out)
            for seg in parts:
                if seg:
                    seg_fn(seg, out)
            self._tail = bytearray(tail)
        else:
            self._tail += data
        if self._tail:
            self._flush_tail(out)
        return out

    def flush(self) -> list[Frame | DeviceText]:
        """Treat the buffered tail as a complete segment (e.g. at end of a recording)."""
        out: list[Frame | DeviceText] = []
        if self._tail:
            seg = bytes(self._tail)
            self._tail = bytearray()
            if self._text_seg:
                self._text_or_garbage(seg, out)
            else:
                self._segment(seg, out)
        self._text_seg = False
        return out

    # -- internals ------------------------------------------------------------------------

    def _flush_tail(self, out: list) -> None:
        tail = self._tail
        if self._text_seg or (tail[0] >= _TEXT_MIN_FIRST and len(tail) > 1 and tail[1] != wire.VERSION):
            # text is emitted eagerly (a prompt has no delimiter after it); a frame starts with
            # a byte < 0x08 or has the version (0x01, never text) second, so this cannot
            # swallow one; only a segment's very first byte waits for the second to decide
            self._text_seg = True
            k = _TEXT_RE.match(tail).end()
            if k:
                self._text(bytes(tail[:k]), out)
                del tail[:k]
        if len(tail) > self.max_segment:
            self.stats.oversize += 1
            self.stats.garbage_bytes += len(tail)
            self._tail = bytearray()
            self._discard = True
            self._text_seg = False

    def _text(self, raw: bytes, out: list) -> None:
        self.stats.text_bytes += len(raw)
        out.append(DeviceText(raw.decode("utf-8", "replace"), raw))

    def _text_or_garbage(self, seg: bytes, out: list) -> None:
        k = _TEXT_RE.match(seg).end()
        if k:
            self._text(seg[:k], out)
        if k < len(seg):
            self._garbage(seg[k:])

    def _garbage(self, seg: bytes) -> None:
        st = self.stats
        st.framing_errors += 1
        st.garbage_bytes += len(seg)

    def _segment(self, seg: bytes, out: list) -> None:
        st = self.stats
        if seg[0] >= _TEXT_MIN_FIRST and (len(seg) == 1 or seg[1] != wire.VERSION):
            self._text_or_garbage(seg, out)
            return
        if len(seg) > self.max_segment:
            st.oversize += 1
            st.garbage_bytes += len(seg)
            return
        # COBS decode (inline for speed)
        n = len(seg)
        parts = []
        i = 0
        while i < n:
            j = i + seg[i]
            if j > n or j == i:
                self._garbage(seg)
                return
            parts.append(seg[i + 1 : j])
            if seg[i] != 255 and j < n:
                parts.append(b"\x00")
            i = j
        frame = b"".join(parts)
        fl = len(frame)
        if fl < wire.OVERHEAD:
            self._garbage(seg)
            return
        if zlib.crc32(memoryview(frame)[:-4]) != _CRC.unpack_from(frame, fl - 4)[0]:
            st.crc_errors += 1
            st.garbage_bytes += n
            return
        f = self._validate(frame, seg)
        if f is None:
            st.invalid_frames += 1
            st.garbage_bytes += n
            return
        if self._track(f):
            out.append(f)

    def _validate(self, frame: bytes, seg: bytes) -> Frame | None:
        """Header/body consistency beyond the CRC; returns the Frame or None."""
        version, ftype, stream, flags, boot, seq, t0, period, count = _HDR.unpack_from(frame)
        if version != wire.VERSION or ftype not in _KNOWN_TYPES:
            return None
        if flags and (ftype != wire.T_DATA or flags & ~wire.FLAGS_DATA):
            return None
        body = frame[wire.HEADER_SIZE : -wire.CRC_SIZE]
        bl = len(body)
        sess = self._session
        streams = sess.streams if sess is not None and sess.boot_id == boot else None
        sample_size = 0
        if ftype == wire.T_DATA:
            if stream == wire.NO_STREAM or not 0 < count <= MAX_COUNT or period == 0:
                return None
            # samples, then (FLAG_MISSING only) the bitmap: a flag/length mismatch is invalid
            bm = (count + 7) >> 3 if flags & wire.FLAG_MISSING else 0
            if streams is not None:
                info = streams.get(stream)
                if info is None:
                    return None
                sample_size = info.sample_size
                if bl != bm + count * sample_size:
                    return None
            else:
                rest = bl - bm
                if rest <= 0 or rest % count:
                    return None
                sample_size = rest // count
            if bm:
                if count & 7 and body[bl - 1] >> (count & 7):
                    return None  # padding bits of the bitmap must be zero
                if not any(body[bl - bm :]):
                    return None  # FLAG_MISSING promises at least one missing sample
        else:
            if period != 0 or count != 0:
                return None
            if ftype == wire.T_CALIB:
                if stream == wire.NO_STREAM:
                    return None
                if streams is not None and stream not in streams:
                    return None
            elif stream != wire.NO_STREAM:
                return None
            elif ftype == wire.T_HELLO:
                try:
                    hello = json.loads(body.decode("utf-8"))
                    if not isinstance(hello, dict) or not isinstance(hello.get("streams"), list):
                        return None
                    _parse_streams(hello)
                except (ValueError, KeyError, TypeError, AttributeError, struct.error, FrameError):
                    return None
            elif ftype == wire.T_STATUS:
                if bl < wire.STATUS_SIZE or bl != wire.STATUS_SIZE + body[wire.STATUS_SIZE - 1] * (
                    wire.STATUS_STREAM_SIZE
                ):
                    return None
            elif ftype == wire.T_EVENT:
                if bl < wire.EVENT_SIZE:
                    return None
                try:
                    body[wire.EVENT_SIZE :].decode("utf-8")
                except UnicodeDecodeError:
                    return None
            elif ftype in (wire.T_ACK, wire.T_NACK):
                if bl != wire.ACK_SIZE or (body[3] == 0) != (ftype == wire.T_ACK):
                    return None
            elif ftype == wire.T_CMD:
                if bl < wire.CMD_SIZE:
                    return None
        return Frame(ftype, stream, boot, seq, t0, period, count, body, b"\x00" + seg + b"\x00", 0, 0, sample_size,
                     flags)

    def _track(self, f: Frame) -> bool:
        """Session, sequence and time bookkeeping; returns False for a dropped duplicate."""
        st = self.stats
        sess = self._session
        if sess is None or sess.boot_id != f.boot_id:
            sess = self._session = _Session(f.boot_id)
            st.sessions += 1
            st.has_baseline = False
            st.device_dropped = {}
            st.device_frames_dropped = 0
            st._base_device = {}
            st._base_missing = dict(st.missing_by_stream)
            st._base_corrupt = st.corrupt_segments
        ftype = f.type
        if ftype == wire.T_HELLO:
            hello = json.loads(f.body.decode("utf-8"))
            sess.hello = hello
            sess.streams = _parse_streams(hello)
            tp = hello.get("ticks_period")
            if isinstance(tp, int) and tp > 0:
                sess.ticks_period = tp
            if f.seq == 0 and not any(sess.last_seq.values()):
                # we saw the boot: every counter starts at 0, so gaps count from there
                sess.from_boot = True
                st.has_baseline = True
                st._base_device = {}
                st._base_missing = dict(st.missing_by_stream)
                st._base_corrupt = st.corrupt_segments
        if ftype != wire.T_CMD:
            key = (ftype, f.stream)
            last = sess.last_seq.get(key)
            if last is None and sess.from_boot:
                last = 0xFFFF
            if last is not None:
                gap = (f.seq - last - 1) & 0xFFFF
                if gap >= 0x8000:  # seq == last (gap 0xFFFF) or behind it: already seen
                    st.duplicates += 1
                    if not self.emit_duplicates:
                        return False
                    gap = -1
                elif gap:
                    st.missing += gap
                    if ftype == wire.T_DATA:
                        st.missing_by_stream[f.stream] = st.missing_by_stream.get(f.stream, 0) + gap
                if gap >= 0:
                    sess.last_seq[key] = f.seq
            else:
                sess.last_seq[key] = f.seq
        # time: unwrap t0 modulo the ticks period (signed deltas: batches interleave)
        p = sess.ticks_period
        t = f.t0_us % p
        if sess.t_last is None:
            sess.t_acc = t
        else:
            d = (t - sess.t_last) % p
            if d >= p >> 1:
                d -= p
            sess.t_acc += d
        sess.t_last = t
        f.t_us = sess.t_acc
        f.session = st.sessions
        st.frames_ok += 1
        if ftype == wire.T_STATUS:
            s = _parse_status(f.body)
            st.device_frames_dropped = s.frames_dropped
            if not st.has_baseline:
                st.has_baseline = True
                st._base_device = {x.stream: x.frames_dropped for x in s.streams}
                st._base_missing = dict(st.missing_by_stream)
                st._base_corrupt = st.corrupt_segments
            for x in s.streams:
                st.device_dropped[x.stream] = x.frames_dropped
        return True
