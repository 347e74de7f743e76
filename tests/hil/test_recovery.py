"""Recovery paths: a loop that stops feeding the watchdog resets the board and the next boot
reports why; a corrupt or invalid config.json gives safe defaults and a CONFIG_FALLBACK event."""
from __future__ import annotations

import json

import pytest

from firmware import config as fw_config
from firmware import wire

pytestmark = [pytest.mark.virtual_board]

WDT_MARGIN_S = 3.0

# Two ways the loop stops feeding the watchdog, both on the virtual board only (`virtual_board`):
# - hung mid-pass: the virtual board's `hang()` fault locks the board up inside its next bus
#   transaction (a peripheral or driver hang no I2C timeout catches);
# - ended: the config's `max_iterations` ends the loop and the VM sits at the REPL unfed (on real
#   ports with machine.Timer the firmware feeds the WDT from a timer after the loop ends).
# The virtual board's `machine` has no Timer, so its firmware starts the WDT only with "always".
# Either way the WDT resets the board and the next boot reports WATCHDOG_RESET and reset_cause 3.
LOOP_STOPS = {"watchdog": "always", "max_iterations": 400}
WATCHDOG_ON = {"watchdog": "always"}


def expect_watchdog_boot(dut, traffic, virtual_board, since, first):
    """The next boot after a watchdog reset, and what it must say about it."""
    timeout_s = dut.definition.wdt_timeout_ms / 1000
    hello = traffic.expect("HELLO", since=since, timeout=timeout_s + WDT_MARGIN_S,
                          where=lambda f: f.boot_id != first)
    info = hello.hello()
    assert info["reset_cause"] == wire.RC_WATCHDOG
    assert virtual_board.boots[-1].cause == wire.RC_WATCHDOG
    ev = [f.event().code for f in traffic.frames("EVENT", since=since, boot_id=hello.boot_id)]
    assert wire.EV_BOOT in ev and wire.EV_WATCHDOG_RESET in ev, [wire.EVENT_NAMES.get(e) for e in ev]
    st = traffic.expect("STATUS", since=since, where=lambda f: f.boot_id == hello.boot_id).status()
    assert st.reset_cause == wire.RC_WATCHDOG
    return hello


@pytest.mark.fault_injection
@pytest.mark.parametrize("hil_config", [WATCHDOG_ON], indirect=True, ids=["watchdog-on"])
def test_watchdog_resets_a_board_hung_inside_a_pass_and_streaming_resumes(dut, traffic, virtual_board):
    first = dut.boot_id
    traffic.expect("DATA", since=traffic.start, timeout=2)
    dut.note("fault: hang (the board locks up in its next bus transaction)")
    virtual_board.hang()
    since = traffic.mark()
    hello = expect_watchdog_boot(dut, traffic, virtual_board, since, first)
    # the first boot stopped dead: from the hang to the reset, no more than the frames in flight
    late = [f for f in traffic.frames("DATA", since=since, boot_id=first)]
    assert len(late) <= len(traffic.streams) * 2, f"{len(late)} DATA frames after the hang"
    # the reset cleared the hang: every stream delivers again in the new boot
    for sid in traffic.streams:
        traffic.expect("DATA", stream=sid, since=since, timeout=3, where=lambda f: f.boot_id == hello.boot_id)


@pytest.mark.parametrize("hil_config", [LOOP_STOPS], indirect=True, ids=["loop-stops-feeding"])
def test_watchdog_resets_a_board_whose_loop_stopped_and_the_cause_is_reported(dut, traffic, virtual_board):
    first = dut.boot_id
    expect_watchdog_boot(dut, traffic, virtual_board, traffic.mark(), first)
    # the loop really stopped before the reset: the last frames of the first boot are its summary
    assert any("PAGERLESS-SUMMARY" in line for line in dut.log_path.read_text().splitlines())


CORRUPT = {
    "not_json": (b'{"streams": [{"name": "imu", ', "not valid JSON"),
    "invalid_value": (json.dumps({"streams": [{"name": "imu", "sensor": "mpu6050", "period_us": -5}]}).encode(),
                      "invalid"),
    "wrong_type": (b"[1, 2, 3]", "invalid"),
}


@pytest.mark.parametrize("case", list(CORRUPT))
def test_corrupt_config_gives_safe_defaults_and_a_config_fallback_event(dut, traffic, case):
    data, why = CORRUPT[case]
    dut.override_file("config.json", data)
    hello = dut.reset()
    ev = traffic.expect(event="CONFIG_FALLBACK", since=traffic.start, timeout=2).event()
    assert why in ev.text and "defaults" in ev.text, ev.text
    defaults = fw_config.defaults(dut.definition.raw)
    got = [(s["name"], s["kind"], s["period_us"], s["batch"]) for s in hello.hello()["streams"]]
    assert got == [(s["name"], s["sensor"], s["period_us"], s["batch"]) for s in defaults["streams"]]
    for sid in traffic.streams:
        traffic.expect("DATA", stream=sid, since=traffic.start, timeout=2.5)
    assert traffic.stats.missing == 0
