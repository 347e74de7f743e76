"""The live monitor's terminal UI (textual; plain terminal, works over SSH).

Panels: streams (latest value with unit, rate in Hz, sparkline per channel), link (bytes/s and share
of the line rate, frames/s, CRC/framing errors, gaps, device drops, reconciliation), device (uptime,
free heap, loop overruns, reset cause, board, firmware) and the event log (device events, device text,
link events, commands sent, ACK/NACK).

Keys: s start/stop streaming, r change a stream's rate (prompt), m request metadata, b reboot (press
twice), a start the app of a board found at its REPL (soft reset), ? help, Ctrl-C quit (as in
pio device monitor; also q, and miniterm's Ctrl-]). The app only reads the `Session` and calls the
feed's command methods; everything else lives in `host.monitoring.feeds` and `host.monitoring.session`,
what the panels show in `host.monitoring.panels`, the rate prompt and help in `host.monitoring.dialogs`.
"""
from __future__ import annotations

import time

from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Header, RichLog, Static

from host.monitoring.dialogs import HelpScreen, RatePrompt, parse_rate
from host.monitoring.feeds import board_line_rate
from host.monitoring.panels import RISING_S, device_text, link_text, streams_table
from host.monitoring.session import Session

REFRESH_S = 0.25
REBOOT_CONFIRM_S = 3.0
TOP_SHARE = 0.75       # the panels take at most this share of the rows between header and footer


class Panel(Static):
    """A side panel: its text wraps, so a new width (the terminal resized) changes the rows it needs
    and the panels' row is fitted again at once, not at the next tick."""

    def on_resize(self) -> None:
        if isinstance(self.app, MonitorApp):
            self.app.call_after_refresh(self.app.tick)


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
                yield Panel(id="link")
                yield Panel(id="device")
        yield RichLog(id="log", wrap=True, markup=False, max_lines=2000)
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = self.source
        # kept, not queried per tick: a modal prompt on top must not hide them from tick()
        self._streams = self.query_one("#streams", Static)
        self._link = self.query_one("#link", Static)
        self._device = self.query_one("#device", Static)
        self._log = self.query_one("#log", RichLog)
        self._top = self.query_one("#top", Horizontal)
        self._bars = (self.query_one(Header), self.query_one(Footer))
        self._top_rows = 0
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
        left = self._show(self._streams, table, table.row_count + 1 if isinstance(table, Table) else None)
        link = getattr(self.feed, "link", None)
        connected = getattr(link, "connected", None) if link is not None else None
        right = self._show(self._link, link_text(self.session, self.source, connected, now))
        right += self._show(self._device, device_text(self.session, getattr(self.feed, "liveness", None), now,
                                                      self._overruns_rising()))
        self._fit_top(left, right)
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
    def _show(panel: Static, content: Table | Text, lines: int | None = None) -> int:
        """Update a panel, asking for a layout pass (all of the screen: at 1 MB/s the costly part
        of a tick) only when the panel's height changes (HELLO adds streams, a line wraps).
        `lines`: the content's height if known (streams_table never wraps a cell); else measured.
        Returns the rows the panel needs with its border (0 before its first layout: no width yet)."""
        panel.update(content, layout=False)
        size = panel.content_size
        if not size.width:
            panel.refresh(layout=True)
            return 0
        if lines is None:
            lines = panel.get_content_height(size, size, size.width)  # a few lines of text: cheap
        if lines != size.height:
            panel.refresh(layout=True)
        return lines + panel.styles.gutter.height

    def _fit_top(self, left: int, right: int) -> None:
        """The panels' row exactly as tall as its taller column (`left`, `right`: rows needed), at
        most TOP_SHARE of the rows between header and footer; the log takes every row left.  Set
        here, not by `height: auto`: textual measured the side column at another width than it
        draws it, and the row came out taller than both columns (blank rows above the log)."""
        if not (left and right):
            return
        bars = sum(bar.outer_size.height for bar in self._bars)
        rows = min(max(left, right), int((self.screen.size.height - bars) * TOP_SHARE))
        if rows != self._top_rows:
            self._top_rows = rows
            self._top.styles.height = rows


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
