"""What the live monitor's panels show, as rich renderables built from a `Session`: the streams
table (value with the unit people read, rate, sparkline per channel), the link panel and the device
panel.  Plain functions of the session and the time, apart from the textual app
(`host.monitoring.screen`) so they are tested, and reused, without a terminal."""
from __future__ import annotations

import math

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from host.monitoring.liveness import Liveness
from host.monitoring.session import Session
from host.monitoring.state import StreamState

SPARK = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 24
RISING_S = 10.0        # a counter that moved within this long is shown as a warning
# units people read, with sensible precision: (unit shown, factor from the session's unit, format)
DISPLAY_UNITS = {"Pa": ("hPa", 0.01, "{:.2f}")}


def sparkline(values, width: int = SPARK_WIDTH) -> str:
    """Block-character sparkline of the last `width` values (NaN drawn as a space)."""
    vals = list(values)[-width:]
    good = [v for v in vals if not math.isnan(v)]
    if not good:
        return " " * len(vals)
    lo, hi = min(good), max(good)
    span = hi - lo
    out = []
    for v in vals:
        if math.isnan(v):
            out.append(" ")
        elif span <= 0:
            out.append(SPARK[len(SPARK) // 2])
        else:
            out.append(SPARK[min(len(SPARK) - 1, int((v - lo) / span * len(SPARK)))])
    return "".join(out)


def display(v: float, unit: str) -> tuple[str, str]:
    """(value text, unit) as people read them: pressure in hPa with two decimals, not 1.003e+05 Pa."""
    shown = DISPLAY_UNITS.get(unit)
    if shown is None or math.isnan(v):
        return fmt_value(v), unit
    return shown[2].format(v * shown[1]), shown[0]


def fmt_value(v: float) -> str:
    if math.isnan(v):
        return "-"
    a = abs(v)
    if a != 0 and (a >= 1e5 or a < 1e-3):
        return f"{v:.4g}"
    return f"{v:.4f}" if a < 10 else f"{v:.2f}"


def fmt_bytes(n: float) -> str:
    """SI sizes as rich writes them (999 bytes, 3.9 kB, 1.5 MB)."""
    from rich.filesize import decimal

    return decimal(max(0, round(n)), precision=1)


def streams_table(session: Session, now: float) -> Table | Text:
    """One row per channel, one line per row (cells never wrap), so its height is known."""
    if not session.streams:
        return Text("(no streams yet: waiting for HELLO; press m to ask)")
    t = Table(expand=True, box=None, pad_edge=False, show_edge=False)
    t.add_column("stream", no_wrap=True)
    t.add_column("channel", no_wrap=True)
    t.add_column("value", justify="right", no_wrap=True)
    t.add_column("unit", no_wrap=True)
    t.add_column("Hz", justify="right", no_wrap=True)
    t.add_column("history", no_wrap=True)
    for st in session.streams.values():
        _stream_rows(t, st, now)
    return t


def _stream_rows(t: Table, st: StreamState, now: float) -> None:
    state = "" if st.online is None else ("" if st.online else " [red](offline)[/]")
    hz = st.rate_hz(now)
    rate = "…" if math.isnan(hz) else f"{hz:.0f}"
    for k, ch in enumerate(st.channels):
        first = k == 0
        value, unit = display(ch.latest, ch.unit)
        t.add_row(f"[b]{st.name}[/]{state}" if first else "", ch.name, value, unit,
                  rate if first else "", sparkline(ch.history))


def link_text(session: Session, path: str, connected: bool | None, now: float) -> Text:
    st = session.stats
    share = session.line_share(now)
    share_s = f" ({share * 100:.1f}% of line)" if share is not None else ""
    verdict, why = session.reconciliation()
    color = {"ok": "green", "fail": "red"}.get(verdict, "yellow")
    gaps = sum(st.missing_by_stream.values())
    drops = session.ledger.device_frames_dropped()  # the one drop figure, in every panel
    state = "" if connected is None else ("connected" if connected else "[red]DISCONNECTED[/]")
    lines = [
        f"[b]link[/] {path} {state}",
        f"{fmt_bytes(session.bytes_per_s(now))}/s{share_s}  {session.frames_per_s(now):.0f} frames/s",
        f"bytes {st.bytes}  frames {st.frames_ok}",
        f"CRC errors {st.crc_errors}  framing errors {st.framing_errors}",
        f"gaps {gaps}  device drops {drops}  duplicates {st.duplicates}",
        f"reconciliation [{color}]{verdict}[/]",
        f"  {escape(why[0])}",
    ]
    if verdict == "fail":
        lines += [f"  {escape(w)}" for w in why[1:4]]
    return Text.from_markup("\n".join(lines))


def device_text(session: Session, liveness: Liveness | None = None, now: float = 0.0,
                overruns_rising: int = 0) -> Text:
    """The device panel; with a live feed's `liveness`, a first line saying whether the board
    still talks (STALLED in red) and which commands it left unanswered. `overruns_rising`: how much
    the loop overruns climbed lately (shown in red: the loop misses its deadlines)."""
    d = session.device

    def v(x, fmt="{}"):
        return "?" if x is None else fmt.format(x)

    uptime = "?" if d.uptime_ms is None else f"{d.uptime_ms / 1000:.1f} s"
    lines = [
        f"[b]device[/] {d.board or '?'}  fw {d.fw or '?'}",
        f"boot id {v(d.boot_id, '{:08x}')}  uptime {uptime}",
        f"free heap {v(d.free_heap)} B  " + (f"[b red]loop overruns {d.loop_overruns} (+{overruns_rising} "
                                             f"in {RISING_S:g} s: the loop misses its deadlines)[/]"
                                             if overruns_rising else f"loop overruns {v(d.loop_overruns)}"),
        f"reset cause {d.reset_cause or '?'}  frames sent {v(d.frames_sent)} "
        f"dropped {session.ledger.device_frames_dropped()}",
    ]
    if liveness is not None:
        state = liveness.state(now)
        color = "green" if state == "ok" else ("red" if liveness.stalled else "yellow")
        lines.insert(1, f"board [{color}]{state}[/]")
        if liveness.unanswered:
            names = ", ".join(c.name for c in liveness.unanswered[-3:])
            lines.insert(2, f"[yellow]no answer to {names}[/]")
    return Text.from_markup("\n".join(lines))
