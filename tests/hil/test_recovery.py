"""Recovery paths: a loop that stops feeding the watchdog resets the board and the next boot
reports why; a corrupt or invalid config.json gives safe defaults and a CONFIG_FALLBACK event."""
from __future__ import annotations

import json

import pytest

from firmware import config as fw_config
from firmware import wire

pytestmark = [pytest.mark.virtual_board]

WDT_MARGIN_S = 3.0

# The firmware has no "hang the loop" debug knob (asked for). Its config can make the loop end
# after `max_iterations` passes with the watchdog forced on ("always"); the VM then sits at the
# REPL with nobody feeding the WDT. That proves: our firmware starts the WDT, the WDT resets the
# board, and the next boot reports WATCHDOG_RESET and reset_cause 3 in HELLO and STATUS. It does
# not prove that a loop *hung inside a pass* is caught (no way to hang it from outside: I2C
# timeouts are bounded). On real ports with machine.Timer the firmware feeds the WDT from a timer
# after the loop ends, so this test runs on the virtual board only (it needs `virtual_board`).
LOOP_STOPS = {"watchdog": "always", "max_iterations": 400}


@pytest.mark.parametrize("hil_config", [LOOP_STOPS], indirect=True, ids=["loop-stops-feeding"])
def test_watchdog_resets_a_board_whose_loop_stopped_and_the_cause_is_reported(board, stream, virtual_board):
    timeout_s = board.definition["wdt_timeout_ms"] / 1000
    first = board.boot_id
    since = stream.mark()
    hello = stream.expect("HELLO", since=since, timeout=timeout_s + WDT_MARGIN_S,
                          where=lambda f: f.boot_id != first)
    info = hello.hello()
    assert info["reset_cause"] == wire.RC_WATCHDOG
    assert virtual_board.boots[-1].cause == wire.RC_WATCHDOG
    ev = [f.event().code for f in stream.frames("EVENT", since=since, boot_id=hello.boot_id)]
    assert wire.EV_BOOT in ev and wire.EV_WATCHDOG_RESET in ev, [wire.EVENT_NAMES.get(e) for e in ev]
    st = stream.expect("STATUS", since=since, where=lambda f: f.boot_id == hello.boot_id).status()
    assert st.reset_cause == wire.RC_WATCHDOG
    # the loop really stopped before the reset: the last frames of the first boot are its summary
    assert any("PAGERLESS-SUMMARY" in line for line in board.log_path.read_text().splitlines())


CORRUPT = {
    "not_json": (b'{"streams": [{"name": "imu", ', "not valid JSON"),
    "invalid_value": (json.dumps({"streams": [{"name": "imu", "sensor": "mpu6050", "period_us": -5}]}).encode(),
                      "invalid"),
    "wrong_type": (b"[1, 2, 3]", "invalid"),
}


@pytest.mark.parametrize("case", list(CORRUPT))
def test_corrupt_config_gives_safe_defaults_and_a_config_fallback_event(board, stream, case):
    data, why = CORRUPT[case]
    board.override_file("config.json", data)
    hello = board.reset()
    ev = stream.expect(event="CONFIG_FALLBACK", since=stream.start, timeout=2).event()
    assert why in ev.text and "defaults" in ev.text, ev.text
    defaults = fw_config.defaults(board.definition)
    got = [(s["name"], s["kind"], s["period_us"], s["batch"]) for s in hello.hello()["streams"]]
    assert got == [(s["name"], s["sensor"], s["period_us"], s["batch"]) for s in defaults["streams"]]
    for sid in stream.streams:
        stream.expect("DATA", stream=sid, since=stream.start, timeout=2.5)
    assert stream.stats.missing == 0
