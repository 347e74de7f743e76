"""The monitor TUI, headless (textual's run_test pilot): fed from a replayed recording, and a fake link
to check that keys send the right command bytes."""
from __future__ import annotations

import asyncio
import struct

from firmware import wire
from host.testkit import synthetic
from host.protocol.decoder import Decoder
from host.device.link import LinkEvent
from host.monitoring.feeds import LiveFeed, ReplayFeed
from host.device.recording import Kind, Record
from host.monitoring.session import Session
from host.monitoring.screen import MonitorApp, parse_rate, sparkline

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


class FakeLink:
    """A link that delivers a byte stream once, records writes, and can drop out."""

    def __init__(self, data: bytes) -> None:
        self._chunks = [data[i:i + 200] for i in range(0, len(data), 200)]
        self.written: list[bytes] = []
        self.connected = True
        self.path = "fake://board"
        self._events = [LinkEvent("connected", self.path, T0)]

    def read(self, max_wait: float = 0.05) -> bytes:
        if self._chunks:
            return self._chunks.pop(0)
        import time
        time.sleep(0.01)
        return b""

    def write(self, data: bytes) -> bool:
        self.written.append(bytes(data))
        return True

    def events(self) -> list:
        out, self._events = self._events, []
        return out

    def close(self) -> None:
        self.connected = False


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
