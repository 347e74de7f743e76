"""The live monitor's modal dialogs: the rate prompt (and the parsing of what is typed into it)
and the help overlay with the key map."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from host.monitoring.session import Session

HELP = """\
s   stop / start streaming          a   start the app (board at its REPL: soft reset)
r   set a stream's rate (Hz)        ?   this help
m   ask for metadata (HELLO)        Ctrl-C, q, Ctrl-]   quit
b   reboot the board (press twice)

link: bytes/s and % of the line rate (board definition, or --line-rate); drops are the sample
ledger's (frames the device dropped); yellow/red: a counter that moved in the last 10 s."""


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
