"""Link statistics of one decoder: the raw counters (bytes, frames, corrupt segments, seq gaps,
the device's latest drop counts).

The verdict over them (is every sample accounted for?) is the sample ledger's,
``host.monitoring.ledger``, which attributes each gap to its cause; these counters stay raw.  The
decoder fills them; ``start_boot`` and ``set_baseline`` are its hooks for a new boot id and for
the point this boot's counting starts from (``corrupt_since_baseline``).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class LinkStats:
    """Counters of one decoder.  Totals are cumulative over boots; ``device_dropped`` is the
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
    sessions: int = 0  # boot ids seen (Frame.session numbers them)
    has_baseline: bool = False  # this boot's counting has a start (its HELLO seq 0 or a STATUS)
    _base_corrupt: int = field(default=0, repr=False)

    @property
    def corrupt_segments(self) -> int:
        return self.crc_errors + self.framing_errors + self.invalid_frames + self.oversize

    @property
    def corrupt_since_baseline(self) -> int:
        """Corrupt segments counted since this boot's baseline: the most frames the link can
        have lost in transit since then."""
        return self.corrupt_segments - self._base_corrupt

    def start_boot(self) -> None:
        """A new boot id: per-boot device counters restart, and no baseline until HELLO or STATUS."""
        self.sessions += 1
        self.has_baseline = False
        self.device_dropped = {}
        self.device_frames_dropped = 0
        self._base_corrupt = self.corrupt_segments

    def set_baseline(self, device_dropped: dict[int, int]) -> None:
        """This boot's counting starts here: ``device_dropped`` is what the board had dropped by
        now per stream (empty at its boot, a STATUS's counts when joining late)."""
        self.has_baseline = True
        self._base_corrupt = self.corrupt_segments
