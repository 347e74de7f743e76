"""The sample ledger's result types: the lines one ledger balances (`Lines`), the verdict over them
and the `Report` of a whole run, which `monitor stats`, exports, HIL and benches read.  Apart from
the accounting in `host.monitoring.ledger` so a reader of a report needs only this module."""
from __future__ import annotations

from dataclasses import dataclass, field, fields

from host.protocol.frames import StreamInfo

SCHEMA = "pagerless.ledger/1"


@dataclass
class Lines:
    """One ledger: produced == the sum of every other line, exactly."""
    produced: int = 0
    delivered: int = 0
    missing_overrun: int = 0
    missing_sensor: int = 0
    missing_mixed: int = 0
    dropped_device: int = 0
    skipped_overrun: int = 0
    lost_link: int = 0
    lost_port_gone: int = 0
    lost_recording: int = 0
    lost_before_hello: int = 0
    not_reported: int = 0
    unexplained: int = 0
    reasons: list[str] = field(default_factory=list)

    @property
    def accounted(self) -> int:
        return sum(getattr(self, k) for k in LINE_NAMES[1:])

    @property
    def balanced(self) -> bool:
        return self.produced == self.accounted

    def add(self, other: Lines) -> None:
        for k in LINE_NAMES:
            setattr(self, k, getattr(self, k) + getattr(other, k))
        self.reasons += other.reasons

    def as_dict(self) -> dict:
        d = {k: getattr(self, k) for k in LINE_NAMES}
        d["balanced"] = self.balanced
        d["reasons"] = list(self.reasons)
        return d

    def line(self) -> str:
        """The non-zero lines on one line: 'produced 900 = delivered 880 + dropped_device 20'."""
        parts = [f"{k} {getattr(self, k)}" for k in LINE_NAMES[1:] if getattr(self, k)]
        return f"produced {self.produced} = " + (" + ".join(parts) or "0") + ("" if self.balanced else " (UNBALANCED)")


LINE_NAMES = tuple(f.name for f in fields(Lines) if f.name != "reasons")
#: lines settled per whole frame (batch x frames), as opposed to samples counted in received frames
FRAME_LINES = ("dropped_device", "skipped_overrun", "lost_link", "lost_port_gone", "lost_recording",
               "not_reported", "unexplained")


def verdict_of(lines: Lines, pending: bool) -> str:
    if lines.unexplained or not lines.balanced:
        return "fail"
    return "pending" if pending else "ok"


def unique_names(streams: dict[int, StreamInfo]) -> tuple[dict[int, str], list[str]]:
    """Stream names by id, a name used twice becoming name#id; and the duplicated names."""
    count: dict[str, int] = {}
    for s in streams.values():
        n = s.name or f"stream{s.id}"
        count[n] = count.get(n, 0) + 1
    names = {}
    for sid, s in streams.items():
        n = s.name or f"stream{sid}"
        names[sid] = f"{n}#{sid}" if count[n] > 1 else n
    return names, sorted(n for n, c in count.items() if c > 1)


@dataclass
class Report:
    boots: list[dict]
    streams: dict[str, Lines]
    total: Lines
    verdict: str

    def as_json(self) -> dict:
        return {"schema": SCHEMA, "boots": self.boots,
                "streams": {n: x.as_dict() for n, x in self.streams.items()},
                "total": self.total.as_dict(), "verdict": self.verdict}
