"""Is the board still talking? A stall detector and a ledger of unanswered commands.

A board that hangs sends nothing: no DATA, no STATUS, no ACK. Without this the monitor would show
the last values forever. `Liveness` knows only what arrived when (it has no clock: every call
passes the host time), so a test drives it with synthetic times and a live feed with its own.

Stalled: no frame of any type for `factor` times the longest batch period the HELLO announced
(`period_us * batch` of its slowest stream: the longest a healthy board can be silent), but never
less than `floor_s`; before any HELLO, `floor_s`. Cleared by the next frame. Silence the host
asked for (an acknowledged STOP or REPL) or caused (the port gone) is not a stall.

Unanswered: every command the board receives intact gets an ACK or NACK (docs/protocol.md §9);
one that has none after `ack_timeout_s` is reported once ("SEND_HELLO #3 got no answer after
2 s"), and again if its answer comes late.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from firmware import wire

STALL_FACTOR = 3.0
STALL_FLOOR_S = 2.0
ACK_TIMEOUT_S = 2.0
_MAX_PENDING = 256
_QUIET_OPS = {wire.OP_STOP: True, wire.OP_REPL: True, wire.OP_START: False}


@dataclass(slots=True)
class SentCommand:
    token: int
    name: str        # "SEND_HELLO #3"
    opcode: int
    sent_at: float
    reported: bool = False


class Liveness:
    """Args:
        log: called with (host time, text) for every state change worth a log line.
        factor, floor_s: the stall threshold (module docstring).
        ack_timeout_s: how long a command may wait for its ACK/NACK.
    """

    def __init__(self, log: Callable[[float, str], None], *, factor: float = STALL_FACTOR,
                 floor_s: float = STALL_FLOOR_S, ack_timeout_s: float = ACK_TIMEOUT_S) -> None:
        self._log = log
        self.factor = factor
        self.floor_s = floor_s
        self.ack_timeout_s = ack_timeout_s
        self.longest_batch_s: float | None = None   # from the last HELLO
        self.last_frame: float | None = None
        self.stalled_since: float | None = None     # start of the silence, while stalled
        self.stalls = 0
        self.quiet = False                          # the host asked for silence (STOP, REPL)
        self.link_down = False
        self.unanswered: list[SentCommand] = []     # reported, still without an answer
        self.unanswered_total = 0
        self._pending: dict[int, SentCommand] = {}
        self._since: float | None = None            # when the silence being judged began

    # -- inputs
    def started(self, t: float) -> None:
        """The link is open: the silence is measured from here until the first frame."""
        self._since = t

    def streams(self, infos: Iterable) -> None:
        """The streams a HELLO announced (`period_us`, `batch` each)."""
        periods = [i.period_us * max(1, i.batch) / 1e6 for i in infos if i.period_us]
        self.longest_batch_s = max(periods) if periods else None

    def frame(self, t: float) -> None:
        """Any intact frame arrived at host time t."""
        self.last_frame = self._since = t
        if self.stalled_since is not None:
            self._log(t, f"frames again after {t - self.stalled_since:.1f} s of silence")
            self.stalled_since = None

    def sent(self, token: int, opcode: int, t: float) -> None:
        name = f"{wire.OPCODE_NAMES.get(opcode, str(opcode))} #{token}"
        self._pending[token] = SentCommand(token, name, opcode, t)
        if len(self._pending) > _MAX_PENDING:  # a board that never answers: keep the newest
            old = self._pending.pop(next(iter(self._pending)))
            if old.reported:
                self.unanswered.remove(old)

    def answered(self, token: int, ok: bool, t: float) -> None:
        """An ACK (ok) or NACK quoting `token` arrived."""
        cmd = self._pending.pop(token, None)
        if cmd is None:
            return
        if cmd.reported:
            self.unanswered.remove(cmd)
            self._log(t, f"{cmd.name} answered late, after {t - cmd.sent_at:.1f} s")
        if ok and cmd.opcode in _QUIET_OPS:
            self.quiet = _QUIET_OPS[cmd.opcode]
            self._since = t

    def link(self, up: bool, t: float) -> None:
        """The port went away (up=False) or came back."""
        self.link_down = not up
        self._since = t
        if not up:
            self.stalled_since = None

    # -- judgement
    @property
    def threshold_s(self) -> float:
        if self.longest_batch_s is None:
            return self.floor_s
        return max(self.floor_s, self.factor * self.longest_batch_s)

    @property
    def stalled(self) -> bool:
        return self.stalled_since is not None

    def check(self, now: float) -> None:
        """Judge the silence and the pending commands at host time `now`; log what changed."""
        if (self.stalled_since is None and self._since is not None and not self.quiet
                and not self.link_down and now - self._since >= self.threshold_s):
            self.stalled_since = self._since
            self.stalls += 1
            self._log(now, f"STALLED: no frame for {now - self._since:.1f} s "
                           f"(expected one at least every {self.threshold_s:.1f} s)")
        for cmd in self._pending.values():
            if not cmd.reported and now - cmd.sent_at >= self.ack_timeout_s:
                cmd.reported = True
                self.unanswered.append(cmd)
                self.unanswered_total += 1
                self._log(now, f"{cmd.name} got no answer after {self.ack_timeout_s:g} s")

    def state(self, now: float) -> str:
        """One line for a view: "ok", "STALLED for 6.2 s", "stopped", "port gone"."""
        if self.link_down:
            return "port gone"
        if self.stalled_since is not None:
            return f"STALLED for {now - self.stalled_since:.1f} s"
        return "stopped" if self.quiet else "ok"
