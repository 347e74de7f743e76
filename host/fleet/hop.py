"""The sample ledger across the broker hop (docs/fleet.md, "Ledger across hops").

The monitor's ledger (docs/protocol.md section 11) accounts for every sample up to the host that
read the board; its publisher adds what happened next: `published` (handed to the MQTT client),
`lost_before_broker` (the client's queue refused them) and `held` (decoded, still waiting for
their HELLO).  The collector adds the hop itself from each publisher instance's `seq` and `ps`:
a seq that never came is a gap whose samples are the difference of the `ps` around it.  A gap is
`lost_broker` when its arrival window (from the message before it to the one that closed it)
holds evidence of a broker outage: the collector's own disconnect/reconnect or the publisher's
reconnect announcement (retained `online` with a higher `connects`, 2 or more).  Whatever no evidence
explains is `unexplained` and fails the verdict, as in the monitor's ledger.  QoS 1 is at least
once: a seq seen before is a duplicate, counted and not stored.

Everything is settled against the publisher's latest `ledger` message (seq S): the hop's lines
count the messages below S only, so `published == before_collector + received + lost_broker +
unexplained` holds exactly at every snapshot.
"""
from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass, field

LEDGER_SCHEMA = "pagerless.fleet.ledger/1"
ACTIVE_S = 5.0          # a publisher silent for longer is not "online" any more
_PENDING_CAP = 100_000  # data messages kept above the latest ledger seq before folding


@dataclass
class HopLines:
    host_samples: int = 0
    held: int = 0
    lost_before_broker: int = 0
    published: int = 0
    before_collector: int = 0
    received: int = 0
    lost_broker: int = 0
    unexplained: int = 0
    reasons: list[str] = field(default_factory=list)

    def add(self, o: HopLines) -> None:
        for k in HOP_LINES:
            setattr(self, k, getattr(self, k) + getattr(o, k))
        self.reasons += o.reasons

    @property
    def balanced(self) -> bool:
        return (self.host_samples == self.held + self.lost_before_broker + self.published
                and self.published == self.before_collector + self.received + self.lost_broker + self.unexplained)

    def as_dict(self) -> dict:
        return {**{k: getattr(self, k) for k in HOP_LINES}, "balanced": self.balanced, "reasons": list(self.reasons)}


HOP_LINES = tuple(k for k in HopLines.__dataclass_fields__ if k != "reasons")


class _Instance:
    """One publisher instance (one monitor run) of one board."""

    def __init__(self, pub: str, seq: int, ps: int, pos: int) -> None:
        self.pub = pub
        self.base_seq, self.base_ps = seq, ps
        self.hi, self.next_ps = seq, ps
        self.last_pos = pos
        self.gaps: list[list[int]] = []   # [seq start, seq end, ps at start, ps at end, pos lo, pos hi]
        self.settled = 0                  # samples received in messages below the latest ledger's seq
        self.pending: deque[tuple[int, int]] = deque()  # (seq, samples) received above it
        self.received_all = 0
        self.duplicates = 0
        self.ledger: dict | None = None
        self.ledger_seq = seq
        self.ledger_ps = ps
        self.connects = 0
        self.last_t = 0.0
        self.final = False


class HopLedger:
    """Per board, per publisher instance: seq tracking, duplicates, gaps and their evidence."""

    def __init__(self) -> None:
        self.boards: dict[str, dict[str, _Instance]] = {}
        self._pos = 0
        self._outages: list[int] = []   # positions of broker-outage evidence
        self.online: dict[str, bool] = {}
        self.conflicts: dict[str, int] = {}

    # -- evidence
    def outage(self) -> None:
        """The collector lost the broker (or got it back): gaps around here were lost at the broker."""
        self._pos += 1
        self._outages.append(self._pos)

    def online_message(self, board: str, msg: dict) -> None:
        self.online[board] = bool(msg["online"])
        inst = self.boards.get(board, {}).get(str(msg.get("pub")))
        c = msg.get("connects")
        if inst is not None and isinstance(c, int) and c > inst.connects:
            if c > 1:
                self.outage()  # the publisher reconnected: it had lost the broker
            inst.connects = c

    # -- messages
    def message(self, board: str, kind: str, msg: dict, t: float) -> bool:
        """A sequenced message (envelope checked). True when it is new (to store), False for a
        duplicate.  Retained copies replayed at subscription must not come here."""
        self._pos += 1
        insts = self.boards.setdefault(board, {})
        inst = insts.get(msg["pub"])
        seq, ps, n = msg["seq"], msg["ps"], msg.get("n", 0) if kind == "data" else 0
        if inst is None:
            live = [i for i in insts.values() if not i.final and t - i.last_t < ACTIVE_S]
            if live:
                self.conflicts[board] = self.conflicts.get(board, 0) + 1
            inst = insts[msg["pub"]] = _Instance(msg["pub"], seq, ps, self._pos)
        inst.last_t = max(inst.last_t, t)
        if seq < inst.hi:
            if not self._fill(inst, seq, ps, n):
                inst.duplicates += 1
                return False
        else:
            if seq > inst.hi:
                inst.gaps.append([inst.hi, seq, inst.next_ps, ps, inst.last_pos, self._pos])
            inst.hi, inst.next_ps, inst.last_pos = seq + 1, ps + n, self._pos
        if n:
            inst.received_all += n
            if seq < inst.ledger_seq:
                inst.settled += n
            else:
                inst.pending.append((seq, n))
                if len(inst.pending) > _PENDING_CAP:
                    inst.settled += inst.pending.popleft()[1]
        if kind == "ledger" and seq >= inst.ledger_seq:
            inst.ledger, inst.ledger_seq, inst.ledger_ps = msg, seq, ps
            inst.final = bool(msg.get("final"))
            if inst.pending:
                inst.settled += sum(k for s, k in inst.pending if s < seq)
                inst.pending = deque(x for x in inst.pending if x[0] >= seq)
        return True

    def _fill(self, inst: _Instance, seq: int, ps: int, n: int) -> bool:
        """A late message inside a gap (QoS 1 resend after a reconnect): split the gap."""
        for i, (s, e, ps_s, ps_e, lo, hi) in enumerate(inst.gaps):
            if s <= seq < e:
                parts = []
                if seq > s:
                    parts.append([s, seq, ps_s, ps, lo, hi])
                if seq + 1 < e:
                    parts.append([seq + 1, e, ps + n, ps_e, lo, hi])
                inst.gaps[i:i + 1] = parts
                return True
        return False

    # -- reports
    def instance_lines(self, inst: _Instance) -> HopLines | None:
        if inst.ledger is None:
            return None
        hop = inst.ledger.get("hop") or {}
        L = HopLines()
        for k in ("host_samples", "held", "lost_before_broker"):
            v = hop.get(k)
            L.__setattr__(k, v if isinstance(v, int) else 0)
        L.published = inst.ledger_ps
        L.before_collector = inst.base_ps
        if inst.base_seq:
            L.reasons.append(f"{inst.pub}: the collector joined at seq {inst.base_seq}")
        L.received = inst.settled
        S = inst.ledger_seq
        for s, e, ps_s, ps_e, lo, hi in inst.gaps:
            if s >= S:
                continue
            lost = ps_e - ps_s
            i = bisect.bisect_right(self._outages, lo)
            if i < len(self._outages) and self._outages[i] <= hi:
                L.lost_broker += lost
            else:
                L.unexplained += lost
                near = self._outages[max(0, i - 2):i + 2]
                L.reasons.append(f"{inst.pub}: seq {s}..{min(e, S) - 1} ({lost} samples) missing with no "
                                 f"broker outage in their window (arrivals {lo}..{hi}; outage evidence at "
                                 f"{near or 'none'})")
        rest = L.published - L.before_collector - L.received - L.lost_broker - L.unexplained
        if rest:
            L.unexplained += rest
            L.reasons.append(f"{inst.pub}: {rest} samples published but neither received nor in a gap")
        return L

    def board_report(self, board: str) -> dict:
        host: dict[str, int] = {}
        hop = HopLines()
        verdicts = []
        dup = 0
        for inst in self.boards.get(board, {}).values():
            dup += inst.duplicates
            L = self.instance_lines(inst)
            if L is None:
                verdicts.append("pending")
                continue
            hop.add(L)
            led = inst.ledger.get("ledger") or {}
            for k, v in (led.get("total") or {}).items():
                if isinstance(v, int) and not isinstance(v, bool):
                    host[k] = host.get(k, 0) + v
            if led.get("verdict") != "ok" or not (led.get("total") or {}).get("balanced", False):
                verdicts.append(str(led.get("verdict", "pending")))
        unexplained = host.get("unexplained", 0) + hop.unexplained
        if unexplained or not hop.balanced or "fail" in verdicts:
            verdict = "fail"
        elif "pending" in verdicts or not self.boards.get(board):
            verdict = "pending"
        else:
            verdict = "ok"
        return {"schema": LEDGER_SCHEMA, "board": board, "verdict": verdict, "unexplained": unexplained,
                "host": host, "hop": hop.as_dict(), "duplicates": dup,
                "publishers": len(self.boards.get(board, {})), "conflicts": self.conflicts.get(board, 0),
                "final": all(i.final for i in self.boards.get(board, {}).values())}
