"""Leaving the streaming loop: mpremote takes over a streaming board (Ctrl-C with kbd_intr(-1)
set), CMD REPL returns to the prompt (the watchdog then fed by a Timer), and a watchdog reset is
reported after the next boot."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from firmware import wire
from host.testkit.fwboard import FIRMWARE, boot

pytestmark = pytest.mark.virtual_board


def test_firmware_mpremote_takes_over_a_streaming_board(vboard_factory):
    board = vboard_factory(link_rate="usb")
    r = boot(board)
    try:
        r.wait(lambda: len(r.of(wire.T_DATA)) >= 3, what="streaming")
    finally:
        r.close()
    out = subprocess.run([sys.executable, "-m", "mpremote", "connect", board.port, "exec", "print(1)"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("1")
    # mpremote soft-resets from the raw REPL before exec (main.py does not run then): no
    # hard or watchdog reset was needed to take the board over
    assert [b.cause for b in board.boots[1:]] in ([1], [1, 5])


def test_firmware_repl_command_returns_to_the_prompt(vboard_factory):
    board = vboard_factory(link_rate="usb")
    r = boot(board)
    try:
        r.wait(lambda: r.of(wire.T_DATA), what="streaming")
        r.send(wire.OP_REPL, 77)
        r.wait(lambda: r.text.rstrip().endswith(">>>"), what="the REPL prompt")
        n = len(r.of(wire.T_DATA))
        r.ser.write(b"print(6 * 7)\r")
        r.wait(lambda: "42" in r.text, what="the REPL to answer")
    finally:
        r.close()
    assert [(a.ok, a.opcode, a.token) for a in r.acks()] == [(True, wire.OP_REPL, 77)]
    assert len(r.of(wire.T_DATA)) == n and "Traceback" not in r.text


def test_firmware_watchdog_reset_is_reported_after_boot(vboard_factory):
    board = vboard_factory(link_rate="usb")
    cfg = json.loads((FIRMWARE / "config.json").read_text())
    assert cfg["watchdog"] is True  # the default arms it: the virtual board has a machine.Timer
    r = boot(board, cfg)
    try:
        time.sleep(4.5)  # longer than wdt_timeout_ms: the loop feeds it
        assert len(board.boots) == 2
        board.hang()  # the loop stops dead in a bus transaction: the watchdog bites 4 s later
        board.wait_boot(3, timeout=8)
        r.wait(lambda: any(e.code == wire.EV_WATCHDOG_RESET for e in r.events()), what="WATCHDOG_RESET")
    finally:
        r.close()
    assert board.boots[-1].cause == 3
    boots = [e for e in r.events() if e.code == wire.EV_BOOT]
    assert [e.arg for e in boots] == [wire.RC_POWER_ON, wire.RC_WATCHDOG]
    assert r.dec.stats.sessions == 2
    assert r.of(wire.T_HELLO)[-1].hello()["reset_cause"] == wire.RC_WATCHDOG
