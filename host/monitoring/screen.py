"""The live monitor's terminal UI (textual; plain terminal, works over SSH).

Panels: streams (latest value with unit, rate in Hz, sparkline per channel), link (bytes/s and share
of the line rate, frames/s, CRC/framing errors, gaps, device drops, reconciliation), device (uptime,
free heap, loop overruns, reset cause, board, firmware) and the event log (device events, device text,
link events, commands sent, ACK/NACK).

Keys: s start/stop streaming, r change a stream's rate (prompt), m request metadata, b reboot (press
twice), a start the app of a board found at its REPL (soft reset), ? help, Ctrl-C quit (as in
pio device monitor; also q, and miniterm's Ctrl-]). The app only reads the `Session` and calls the feed's command methods; everything else
lives in `host.monitoring.feeds` and `host.monitoring.session`.
"""
from __future__ import annotations

import math
import time

from rich.markup import escape
from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Header, Input, Label, RichLog, Static

from host.monitoring.feeds import board_line_rate
from host.monitoring.liveness import Liveness
from host.monitoring.session import Session
from host.monitoring.state import StreamState

SPARK = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 24
REFRESH_S = 0.25
REBOOT_CONFIRM_S = 3.0
RISING_S = 10.0        # a counter that moved within this long is shown as a warning
# units people read, with sensible precision: (unit shown, factor from the session's unit, format)
DISPLAY_UNITS = {"Pa": ("hPa", 0.01, "{:.2f}")}
HELP = """\
s   stop / start streaming          a   start the app (board at its REPL: soft reset)
r   set a stream's rate (Hz)        ?   this help
m   ask for metadata (HELLO)        Ctrl-C, q, Ctrl-]   quit
b   reboot the board (press twice)

link: bytes/s and % of the line rate (board definition, or --line-rate); drops are the sample
ledger's (frames the device dropped); yellow/red: a counter that moved in the last 10 s."""


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


class RatePrompt(ModalScreen[str]):
    """Asks for 'STREAM HZ' (stream by name or id)."""

    BINDINGS = [Binding("escape", "cancel", "cancel")]
    DEFAULT_CSS = """
    RatePrompt { align: center middle; }
    RatePrompt > Vertical { width: 60; height: auto; border: round $accent; padding: 1 2; background: $panel; }
    """

    def __init__(self, hint: str) -> None:
        super().__init__()
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"New rate: STREAM HZ   (streams: {self.hint})")
            inp = Input(placeholder="imu 200", id="rate-input")
            inp.cursor_blink = False  # steady cursor: calmer over SSH
            yield inp

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss("")


class HelpScreen(ModalScreen[None]):
    """The key map and what the panels mean; any key closes it."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Static { width: auto; height: auto; border: round $accent; padding: 1 2; background: $panel; }
    """

    def compose(self) -> ComposeResult:
        yield Static(HELP, id="help-text")

    def on_key(self, event) -> None:
        event.stop()
        self.dismiss(None)


class MonitorApp(App):
    """The live (or replay) monitor. `feed` is a host.monitoring.feeds.LiveFeed or ReplayFeed."""

    TITLE = "pagerless monitor"
    CSS = """
    #top { height: auto; max-height: 75%; }
    #streams { width: 2fr; height: auto; max-height: 100%; border: round $primary; padding: 0 1; }
    #side { width: 1fr; height: auto; overflow: hidden hidden; }
    #link, #device { border: round $primary; padding: 0 1; height: auto; }
    #log { height: 1fr; border: round $primary; }
    """
    BINDINGS = [
        Binding("s", "toggle_streaming", "start/stop"),
        Binding("r", "rate", "rate"),
        Binding("m", "metadata", "metadata"),
        Binding("b", "reboot", "reboot"),
        Binding("a", "start_app", "start app"),
        Binding("question_mark", "help", "help", key_display="?"),
        Binding("ctrl+c", "quit", "quit", priority=True, key_display="^c"),
        Binding("q", "quit", "quit", show=False),
        Binding("ctrl+right_square_bracket", "quit", "quit", show=False, priority=True),
    ]

    def __init__(self, feed, source: str, *, duration: float | None = None,
                 refresh_s: float = REFRESH_S) -> None:
        super().__init__()
        self.feed = feed
        self.source = source
        self.session: Session = feed.session
        self.duration = duration
        self.refresh_s = refresh_s
        self.streaming = True
        self._log_seen = 0
        self._reboot_armed = 0.0
        self._t_start = time.monotonic()
        self.failure: BaseException | None = None
        self._rate_board: str | None = None   # the board whose line rate was looked up
        self._overruns: list[tuple[float, int]] = []  # (monotonic time, loop overruns) of the last RISING_S

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="top"):
            yield Static(id="streams")
            with Vertical(id="side"):
                yield Static(id="link")
                yield Static(id="device")
        yield RichLog(id="log", wrap=True, markup=False, max_lines=2000)
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = self.source
        # kept, not queried per tick: a modal prompt on top must not hide them from tick()
        self._streams = self.query_one("#streams", Static)
        self._link = self.query_one("#link", Static)
        self._device = self.query_one("#device", Static)
        self._log = self.query_one("#log", RichLog)
        self.tick()
        self.set_interval(self.refresh_s, self.tick)

    def tick(self) -> None:
        try:
            self.feed.poll()
        except Exception as e:  # the feed's thread died: leave the UI with the reason
            self.failure = e
            self.exit(1)
            return
        now = self.session.now if not getattr(self.feed, "live", False) else time.time()
        self._follow_port()
        board = self.session.device.board
        if self.session.line_rate is None and board and board != self._rate_board:
            self._rate_board = board  # looked up once per board, live or replay
            self.session.line_rate = board_line_rate(board)
        table = streams_table(self.session, now)
        self._show(self._streams, table, table.row_count + 1 if isinstance(table, Table) else None)
        link = getattr(self.feed, "link", None)
        connected = getattr(link, "connected", None) if link is not None else None
        self._show(self._link, link_text(self.session, self.source, connected, now))
        self._show(self._device, device_text(self.session, getattr(self.feed, "liveness", None), now,
                                             self._overruns_rising()))
        log = self._log
        for line in self.session.log_since(self._log_seen):
            stamp = time.strftime("%H:%M:%S", time.localtime(line.t))
            log.write(f"{stamp} [{line.source}] {line.text}")
        self._log_seen = self.session.log_count
        if self.duration is not None and time.monotonic() - self._t_start >= self.duration:
            self.exit(0)

    def _follow_port(self) -> None:
        """After a reconnect the board may be on another port (a new ttyACM number, a new pty):
        the title and the link panel name the one in use."""
        link = getattr(self.feed, "link", None)
        path = getattr(link, "path", None)
        if not isinstance(path, str):
            return
        old = getattr(self, "_port", None)
        if old is None:
            self._port = path
        elif path != old:
            self.source = self.source.replace(old, path) if old in self.source else path
            self._port = path
            self.sub_title = self.source

    def _overruns_rising(self) -> int:
        """How much the loop overruns climbed over the last RISING_S (0: steady)."""
        n = self.session.device.loop_overruns
        t = time.monotonic()
        if n is None:
            return 0
        hist = self._overruns
        if not hist or hist[-1][1] != n:
            hist.append((t, n))
        while len(hist) > 1 and hist[1][0] <= t - RISING_S:
            hist.pop(0)
        base = hist[0][1] if hist[0][0] <= t - RISING_S or len(hist) > 1 else n
        return max(0, n - base)

    @staticmethod
    def _show(panel: Static, content: Table | Text, lines: int | None = None) -> None:
        """Update a panel, asking for a layout pass (all of the screen: at 1 MB/s the costly part
        of a tick) only when the panel's height changes (HELLO adds streams, a line wraps).
        `lines`: the content's height if known (streams_table never wraps a cell); else measured."""
        panel.update(content, layout=False)
        size = panel.content_size
        if lines is None:
            lines = panel.get_content_height(size, size, size.width)  # a few lines of text: cheap
        if lines != size.height:
            panel.refresh(layout=True)

    # -- keys
    def action_toggle_streaming(self) -> None:
        if self.streaming:
            ok = self.feed.stop()
        else:
            ok = self.feed.start()
        if ok:
            self.streaming = not self.streaming
        self.tick()

    def action_start_app(self) -> None:
        start = getattr(self.feed, "start_app", None)
        if start is None:
            self.notify("a replay has no board to start")
            return
        start()
        self.tick()

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_metadata(self) -> None:
        self.feed.request_hello()
        self.tick()

    def action_reboot(self) -> None:
        now = time.monotonic()
        if now - self._reboot_armed > REBOOT_CONFIRM_S:
            self._reboot_armed = now
            self.notify("press b again to reboot the board")
            return
        self._reboot_armed = 0.0
        self.feed.reboot()
        self.tick()

    def action_rate(self) -> None:
        hint = ", ".join(f"{s.name}={s.nominal_hz:g} Hz" for s in self.session.streams.values()) or "none yet"
        self.push_screen(RatePrompt(hint), self._rate_entered)

    def _rate_entered(self, value: str | None) -> None:
        if not value:
            return
        try:
            sid, period_us = parse_rate(value, self.session)
        except ValueError as e:
            self.notify(str(e), severity="error")
            return
        self.feed.set_period(sid, period_us)
        self.tick()


def parse_rate(value: str, session: Session) -> tuple[int, int]:
    """'imu 200' / '0 200' / 'imu 200hz' -> (stream id, period_us)."""
    parts = value.replace("=", " ").split()
    if len(parts) != 2:
        raise ValueError("enter a stream and a rate in Hz, e.g. 'imu 200'")
    name, hz_s = parts
    sid = None
    for st in session.streams.values():
        if st.name == name:
            sid = st.id
    if sid is None:
        if not name.isdigit():
            raise ValueError(f"no stream named {name!r}")
        sid = int(name)
    try:
        hz = float(hz_s.lower().removesuffix("hz"))
    except ValueError:
        raise ValueError(f"{hz_s!r} is not a rate in Hz") from None
    if not 0 < hz <= 1e6:
        raise ValueError("rate must be between 0 and 1 MHz")
    return sid, max(1, round(1e6 / hz))
