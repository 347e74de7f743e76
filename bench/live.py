"""Paced runs of the live monitor's pipeline at a given rate: what decoder_bench.py measures as the
monitor's CPU share (the decoder alone, pty + Link + LiveFeed + Session, and the same with the TUI)."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
import tty
from dataclasses import dataclass

from firmware import wire
from host.monitoring.session import Session
from host.protocol.decoder import Decoder

PACE_TICK_S = 0.01     # the paced writers send rate * 10 ms at a time
WARMUP_S = 1.0         # live runs: connect, HELLO, first layout, before the window opens
TUI_SIZE = (160, 50)   # terminal columns x rows for the headless TUI


@dataclass
class Paced:
    name: str
    seconds: float       # wall time of the window
    share: float         # process CPU time / wall time
    mbps: float          # bytes decoded per second over the window
    frames_s: float      # frames decoded per second
    samples_s: float
    errors: int          # CRC + framing errors + invalid frames (must be 0: the pty is transparent)


def paced_decoder(data: bytes, rate_bps: float, seconds: float) -> Paced:
    """Feed `data` to a Decoder in 10 ms slices at `rate_bps` for `seconds` (decoder's own cost)."""
    per_tick = int(rate_bps * PACE_TICK_S)
    dec = Decoder()
    pos = frames = samples = 0
    w0 = time.perf_counter()
    c0 = time.process_time()
    next_t = w0
    while True:
        now = time.perf_counter()
        if now - w0 >= seconds or pos >= len(data):
            break
        if now < next_t:
            time.sleep(next_t - now)
            continue
        for f in dec.feed(data[pos:pos + per_tick]):
            if getattr(f, "type", None) == wire.T_DATA:
                frames += 1
                samples += f.count
        pos += per_tick
        next_t += PACE_TICK_S
    wall = time.perf_counter() - w0
    cpu = time.process_time() - c0
    st = dec.stats
    return Paced("decoder only (in-process)", wall, cpu / wall, st.bytes / wall, frames / wall, samples / wall,
                 st.crc_errors + st.framing_errors + st.invalid_frames)


# The writer: a separate process, so its CPU time is not the monitor's. It writes the stream into the
# pty's master side at the paced rate (bursts of rate * 10 ms, catching up if it was late).
_WRITER = r"""
import os, sys, time
fd, path, rate, tick = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
data = open(path, "rb").read()
per = int(rate * tick)
pos, t0 = 0, time.perf_counter()
next_t = t0
while pos < len(data):
    now = time.perf_counter()
    if now < next_t:
        time.sleep(next_t - now)
        continue
    mv = memoryview(data)[pos:pos + per]
    while mv:
        mv = mv[os.write(fd, mv):]
    pos += per
    next_t += tick
time.sleep(3600)  # keep the master open (a closed master hangs the port up) until killed
"""


class _Window:
    """CPU, wall and what the session decoded between open and close."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.w0, self.c0 = time.perf_counter(), time.process_time()
        self.b0, self.f0, self.s0 = self._counts()

    def _counts(self) -> tuple[int, int, int]:
        s = self.session
        return s.stats.bytes, s.stats.frames_ok, sum(st.samples for st in s.streams.values())

    def close(self, name: str) -> Paced:
        wall = time.perf_counter() - self.w0
        cpu = time.process_time() - self.c0
        b, f, n = self._counts()
        st = self.session.stats
        return Paced(name, wall, cpu / wall, (b - self.b0) / wall, (f - self.f0) / wall, (n - self.s0) / wall,
                     st.crc_errors + st.framing_errors + st.invalid_frames)


def paced_live(data: bytes, rate_bps: float, seconds: float, ui: bool) -> tuple[Paced, str]:
    """Run `monitor live`'s pipeline on a pty fed at `rate_bps`; with `ui`, the TUI (headless) too.

    Returns the window's figures and (with `ui`) the screen text at the end.
    """
    from host.device.link import Link, identify, locator_for
    from host.monitoring.feeds import LiveFeed
    from host.monitoring.screen import REFRESH_S

    master, slave = os.openpty()
    tty.setraw(slave)  # a board's CDC port: no echo, no line editing, no output processing
    path = os.ttyname(slave)
    with tempfile.NamedTemporaryFile(prefix="decoder-bench-", suffix=".bin", delete=False) as f:
        f.write(data)
    writer = None
    feed = None
    try:
        # as host.monitor.cmd_live wires it (no --record, default --baud, HELLO asked on connect)
        identity = identify(path)
        link = Link(path, 115200, locate=locator_for(identity))
        link.open()
        session = Session()
        feed = LiveFeed(link, session)
        writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(master), f.name, str(rate_bps),
                                   str(PACE_TICK_S)], pass_fds=(master,))
        feed.start_reader()
        if ui:
            return asyncio.run(_with_tui(feed, f"{path} ({identity})", seconds))
        win = None
        t_open = time.perf_counter() + WARMUP_S
        t_end = t_open + seconds
        while time.perf_counter() < t_end:  # the TUI's cadence, without the TUI
            time.sleep(REFRESH_S)
            feed.poll()
            if win is None and time.perf_counter() >= t_open:
                win = _Window(session)
        return win.close("live, no view (pty+Link+LiveFeed+Session)"), ""
    finally:
        if feed is not None:
            feed.close()
        if writer is not None:
            writer.kill()
            writer.wait()
        os.close(master)
        os.close(slave)
        os.unlink(f.name)


async def _with_tui(feed, source: str, seconds: float) -> tuple[Paced, str]:
    from host.monitoring.screen import MonitorApp

    app = MonitorApp(feed, source)  # default refresh period, as `monitor live` runs it
    async with app.run_test(size=TUI_SIZE) as pilot:
        await pilot.pause(WARMUP_S)
        win = _Window(feed.session)
        await asyncio.sleep(seconds)
        res = win.close(f"live + TUI headless {TUI_SIZE[0]}x{TUI_SIZE[1]}")
        update = app.screen._compositor.render_full_update(simplify=True)
        text = "\n".join("".join(strip.text for strip in row) for row in update.strips)
    if app.failure is not None:
        raise app.failure
    return res, text
