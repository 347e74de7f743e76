"""Pure incremental decoder of the pagerless wire format (see docs/protocol.md).

No I/O: feed it the bytes read from the link, in any chunking, and it returns the complete
frames and the device text that leaked between frames, keeping the unterminated tail
internally::

    dec = Decoder()
    for item in dec.feed(chunk):          # list[Frame | DeviceText]
        if isinstance(item, Frame) and item.type == wire.T_DATA:
            d = item.data()               # DataBlock: raw sample bytes + missing bitmap
    dec.stats                             # LinkStats (raw counters; host.monitoring.ledger judges them)

It never raises on input: every segment that is not text or a valid frame is counted in
``LinkStats`` (CRC, framing, validation, oversize).  The layout and constants come from
``firmware/wire.py`` (the single source of truth); the host uses ``zlib.crc32`` (the same CRC-32)
and the ``cobs`` package's C decoder for speed.  Memory is bounded: an unterminated segment
longer than ``MAX_SEGMENT`` is dropped (counted in ``LinkStats.oversize``) and the decoder
discards bytes up to the next 0x00.
"""

from __future__ import annotations

import json
import re
from collections import deque
import struct
import zlib

from cobs import cobs as _cobs

from firmware import wire
from host.protocol.bootstate import BootState
from host.protocol.checks import MAX_COUNT, check_frame
from host.protocol.frames import DeviceText, Frame, StreamInfo, parse_status, parse_streams
from host.protocol.linkstats import LinkStats

__all__ = ["MAX_COUNT", "MAX_SEGMENT", "Decoder"]

MAX_SEGMENT = wire.cobs_max(wire.MAX_FRAME)  # longest COBS segment a valid frame can have

_CRC = struct.Struct("<I")
_cobs_decode = _cobs.decode
_DecodeError = _cobs.DecodeError
_crc32, _new = zlib.crc32, tuple.__new__  # _new(Frame, fields): a Frame without a Python call
# the header as (version..boot id as one u64, seq, t0, period, count): the fast path's key is the first
_KEY_UNPACK = struct.Struct("<QHIIH").unpack_from
assert struct.calcsize("<QHIIH") == wire.HEADER_SIZE
_CRC_RESIDUE = 0x2144DF1C  # zlib.crc32 of any frame followed by its own CRC-32 (little-endian): the check in one call
_T_DATA, _VERSION, _OVERHEAD, _HS, _CS = wire.T_DATA, wire.VERSION, wire.OVERHEAD, wire.HEADER_SIZE, wire.CRC_SIZE

# Device text: printable ASCII, \b \t \n \f \r ESC, and well-formed UTF-8 multibyte sequences.
_TEXT_RE = re.compile(
    rb"(?:[\x08\x09\x0a\x0c\x0d\x1b\x20-\x7e]"
    rb"|[\xc2-\xdf][\x80-\xbf]"
    rb"|[\xe0-\xef][\x80-\xbf]{2}"
    rb"|[\xf0-\xf4][\x80-\xbf]{3})*"
)
_TEXT_MIN_FIRST = 0x08  # segments starting with a byte below this are frame candidates
# ... and so are segments whose second byte is the version (0x02, never device text): a DATA
# frame with FLAG_MISSING may have its first zero anywhere, so its first COBS code byte is
# arbitrary, but the byte after it is always frame byte 0, the version.


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
        self._boot: BootState | None = None
        self.rejected: deque[str] = deque(maxlen=64)  # why a CRC-good frame was refused, when it says

    # -- public ---------------------------------------------------------------------------

    @property
    def hello(self) -> dict | None:
        """The current boot's HELLO (None until one is received)."""
        return self._boot.hello if self._boot else None

    @property
    def streams(self) -> dict[int, StreamInfo]:
        s = self._boot
        return dict(s.streams) if s and s.streams else {}

    @property
    def boot_id(self) -> int | None:
        return self._boot.boot_id if self._boot else None

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
            if self._text_seg:
                self._text_seg = False
                seg = parts[0]
                parts[0] = b""
                if seg:
                    self._text_or_garbage(seg, out)
            self._segments(parts, out)
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

    def _segments(self, parts: list[bytes], out: list) -> None:
        """Every complete segment of one read.  DATA frames of announced streams without a bitmap
        are almost all a link carries: they take this inlined copy of what ``_segment``,
        ``check_frame`` and ``_track`` do for them; anything else goes to ``_segment``.

        The header's first 8 bytes (version, type, stream, flags, boot id) are one integer, looked
        up in ``BootState.fast`` (built from the HELLO), which is all five checks in one; the boot's
        time and the frame counter live in locals and are written back before ``_segment`` runs."""
        st = self.stats
        slow = self._segment
        max_seg = self.max_segment
        boot = self._boot
        if boot is None or not boot.fast:
            for seg in filter(None, parts):
                slow(seg, out)
            return
        append = out.append
        fast, last_seq, p = boot.fast, boot.last_seq, boot.ticks_period
        half, dflt, bid = p >> 1, 0xFFFF if boot.from_boot else None, boot.boot_id
        t_last, t_acc, sessions, corrupt = boot.t_last, boot.t_acc, st.sessions, st.corrupt_segments
        n_ok = 0
        for seg in filter(None, parts):
            if seg[0] < _TEXT_MIN_FIRST and len(seg) <= max_seg:
                try:
                    frame = _cobs_decode(seg)
                except _DecodeError:
                    frame = b""
                fl = len(frame)
                if fl > _OVERHEAD and _crc32(frame) == _CRC_RESIDUE:
                    key, seq, t0, period, count = _KEY_UNPACK(frame)
                    ss = fast.get(key)
                    if ss is not None and period and 0 < count <= MAX_COUNT and fl == _OVERHEAD + count * ss:
                        sid = key >> 16 & 0xFF
                        last = last_seq.get(sid, dflt)
                        gap = 0 if last is None else (seq - last - 1) & 0xFFFF
                        if gap < 0x8000:
                            if gap:
                                st.missing += gap
                                st.missing_by_stream[sid] = st.missing_by_stream.get(sid, 0) + gap
                            last_seq[sid] = seq
                            t = t0 % p
                            if t_last is None:
                                t_acc = t
                            else:
                                d = (t - t_last) % p
                                t_acc += d - p if d >= half else d
                            t_last = t
                            n_ok += 1
                            append(_new(Frame, (_T_DATA, sid, bid, seq, t0, period, count, frame[_HS:-_CS],
                                                b"\x00" + seg + b"\x00", t_acc, sessions, ss, 0, corrupt)))
                            continue
            boot.t_last, boot.t_acc = t_last, t_acc
            st.frames_ok += n_ok
            n_ok = 0
            slow(seg, out)
            boot = self._boot  # a new boot id or a HELLO may have come: what the fast path knows
            fast, last_seq, p = boot.fast, boot.last_seq, boot.ticks_period
            half, dflt, bid = p >> 1, 0xFFFF if boot.from_boot else None, boot.boot_id
            t_last, t_acc, sessions, corrupt = boot.t_last, boot.t_acc, st.sessions, st.corrupt_segments
        boot.t_last, boot.t_acc = t_last, t_acc
        st.frames_ok += n_ok

    def _segment(self, seg: bytes, out: list) -> None:
        st = self.stats
        if seg[0] >= _TEXT_MIN_FIRST and (len(seg) == 1 or seg[1] != wire.VERSION):
            self._text_or_garbage(seg, out)
            return
        if len(seg) > self.max_segment:
            st.oversize += 1
            st.garbage_bytes += len(seg)
            return
        try:
            frame = _cobs_decode(seg)
        except _cobs.DecodeError:
            self._garbage(seg)
            return
        n = len(seg)
        fl = len(frame)
        if fl < wire.OVERHEAD:
            self._garbage(seg)
            return
        if zlib.crc32(memoryview(frame)[:-4]) != _CRC.unpack_from(frame, fl - 4)[0]:
            st.crc_errors += 1
            st.garbage_bytes += n
            return
        cur = self._boot
        f = check_frame(frame, seg, cur.streams if cur is not None else None,
                        cur.boot_id if cur is not None else None, self.rejected)
        if f is None:
            st.invalid_frames += 1
            st.garbage_bytes += n
            return
        f = self._track(f)
        if f is not None:
            out.append(f)

    def _track(self, f: Frame) -> Frame | None:
        """Boot, sequence and time bookkeeping: the frame with its time, session and corrupt count;
        None for a dropped duplicate."""
        st = self.stats
        boot = self._boot
        if boot is None or boot.boot_id != f.boot_id:
            boot = self._boot = BootState(f.boot_id)
            st.start_boot()
        ftype = f.type
        if ftype == wire.T_HELLO:
            hello = json.loads(f.body.decode("utf-8"))
            boot.hello = hello
            boot.announce(parse_streams(hello))
            tp = hello.get("ticks_period")
            if isinstance(tp, int) and tp > 0:
                boot.ticks_period = tp
            if f.seq == 0 and not any(boot.last_seq.values()):
                # we saw the boot: every counter starts at 0, so gaps count from there
                boot.from_boot = True
                st.set_baseline({})
        if ftype != wire.T_CMD:
            key = f.stream if ftype == wire.T_DATA else (ftype, f.stream)  # DATA: the stream id alone
            last = boot.last_seq.get(key)
            if last is None and boot.from_boot:
                last = 0xFFFF
            if last is not None:
                gap = (f.seq - last - 1) & 0xFFFF
                if gap >= 0x8000:  # seq == last (gap 0xFFFF) or behind it: already seen
                    st.duplicates += 1
                    if not self.emit_duplicates:
                        return None
                    gap = -1
                elif gap:
                    st.missing += gap
                    if ftype == wire.T_DATA:
                        st.missing_by_stream[f.stream] = st.missing_by_stream.get(f.stream, 0) + gap
                if gap >= 0:
                    boot.last_seq[key] = f.seq
            else:
                boot.last_seq[key] = f.seq
        # time: unwrap t0 modulo the ticks period (signed deltas: batches interleave)
        p = boot.ticks_period
        t = f.t0_us % p
        if boot.t_last is None:
            boot.t_acc = t
        else:
            d = (t - boot.t_last) % p
            if d >= p >> 1:
                d -= p
            boot.t_acc += d
        boot.t_last = t
        f = _new(Frame, (*f[:9], boot.t_acc, st.sessions, f.sample_size, f.flags, st.corrupt_segments))
        st.frames_ok += 1
        if ftype == wire.T_STATUS:
            s = parse_status(f.body)
            st.device_frames_dropped = s.frames_dropped
            # the stream's seq gaps: frames refused by the output plus frames skipped by overruns
            if not st.has_baseline:
                st.set_baseline({x.stream: x.frames_lost for x in s.streams})
            for x in s.streams:
                st.device_dropped[x.stream] = x.frames_lost
        return f
