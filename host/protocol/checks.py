"""What makes a CRC-good frame valid: header and body consistency rules for every frame type.

A frame whose CRC matches can still be one no board sends (a version or type this host does not
know, flags on a frame that has none, a body whose length disagrees with its header or with the
HELLO's sample size, a bitmap with nothing marked, a HELLO a decoder cannot size): the decoder counts
those as invalid (``LinkStats.invalid_frames``) instead of returning them.  The layouts come from
``firmware/wire.py``.
"""

from __future__ import annotations

import json
import struct
from collections import deque

from firmware import wire
from host.protocol.frames import Frame, FrameError, StreamInfo, parse_streams

MAX_COUNT = 8192  # samples per DATA frame the decoder accepts (sanity bound)

_HDR = struct.Struct("<BBBBIHIIH")  # wire.HEADER_FMT with the boot id read as a u32
assert _HDR.size == wire.HEADER_SIZE
_KNOWN_TYPES = frozenset(wire.TYPES)


def check_frame(frame: bytes, seg: bytes, streams: dict[int, StreamInfo] | None, boot_id: int | None,
                rejected: deque[str]) -> Frame | None:
    """The Frame that the CRC-good `frame` (COBS segment `seg`) is, or None if it breaks a rule.

    Args:
        streams: the current boot's streams from its HELLO (None before one); used only when the
            frame's boot id is `boot_id`, the current boot's.
        rejected: where to say why, when the reason is worth a line in the event log.
    """
    version, ftype, stream, flags, boot, seq, t0, period, count = _HDR.unpack_from(frame)
    if version != wire.VERSION or ftype not in _KNOWN_TYPES:
        return None
    if flags and (ftype != wire.T_DATA or flags & ~wire.FLAGS_DATA):
        return None
    if not (flags & wire.FLAG_MISSING) != (not flags & wire.FLAGS_CAUSE):
        return None  # a bitmap comes with the cause(s) of its marks, a cause with a bitmap
    body = frame[wire.HEADER_SIZE : -wire.CRC_SIZE]
    bl = len(body)
    if boot != boot_id:
        streams = None
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
                for info in parse_streams(hello).values():
                    if info.sample_format and struct.calcsize(info.sample_format) != info.sample_size:
                        rejected.append("HELLO refused: stream %d (%s) has sample_size %d but its format %r "
                                        "packs %d bytes" % (info.id, info.name, info.sample_size,
                                                            info.sample_format, struct.calcsize(info.sample_format)))
                        return None
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
