"""The monitor TUI, headless (textual's run_test pilot): fed from a replayed recording, and a fake link
to check that keys send the right command bytes."""
from __future__ import annotations

import asyncio
import struct

import pytest

from fake_links import FakeLink
from firmware import wire
from host.testkit import synthetic
from host.protocol.decoder import Decoder
from host.device.link import LinkEvent
from host.monitoring.feeds import LiveFeed, ReplayFeed
from host.device.recording import Kind, Record
from host.monitoring.session import Session
from host.monitoring.dialogs import parse_rate
from host.monitoring.panels import sparkline
from host.monitoring.screen import MonitorApp

T0 = 1_700_000_000.0


def _screen_text(app: MonitorApp) -> str:
    """The screen as plain text, one line per terminal row (what a user sees)."""
    update = app.screen._compositor.render_full_update(simplify=True)
    return "\n".join("".join(strip.text for strip in row) for row in update.strips)


def _records(data: bytes, chunk: int = 101) -> list[Record]:
    recs = [Record(Kind.RX, int((T0 + i / 1e5) * 1e9), data[i:i + chunk], 0) for i in range(0, len(data), chunk)]
    recs.insert(3, Record(Kind.LINK, recs[2].t_ns + 1, b'{"event": "disconnected", "detail": "unplugged"}', 0))
    return recs


def test_tui_replay_shows_streams_units_link_and_device() -> None:
    data = synthetic.boot_stream(n_imu=20, skip_seqs=(5,))
    session = Session(line_rate=1_000_000)
    feed = ReplayFeed(_records(data), session, speed=0)

    async def run() -> str:
        app = MonitorApp(feed, "replay test.pglrec", refresh_s=0.05)
        async with app.run_test(size=(180, 60)) as pilot:
            for _ in range(20):
                await pilot.pause(0.05)
                if feed.finished:
                    break
            await pilot.pause(0.1)
            return _screen_text(app)

    text = asyncio.run(run())
    # streams with values and units
    assert "imu" in text and "a0" in text
    assert "accel_z_g" in text and "1.0000" in text and "deg/s" in text and "degC" in text
    assert "voltage_v" in text and " V " in text
    # link panel
    assert "CRC errors 0" in text and "framing errors 0" in text
    assert "gaps 1" in text and "device drops 1" in text and "reconciliation ok" in text
    # device panel
    assert "synthetic" in text and "0.0-test" in text and "free heap 123456" in text
    assert "loop overruns 2" in text and "power-on" in text and "uptime 5.0 s" in text
    # event log: device text, device event, link event
    assert "MicroPython v1.29" in text and "BOOT" in text and "disconnected" in text


def _commands(written: list[bytes]) -> list[tuple[int, int, bytes]]:
    out = []
    for w in written:
        for f in Decoder().feed(w):
            c = f.command()
            out.append((c.opcode, c.stream, c.args))
    return out


def test_tui_keys_send_command_frames() -> None:
    link = FakeLink(synthetic.boot_stream(n_imu=4))
    session = Session()
    feed = LiveFeed(link, session)

    async def run() -> None:
        app = MonitorApp(feed, "fake", refresh_s=0.2)
        feed.start_reader()
        try:
            async with app.run_test(size=(160, 50)) as pilot:
                for _ in range(40):
                    await pilot.pause(0.05)
                    if "imu" in {s.name for s in session.streams.values()}:
                        break
                assert _commands(link.written) == [(wire.OP_SEND_HELLO, wire.ALL_STREAMS, b"")]
                await pilot.press("s")
                await pilot.press("s")
                await pilot.press("m")
                await pilot.press("r")
                await pilot.pause(0.1)
                await pilot.press(*"imu 200")
                await pilot.press("enter")
                await pilot.pause(0.1)
                await pilot.press("b")  # arms only
                n_before_reboot = len(link.written)
                await pilot.press("b")
                await pilot.pause(0.1)
                assert len(link.written) == n_before_reboot + 1
                assert "sent STOP" in _screen_text(app)
        finally:
            feed.close()

    asyncio.run(run())
    cmds = _commands(link.written)
    assert cmds == [
        (wire.OP_SEND_HELLO, wire.ALL_STREAMS, b""),
        (wire.OP_STOP, wire.ALL_STREAMS, b""),
        (wire.OP_START, wire.ALL_STREAMS, b""),
        (wire.OP_SEND_HELLO, wire.ALL_STREAMS, b""),
        (wire.OP_SET_PERIOD, 0, struct.pack("<I", 5000)),
        (wire.OP_REBOOT, wire.ALL_STREAMS, b""),
    ]
    tokens = [f.seq for w in link.written for f in Decoder().feed(w)]
    assert tokens == sorted(set(tokens))  # each command has its own token


def test_tui_parse_rate_and_sparkline() -> None:
    session = Session()
    session.feed(synthetic.boot_stream(n_imu=2), T0)
    assert parse_rate("imu 200", session) == (0, 5000)
    assert parse_rate("1 50hz", session) == (1, 20000)
    for bad in ("imu", "nope 10", "imu fast", "imu 0"):
        try:
            parse_rate(bad, session)
        except ValueError:
            continue
        raise AssertionError(bad)
    assert sparkline([0.0, 1.0, float("nan"), 0.5]) == "▁█ ▅"
    assert sparkline([2.0, 2.0]) == "▅▅"


# ---------------------------------------------------------------- issue 15: the live view as people expect

def _blank_rows(text: str) -> int:
    return sum(1 for row in text.splitlines() if not row.strip())


def test_tui_ctrl_c_quits_and_the_footer_says_so() -> None:
    link = FakeLink(synthetic.boot_stream(n_imu=4))
    feed = LiveFeed(link, Session())

    async def run() -> tuple[str, bool]:
        app = MonitorApp(feed, "fake", refresh_s=0.1)
        feed.start_reader()
        try:
            async with app.run_test(size=(160, 45)) as pilot:
                await pilot.pause(0.5)
                text = _screen_text(app)
                await pilot.press("ctrl+c")
                await pilot.pause(0.1)
                return text, app.is_running
        finally:
            feed.close()

    text, running = asyncio.run(run())
    assert "^c quit" in text and not running


def test_tui_160x45_has_no_blank_band_pressure_in_hpa_and_line_share(monkeypatch) -> None:
    """Replay (no --line-rate): the share of the line comes from the HELLO's board definition."""
    from host.monitoring import panels, screen

    monkeypatch.setattr(screen, "board_line_rate", lambda board: 100_000.0 if board == "synthetic" else None)
    feed = ReplayFeed(_records(synthetic.boot_stream(n_imu=20)), Session(), speed=0)

    async def run() -> str:
        app = MonitorApp(feed, "replay x", refresh_s=0.05)
        async with app.run_test(size=(160, 45)) as pilot:
            for _ in range(20):
                await pilot.pause(0.05)
            return _screen_text(app)

    text = asyncio.run(run())
    assert "% of line)" in text
    assert _blank_rows(text) == 0, text  # was 12 rows between the panels and the log, then 1
    assert panels.display(100_314.0, "Pa") == ("1003.14", "hPa")
    assert panels.display(21.5, "degC") == ("21.50", "degC")


def test_tui_one_drop_figure_and_climbing_overruns_in_red() -> None:
    import re

    from host.monitoring.panels import device_text, link_text

    session = Session()
    session.feed(synthetic.boot_stream(n_imu=20, skip_seqs=(5, 6, 7)), T0)
    session.device.frames_dropped = 0  # a STATUS total that disagrees: the ledger's figure is shown
    link = link_text(session, "p", True, T0).plain
    dev = device_text(session, None, T0, overruns_rising=398).plain
    drops = re.search(r"device drops (\d+)", link)[1]
    assert re.search(r"dropped (\d+)", dev)[1] == drops == str(session.ledger.device_frames_dropped())
    assert "(+398 in 10 s" in dev
    styled = device_text(session, None, T0, overruns_rising=398)
    assert any("red" in str(span.style) for span in styled.spans)


def test_tui_title_and_link_panel_follow_a_reconnect_to_a_new_port() -> None:
    link = FakeLink(synthetic.boot_stream(n_imu=4))
    link.path = "/dev/ttyACM0"
    feed = LiveFeed(link, Session())

    async def run() -> tuple[str, str]:
        app = MonitorApp(feed, "/dev/ttyACM0 (usb:1234)", refresh_s=0.05)
        feed.start_reader()
        try:
            async with app.run_test(size=(160, 45)) as pilot:
                await pilot.pause(0.2)
                link.path = "/dev/ttyACM1"
                link._events.append(LinkEvent("reconnected", "/dev/ttyACM1", T0 + 1))
                await pilot.pause(0.3)
                return app.sub_title, _screen_text(app)
        finally:
            feed.close()

    title, text = asyncio.run(run())
    assert title == "/dev/ttyACM1 (usb:1234)"
    assert "link /dev/ttyACM1 (usb:1234)" in text and "ttyACM0" not in text.split("╯")[0]


REPL_REPLIES = {
    "friendly": b"\r\nTraceback (most recent call last):\r\n  File \"<stdin>\", line 1\r\nSyntaxError: invalid "
                b"syntax\r\n>>> ",
    "raw": b"raw REPL; CTRL-B to exit\r\n>OK\x04Traceback (most recent call last):\r\n  File \"<stdin>\", "
           b"line 1\r\nSyntaxError: invalid syntax\r\n\x04>",
}


@pytest.mark.parametrize("kind", sorted(REPL_REPLIES))
def test_tui_board_at_its_repl_is_recognised_and_a_starts_the_app(kind) -> None:
    from host.monitoring.feeds import START_APP

    link = FakeLink(REPL_REPLIES[kind])
    feed = LiveFeed(link, Session())

    async def run() -> str:
        app = MonitorApp(feed, "fake", refresh_s=0.05)
        feed.start_reader()
        try:
            async with app.run_test(size=(160, 45)) as pilot:
                for _ in range(40):
                    await pilot.pause(0.05)
                    if feed.at_repl:
                        break
                assert START_APP not in link.written
                await pilot.press("a")
                await pilot.pause(0.1)
                return _screen_text(app)
        finally:
            feed.close()

    text = asyncio.run(run())
    assert feed.at_repl and "the board is at its REPL" in text and "press a" in text
    assert link.written[-1] == START_APP


def test_live_start_app_flag_starts_it_without_a_key() -> None:
    from host.monitoring.feeds import START_APP

    link = FakeLink(REPL_REPLIES["raw"])
    feed = LiveFeed(link, Session(), start_app=True)
    feed.start_reader()
    try:
        for _ in range(100):
            feed.poll(0.02)
            if START_APP in link.written:
                break
    finally:
        feed.close()
    assert START_APP in link.written
    assert any("starting it (soft reset)" in x.text for x in feed.session.log)


def _open_boxes(rows: list[str]) -> list[tuple[int, int]]:
    """(row, column) of each panel's top-left corner with no bottom-left corner below it: a cut panel."""
    cut = []
    for y, row in enumerate(rows):
        for x, ch in enumerate(row):
            if ch == "╭" and not any(len(r) > x and r[x] == "╰" for r in rows[y + 1:]):
                cut.append((y, x))
    return cut


@pytest.mark.parametrize("size", [(80, 24), (100, 30), (120, 40), (160, 45), (200, 60)])
def test_tui_uses_every_row_and_nothing_overflows(size, monkeypatch) -> None:
    """Every row of the terminal is drawn (no blank band between the panels and the log: the panels'
    row is as tall as its taller column), the screen is exactly the terminal's size, the footer is the
    last row and the log's box is whole.  Every panel closes its box wherever its rows fit in the
    panels' share (TOP_SHARE) of the screen; at 80x24 the side column needs more than that."""
    from host.monitoring import screen

    monkeypatch.setattr(screen, "board_line_rate", lambda board: 100_000.0)
    feed = ReplayFeed(_records(synthetic.boot_stream(n_imu=20)), Session(), speed=0)
    cols, lines = size

    async def run() -> str:
        app = MonitorApp(feed, "replay x", refresh_s=0.05)
        async with app.run_test(size=size) as pilot:
            for _ in range(40):
                await pilot.pause(0.05)
                text = _screen_text(app)
                if "accel_x_g" in text and "^c" in text.splitlines()[-1] and "end of recording" in text:
                    break
            await pilot.pause(0.2)  # a few more ticks: the layout stays put
            return _screen_text(app)

    rows = asyncio.run(run()).splitlines()
    text = "\n".join(rows)
    assert len(rows) == lines and {len(r) for r in rows} == {cols}, text
    assert [y for y, r in enumerate(rows) if not r.strip()] == [], text
    assert "^c quit" in rows[-1] and "pagerless monitor" in rows[0], text
    log_top = max(y for y, r in enumerate(rows) if r.startswith("╭"))
    assert rows[-2].startswith("╰") and lines - 2 - log_top >= lines // 5, text  # the log keeps its share
    cut = _open_boxes(rows)
    assert cut == ([] if size != (80, 24) else [(cut[0][0], rows[1].index("╮╭") + 1)]), text


def test_tui_fits_the_panels_again_when_the_terminal_is_resized() -> None:
    """No tick in between (refresh_s 10 s): the new widths alone re-fit the panels' row."""
    feed = ReplayFeed(_records(synthetic.boot_stream(n_imu=20)), Session(), speed=0)

    async def run() -> list[tuple[tuple[int, int], list[str]]]:
        app = MonitorApp(feed, "replay x", refresh_s=10)
        seen = []
        async with app.run_test(size=(160, 45)) as pilot:
            await pilot.pause(0.3)
            for size in [(100, 30), (200, 60), (120, 40)]:
                await pilot.resize_terminal(*size)
                await pilot.pause(0.3)
                seen.append((size, _screen_text(app).splitlines()))
        return seen

    for (cols, lines), rows in asyncio.run(run()):
        assert len(rows) == lines and [r for r in rows if not r.strip()] == [], "\n".join(rows)
