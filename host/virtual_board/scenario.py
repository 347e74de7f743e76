"""Seeded fault scenarios: a TOML file that says what goes wrong, and when, so a run replays exactly.

    seed = 7
    [[event]]
    at = 2.0                 # seconds after the scenario starts
    action = "unplug"        # any call of the fault API (see host/vboard/control.py ALLOWED)
    args = ["bme280"]

    [random]                 # optional: more events drawn from `seed`, expanded before the run
    count = 10
    span = 60.0              # spread over this many seconds
    duration = [0.5, 3.0]    # each fault lasts this long, then is undone
    kinds = ["unplug", "nack", "stuck", "bit_errors", "backpressure", "freeze"]
"""
from __future__ import annotations

import random
import threading
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from host.virtual_board.control import ALLOWED

#: random fault kind -> (action, args, undo action, undo args)
_RANDOM_KINDS = {
    "unplug": lambda r, chip: (("unplug", [chip]), ("replug", [chip])),
    "nack": lambda r, chip: (("set_nack_rate", [chip, round(r.uniform(0.05, 0.5), 3)]), ("set_nack_rate", [chip, 0.0])),
    "stuck": lambda r, chip: (("set_bus_stuck", [True]), ("set_bus_stuck", [False])),
    "freeze": lambda r, chip: (("freeze", [chip, True]), ("freeze", [chip, False])),
    "bit_errors": lambda r, chip: (("set_bit_error_rate", [round(r.uniform(1e-5, 1e-3), 6)]), ("set_bit_error_rate", [0.0])),
    "drop_bytes": lambda r, chip: (("set_drop_rate", [round(r.uniform(1e-5, 1e-3), 6)]), ("set_drop_rate", [0.0])),
    "backpressure": lambda r, chip: (("set_backpressure", [True]), ("set_backpressure", [False])),
}
_CHIPS = ["bme280", "mpu6050", "sht31"]


class ScenarioError(ValueError):
    """The scenario file is not valid; the message names the file and the problem."""


@dataclass(frozen=True)
class Event:
    at: float
    action: str
    args: tuple


def load(path: str | Path) -> list[Event]:
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ScenarioError(f"{path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: {exc}") from None
    return expand(doc, str(path))


def expand(doc: dict, where: str = "scenario") -> list[Event]:
    seed = doc.get("seed", 0)
    if not isinstance(seed, int):
        raise ScenarioError(f"{where}: seed must be an integer")
    events = []
    for i, e in enumerate(doc.get("event", [])):
        try:
            at, action, args = float(e["at"]), e["action"], tuple(e.get("args", []))
        except (KeyError, TypeError, ValueError):
            raise ScenarioError(f"{where}: event {i + 1} needs `at` (seconds) and `action`") from None
        if action not in ALLOWED:
            raise ScenarioError(f"{where}: event {i + 1}: unknown action {action!r}")
        events.append(Event(at, action, args))
    rnd = doc.get("random")
    if rnd:
        r = random.Random(seed)
        kinds = rnd.get("kinds", list(_RANDOM_KINDS))
        bad = [k for k in kinds if k not in _RANDOM_KINDS]
        if bad:
            raise ScenarioError(f"{where}: unknown random fault kinds {bad}; known: {sorted(_RANDOM_KINDS)}")
        lo, hi = rnd.get("duration", [0.5, 3.0])
        span = float(rnd.get("span", 60.0))
        for _ in range(int(rnd.get("count", 10))):
            start = r.uniform(0, span)
            (a, aa), (u, ua) = _RANDOM_KINDS[r.choice(kinds)](r, r.choice(_CHIPS))
            events.append(Event(start, a, tuple(aa)))
            events.append(Event(start + r.uniform(lo, hi), u, tuple(ua)))
    return sorted(events, key=lambda e: e.at)


class ScenarioRunner:
    """Applies events to a board (anything with the fault API) at their times, in a thread."""

    def __init__(self, board, events: list[Event], log=None):
        self.board, self.events, self.log = board, events, log
        self.applied: list[Event] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vboard-scenario", daemon=True)

    def start(self) -> "ScenarioRunner":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def _run(self) -> None:
        t0 = time.monotonic()
        for e in self.events:
            if self._stop.wait(max(0.0, t0 + e.at - time.monotonic())):
                return
            getattr(self.board, e.action)(*e.args)
            self.applied.append(e)
            if self.log:
                self.log(f"scenario t={e.at:.2f}s {e.action}{tuple(e.args)}")
