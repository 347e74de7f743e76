"""Recovery paths: a loop that stops feeding the watchdog resets the board and the next boot
reports why; a corrupt or invalid config.json gives safe defaults and a CONFIG_FALLBACK event."""
from __future__ import annotations

import json

import pytest

from firmware import config as fw_config
from firmware import wire
from host.hil import checks

pytestmark = [pytest.mark.virtual_board]

WDT_MARGIN_S = 3.0

# The firmware's default config (watchdog: true) arms the WDT wherever a machine.Timer can feed
# it at the REPL: on the virtual board as on rp2/esp32. The `hang()` fault locks the board up
# inside its next bus transaction (a peripheral or driver hang no I2C timeout catches; on the
# emulated RP2040 the core stalls there with its interrupts masked): the loop stops feeding, the
# WDT resets the board and the next boot reports WATCHDOG_RESET and reset_cause 3. A loop that
# ends normally (`max_iterations`) leaves the board at the REPL with the WDT fed by a Timer: no
# reset. Waits and idle spells run on the board's own clock (emulated time on the emulator).
LOOP_ENDS = {"max_iterations": 400}


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
def test_watchdog_resets_a_board_hung_inside_a_pass_and_streaming_resumes(dut, traffic, virtual_board):
    assert dut.base_config().get("watchdog", True) is True  # the default, not "always"
    dut.reset()  # reading the config stopped the app at the REPL: hang it inside a pass instead
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


@pytest.mark.parametrize("hil_config", [LOOP_ENDS], indirect=True, ids=["loop-ends"])
def test_a_board_whose_loop_ended_idles_at_the_repl_with_its_watchdog_fed(dut, traffic, virtual_board):
    first = dut.boot_id
    boots = len(virtual_board.boots)
    deadline = traffic.clock() + 15
    while "PAGERLESS-SUMMARY" not in dut.log_path.read_text():  # the loop ended: its summary
        assert traffic.clock() < deadline, f"the loop never ended; see {dut.log_path}"
        traffic.wait(0.05)
    # the STATUS sent on leaving the loop: the device's time when the REPL took over
    end_ms = max(f.status().uptime_ms for f in traffic.frames("STATUS", since=traffic.start, boot_id=first))
    wdt_ms = dut.definition.wdt_timeout_ms
    traffic.wait(wdt_ms / 1000 + 1.0)  # idle at the REPL past the timeout; the device clock judges
    out = dut.exec("import time, machine, __main__\n"
                   "print('AT-REPL', time.ticks_ms(), machine.reset_cause(), __main__._feeder is not None)")
    _, now_ms, cause, feeding = next(x for x in out.splitlines() if x.startswith("AT-REPL")).split()
    assert feeding == "True", out
    assert int(now_ms) - end_ms >= wdt_ms, f"the REPL idled only {int(now_ms) - end_ms} ms of device time"
    # still the boot the fixture's reset began (an RP2040 reports WDT_RESET after that reset too:
    # machine.reset() is a watchdog reboot there; the board's boot count and clock tell them apart)
    assert len(virtual_board.boots) == boots and int(cause) == dut.hello["reset_cause"], \
        "the watchdog reset a board fed at the REPL"


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
    assert checks.frames_lost(traffic) == []
