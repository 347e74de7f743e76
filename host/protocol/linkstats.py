"""Link statistics of one decoder, and the reconciliation of host-side gaps with device drops.

A frame the board drops (ring full) consumes a seq, so the host sees a gap; a frame corrupted on
the link is a gap *and* a corrupt segment.  ``LinkStats.reconcile`` checks, per stream, that the
gaps equal the drops the board reports in STATUS plus at most the corrupt segments seen, so no
frame is lost without being counted.  The decoder fills the counters; ``start_boot`` and
``set_baseline`` are its hooks for a new boot id and for the point counting starts from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

_COUNTER_MOD = 1 << 30  # STATUS counters wrap modulo 2**30 on boards


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
    has_baseline: bool = False  # reconcile() has a baseline for this boot (its HELLO or a STATUS)
    # reconciliation baselines (per boot)
    _base_device: dict[int, int] = field(default_factory=dict, repr=False)
    _base_missing: dict[int, int] = field(default_factory=dict, repr=False)
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
        self._base_device = {}
        self._base_missing = dict(self.missing_by_stream)
        self._base_corrupt = self.corrupt_segments

    def set_baseline(self, device_dropped: dict[int, int]) -> None:
        """Reconcile from here on: ``device_dropped`` is what the board had dropped by now per
        stream (empty at its boot, a STATUS's counts when joining late)."""
        self.has_baseline = True
        self._base_device = dict(device_dropped)
        self._base_missing = dict(self.missing_by_stream)
        self._base_corrupt = self.corrupt_segments

    def reconcile(self) -> list[StreamReconciliation]:
        """Per stream: do host-side gaps equal the device's reported drops (since the boot's
        baseline: its boot if the host saw HELLO seq 0, else its first STATUS)?

        Frames dropped on the device (ring full) consume a seq, so they show up as gaps;
        frames corrupted on the link show up as gaps *and* as CRC/framing errors.  So
        ``host_missing == device_dropped + lost_in_transit`` where ``lost_in_transit`` should
        not exceed the corrupt segments counted since the baseline.  Exact only when the last
        DATA frame of each stream arrived after the last STATUS (drops after a frame show up
        as a gap at the next frame).
        """
        out = []
        corrupt = self.corrupt_since_baseline
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
