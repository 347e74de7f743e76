"""What the decoder knows of one boot (one boot id): its HELLO and streams, the last seq of each
stream and frame type, and its clock, unwrapped over the device's ticks period.

``BootState.fast`` is the table the decoder's path for plain DATA frames looks a header up in: the
first 8 header bytes (version, type, stream, flags, boot id) of a DATA frame of each announced
stream without flags, as one little-endian integer, mapped to the stream's sample size.
"""

from __future__ import annotations

from firmware import wire
from host.protocol.frames import StreamInfo


class BootState:
    """What the decoder knows of the boot whose frames it is reading (one boot id)."""

    __slots__ = ("boot_id", "streams", "hello", "last_seq", "ticks_period", "t_last", "t_acc", "from_boot", "fast")

    def __init__(self, boot_id: int):
        self.boot_id = boot_id
        self.streams: dict[int, StreamInfo] | None = None  # None until HELLO
        self.hello: dict | None = None
        self.last_seq: dict[int | tuple[int, int], int] = {}  # DATA by stream id, others by (type, stream)
        self.ticks_period = wire.TICKS_PERIOD_DEFAULT
        self.t_last: int | None = None
        self.t_acc = 0
        self.from_boot = False
        self.fast: dict[int, int] = {}  # header key of a plain DATA frame of an announced stream -> sample size

    def announce(self, streams: dict[int, StreamInfo]) -> None:
        """The HELLO's streams: their plain DATA frames (flags 0, this boot) may take the fast path."""
        self.streams = streams
        self.fast = {_data_key(sid, self.boot_id): info.sample_size for sid, info in streams.items()}


def _data_key(sid: int, boot_id: int) -> int:
    """The first 8 header bytes of a DATA frame of `sid` in `boot_id` without flags, as a little-endian u64."""
    return wire.VERSION | wire.T_DATA << 8 | sid << 16 | boot_id << 32
