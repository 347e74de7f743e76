"""Link statistics of HIL tests, carried from xdist workers to the terminal summary.

Each test that used the `board` fixture attaches one `hil_link` user property (JSON) to its
teardown report; JUnit XML records it as a <property>, and `pytest_terminal_summary` prints a
table with a total, on the controller as well as in a plain run.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

PROPERTY = "hil_link"
COLUMNS = ("frames_ok", "crc_errors", "framing_errors", "invalid_frames", "host_gaps", "device_dropped")


@dataclass
class LinkSummary:
    rows: dict[str, dict] = field(default_factory=dict)

    def add(self, nodeid: str, user_properties) -> None:
        for name, value in user_properties:
            if name == PROPERTY:
                try:
                    self.rows[nodeid] = json.loads(value)
                except (TypeError, ValueError):
                    pass

    def lines(self) -> list[str]:
        if not self.rows:
            return []
        short = {n: n.split("::", 1)[-1] for n in self.rows}
        boards = {n: str(r.get("board") or "?") for n, r in self.rows.items()}
        w = max(24, *(len(s) for s in short.values()))
        bw = max(5, *(len(b) for b in boards.values()))
        head = (f"{'test':<{w}} {'board':<{bw}} {'frames':>8} {'crc':>5} {'framing':>7} {'invalid':>7} {'gaps':>6} "
                f"{'dev.drop':>8}  reconciled (exact: gaps = device drops; link: rest = corrupt segments)")
        out = [head]
        tot = dict.fromkeys(COLUMNS, 0)
        unbalanced = 0
        for nodeid in sorted(self.rows):
            r = self.rows[nodeid]
            for k in COLUMNS:
                tot[k] += int(r.get(k) or 0)
            verdict = r.get("reconciled") or "n/a"
            unbalanced += verdict == "NO"
            out.append(f"{short[nodeid]:<{w}} {boards[nodeid]:<{bw}} {r.get('frames_ok', 0):>8} "
                       f"{r.get('crc_errors', 0):>5} {r.get('framing_errors', 0):>7} {r.get('invalid_frames', 0):>7} "
                       f"{r.get('host_gaps', 0):>6} {r.get('device_dropped', 0):>8}  {verdict}")
        out.append(f"{'total (' + str(len(self.rows)) + ' tests)':<{w}} {'':<{bw}} {tot['frames_ok']:>8} "
                   f"{tot['crc_errors']:>5} {tot['framing_errors']:>7} {tot['invalid_frames']:>7} "
                   f"{tot['host_gaps']:>6} {tot['device_dropped']:>8}  "
                   f"{'all' if not unbalanced else str(unbalanced) + ' NOT'} reconciled")
        per_board = Counter(boards.values())
        out.append(f"boards: {len(per_board)} (" + ", ".join(f"{b}: {n} tests" for b, n in sorted(per_board.items()))
                   + ")")
        return out
