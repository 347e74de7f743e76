"""Boot: the board announces itself (BOOT event, HELLO with board, firmware version and streams)
and sends one CALIB per stream, in the current boot, before any DATA."""
from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import pytest

from firmware import wire
from host import sensors
from host.sensors import bme280

pytestmark = [pytest.mark.virtual_board]

ROOT = Path(__file__).resolve().parents[2]


def firmware_version() -> str:
    return re.search(r'FIRMWARE_VERSION = "([^"]+)"', (ROOT / "firmware" / "version.py").read_text()).group(1)


def test_hello_announces_board_firmware_streams_and_calibration(dut, traffic, request):
    hello = traffic.expect("HELLO")
    info = hello.hello()
    assert hello.seq == 0, "the HELLO right after a reset is the boot's first"
    assert info["board"] == dut.definition.name
    assert info["mcu"] == dut.definition.mcu
    assert info["protocol"] == wire.VERSION
    assert info["ticks_period"] == 1 << 30
    if not request.config.getoption("no_deploy"):
        assert info["firmware"] == firmware_version(), "the board runs the firmware/ of this checkout"
    assert info["reset_cause"] == dut.expected_reset_cause, \
        f"the cause {dut.definition.name}'s board.json states for the fixture's reset ({dut.reset_event})"

    boot = traffic.expect(event="BOOT", since=traffic.start)
    assert boot.boot_id == hello.boot_id and boot.seq == 0
    assert boot.event().arg == info["reset_cause"]

    # streams: exactly the deployed config's, each complete and self-consistent
    if not request.config.getoption("no_deploy"):
        deployed = request.config.getoption("app_config") or ROOT / "firmware" / "config.json"
        cfg = json.loads(Path(deployed).read_text())
        assert [(s["name"], s["kind"], s["period_us"], s["batch"]) for s in info["streams"]] == \
            [(c["name"], c["sensor"], c["period_us"], c["batch"]) for c in cfg["streams"]]
    assert sorted(s["id"] for s in info["streams"]) == list(range(len(info["streams"])))
    for s in info["streams"]:
        assert s["online"], f"stream {s['name']} offline at boot"
        assert s["sample_size"] == struct.calcsize(s["sample_format"])
        assert [c[0] for c in s["channels"]] == [c for c, _ in sensors.kind(s["kind"]).driver.CHANNELS]

    # one CALIB per stream of this boot, before its first DATA; BME280's is its 33-byte block
    for s in info["streams"]:
        cal = traffic.expect("CALIB", stream=s["id"], since=traffic.start)
        assert cal.boot_id == hello.boot_id and cal.seq == 0
        first_data = traffic.expect("DATA", stream=s["id"], since=traffic.start, timeout=3)
        assert cal.t0_us <= first_data.t0_us or (first_data.t0_us - cal.t0_us) % (1 << 30) < 1 << 29
        if s["kind"] == "bme280":
            cal_dict = bme280.parse_calibration(cal.body)
            assert cal_dict["dig_T1"] > 0 and cal_dict["dig_P1"] > 0
        else:
            assert cal.body == b"", f"{s['kind']} has no calibration block"

    # the first STATUS: everything online, nothing dropped, the same reset cause
    st = traffic.expect("STATUS", since=traffic.start).status()
    assert st.reset_cause == info["reset_cause"]
    assert [x.online for x in st.streams] == [True] * len(info["streams"])
    assert st.frames_dropped == 0


def test_ping_and_send_hello_answer_in_the_same_boot(dut, traffic):
    assert traffic.ping().ok
    again = traffic.request_hello()
    assert again.boot_id == dut.boot_id and again.seq == 1
    assert again.hello()["streams"] == dut.hello["streams"]
