"""`fleet status DIR`: one line per board from what the collector last wrote (OUT/_ledger/*.json).

A board is online when the collector saw it within the last few seconds *and* the collector
itself wrote recently; a collector that stopped writing makes every line "stale", since what it
last knew is not the board's state now.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from host.fleet.hop import ACTIVE_S
from host.fleet.topics import FleetError

STALE_S = 10.0


def read_boards(out: str | Path) -> tuple[dict, list[dict]]:
    """(the collector's state, each board's ledger state), as the collector last wrote them."""
    d = Path(out)
    try:
        state = json.loads((d / "_collector.json").read_text())
    except FileNotFoundError:
        raise FleetError(f"{d}: no collector output here (no _collector.json)") from None
    except (OSError, ValueError) as e:
        raise FleetError(f"{d}/_collector.json: unreadable ({e})") from None
    boards = []
    for p in sorted((d / "_ledger").glob("*.json")):
        try:
            boards.append(json.loads(p.read_text()))
        except (OSError, ValueError):
            boards.append({"board": p.stem, "verdict": "unreadable"})
    return state, boards


def line(b: dict, now: float) -> str:
    """'usb-E661  online   320.0 samples/s  9.9 msg/s  ledger ok: produced 9600, stored 9500, ...'"""
    written = b.get("written") or 0
    if now - written > STALE_S:
        where = "stale"
    else:
        where = "online" if b.get("online") else "offline"
    host, hop, col = b.get("host") or {}, b.get("hop") or {}, b.get("collector") or {}
    parts = [f"produced {host.get('produced', 0)}", f"stored {col.get('stored', 0)}"]
    for k in ("lost_before_broker", "lost_broker", "unexplained"):
        v = hop.get(k, 0) if k != "unexplained" else b.get("unexplained", 0)
        if v or k == "unexplained":
            parts.append(f"{k} {v}")
    if col.get("lost_collector"):
        parts.append(f"lost_collector {col['lost_collector']}")
    extra = ""
    if b.get("conflicts"):
        extra = f"  ({b.get('publishers')} publishers under this identity)"
    return (f"{b.get('board', '?'):<24} {where:<7} {b.get('samples_per_s', 0):>9.1f} samples/s "
            f"{b.get('messages_per_s', 0):>6.1f} msg/s  ledger {b.get('verdict', '?')}: " + ", ".join(parts) + extra)


def status_lines(out: str | Path, now: float | None = None) -> list[str]:
    now = time.time() if now is None else now
    state, boards = read_boards(out)
    head = (f"collector {state.get('run')} on {state.get('broker')}: {state.get('messages', 0)} messages, "
            f"{sum((state.get('rejects') or {}).values())} rejected"
            + ("" if now - (state.get("written") or 0) <= STALE_S else
               f", last wrote {now - (state.get('written') or 0):.0f} s ago"))
    return [head] + [line(b, now) for b in boards] if boards else [head, "no boards yet"]


__all__ = ["read_boards", "line", "status_lines", "ACTIVE_S"]
