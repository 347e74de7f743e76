"""Every fault kind of the virtual board, observed from MicroPython code on it, as firmware sees it."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import serial

from host.virtual_board.control import BoardClient, ControlError, ControlServer
from host.virtual_board.scenario import ScenarioError, ScenarioRunner, expand

pytestmark = [pytest.mark.virtual_board, pytest.mark.fault_injection]

PROBE = """
import machine, time
i2c = machine.I2C(0, timeout=%d)
buf = bytearray(1)
def probe(addr, reg, n=20):
    res = {}
    for _ in range(n):
        try:
            i2c.readfrom_mem_into(addr, reg, buf)
            k = 'ok'
        except OSError as e:
            k = e.errno
        res[k] = res.get(k, 0) + 1
    return res
"""


def run_probe(board_exec, port, expr, timeout_us=50000):
    return eval(board_exec(port, PROBE % timeout_us + f"print({expr})", timeout=30).strip())


def test_unplugged_chip_nacks_its_address_then_comes_back(vboard, board_exec):
    vboard.unplug("bme280")
    assert run_probe(board_exec, vboard.port, "probe(0x76, 0xD0)") == {5: 20}  # rp2: EIO for a NACKed address
    assert run_probe(board_exec, vboard.port, "i2c.scan()") == [0x44, 0x68]
    vboard.replug("bme280")
    assert run_probe(board_exec, vboard.port, "probe(0x76, 0xD0)") == {"ok": 20}


def test_intermittent_nacks_at_a_rate_raise_eio(vboard, board_exec):
    vboard.set_nack_rate("mpu6050", 0.3)
    res = run_probe(board_exec, vboard.port, "probe(0x68, 0x75, 400)")
    assert set(res) == {"ok", 5}
    assert 60 < res[5] < 180  # 30 % of 400, generously bounded


def test_stuck_bus_times_out_after_the_bus_timeout(vboard, board_exec):
    vboard.set_bus_stuck(True)
    out = run_probe(board_exec, vboard.port,
                    "(lambda t: (probe(0x44, 0xF3, 5), time.ticks_diff(time.ticks_ms(), t)))(time.ticks_ms())",
                    timeout_us=20000)
    res, elapsed_ms = out
    assert res == {110: 5}  # ETIMEDOUT
    assert 90 <= elapsed_ms < 1000  # 5 x 20 ms: bounded by the configured timeout
    vboard.set_bus_stuck(False)
    assert run_probe(board_exec, vboard.port, "probe(0x44, 0xF3, 1)") != {110: 1}


def test_frozen_values_stop_changing(vboard, board_exec):
    code = ("b = bytearray(6)\nseen = set()\n"
            "for _ in range(20):\n"
            "    i2c.readfrom_mem_into(0x68, 0x3B, b); seen.add(bytes(b)); time.sleep_ms(5)\n")
    vboard.chip("mpu6050")  # exists
    board_exec(vboard.port, "import machine\nmachine.I2C(0).writeto_mem(0x68, 0x6B, b'\\x01')")  # wake
    moving = run_probe(board_exec, vboard.port, "[exec(%r), len(seen)][1]" % code)
    vboard.freeze("mpu6050", True)
    frozen = run_probe(board_exec, vboard.port, "[exec(%r), len(seen)][1]" % code)
    assert moving > 1 and frozen == 1


def test_wrong_chip_id(vboard, board_exec):
    assert run_probe(board_exec, vboard.port, "i2c.readfrom_mem(0x76, 0xD0, 1)") == b"\x60"
    vboard.set_wrong_id("bme280", True)
    assert run_probe(board_exec, vboard.port, "i2c.readfrom_mem(0x76, 0xD0, 1)") != b"\x60"


def test_adc_reads_a_changing_voltage(vboard, board_exec):
    vals = run_probe(board_exec, vboard.port,
                     "[machine.ADC(machine.Pin(26)).read_u16() for _ in range(50) if not time.sleep_ms(2)]")
    assert all(0 <= v <= 65535 for v in vals) and len(set(vals)) > 1


# Writes 256 B blocks, pausing PAUSE_MS after each; notes in a file once the port has stayed full for
# 0.5 s of device time (a moment's fullness is a busy host's reader, not backpressure).
STREAMER = ("import sys, select, micropython, time\n"
            "micropython.kbd_intr(-1)\n"
            "p = select.poll(); p.register(sys.stdout, select.POLLOUT)\n"
            "blk = bytes(range(256))\n"
            "t0 = time.ticks_ms()\n"
            "while True:\n"
            "    if p.poll(0):\n"
            "        sys.stdout.buffer.write(blk)\n"
            "        t0 = time.ticks_ms()\n"
            "        time.sleep_ms(PAUSE_MS)\n"
            "    elif time.ticks_diff(time.ticks_ms(), t0) > 500:\n"
            "        open('blocked', 'w').close()\n")


def test_backpressure_blocks_device_writes(vboard):
    blocked = vboard.fs / "blocked"
    # 256 kB/s into a 1 MB/s link: never waits while the host reads
    (vboard.fs / "main.py").write_text(STREAMER.replace("PAUSE_MS", "1"))
    vboard.set_link_rate("usb")
    reading = threading.Event()
    reader = threading.Thread(target=lambda: reading.set() or read_for(vboard.port, 3.0))
    reader.start()
    reading.wait()
    vboard.power_cycle()
    vboard.wait_boot(2)
    time.sleep(0.8)
    assert not blocked.exists()  # the host reads, so the device never waits
    vboard.set_backpressure(True)
    deadline = time.monotonic() + 10  # a wait for a busy host; the device judges 500 ms itself
    while not blocked.exists():
        assert time.monotonic() < deadline, "the device never saw its output back up"
        time.sleep(0.05)
    reader.join()


def read_for(port: str, seconds: float) -> bytes:
    out = bytearray()
    with serial.Serial(port, timeout=0.05) as ser:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            out += ser.read(ser.in_waiting or 1)
    return bytes(out)


def test_bit_flips_and_dropped_bytes_at_a_rate(vboard):
    (vboard.fs / "main.py").write_text(STREAMER.replace("PAUSE_MS", "0"))
    vboard.power_cycle()
    vboard.wait_boot(2)
    vboard.set_bit_error_rate(0.001)
    vboard.set_drop_rate(0.001)
    data = read_for(vboard.port, 1.0)
    st = vboard.link.stats
    assert len(data) > 100_000
    assert st.bits_flipped > 20 and st.bytes_dropped > 20
    # the stream is no longer a clean repetition of 0..255
    assert data[data.index(b"\x00\x01\x02"):].count(bytes(range(256))) < len(data) // 256 - 10


def test_link_rate_throttles_to_the_line_rate(vboard_factory):
    b = vboard_factory(link_rate="uart115200")
    (b.fs / "main.py").write_text(STREAMER.replace("PAUSE_MS", "0"))
    b.power_cycle()
    b.wait_boot(2)
    time.sleep(0.5)  # let the pty buffers fill so we measure the steady rate
    data = read_for(b.port, 2.0)
    rate = len(data) / 2.0
    # the throttle's contract is the ceiling: never faster than the line (load only slows it);
    # the floor only proves it does not throttle far below the line rate (a units slip would be
    # 8x or 1000x): a host busy elsewhere can starve the bridge's pump thread for a while
    assert 11_520 * 0.2 < rate < 11_520 * 1.25


def test_port_disappears_and_comes_back_with_the_same_identity(vboard, pagerless_home):
    entry = json.loads((pagerless_home / "virtual.json").read_text())
    old = vboard.port
    vboard.disconnect(duration=0.3)
    assert vboard.port is None
    # tools find the board through the registry: it must name the new port under the same identity
    deadline = time.monotonic() + 3
    while True:
        new_entry = json.loads((pagerless_home / "virtual.json").read_text())
        if new_entry["port"] is not None:
            break
        assert time.monotonic() < deadline, "registry never named the returning port"
        time.sleep(0.05)
    assert new_entry["serial"] == entry["serial"] and new_entry["port"] == vboard.port
    assert vboard.link.stats.reconnects == 1
    assert old is not None


def test_control_socket_drives_faults_from_another_process(vboard, board_exec, tmp_path):
    server = ControlServer(vboard, tmp_path / "c.sock")
    server.start()
    try:
        client = BoardClient(tmp_path / "c.sock")
        client.unplug("sht31")
        assert run_probe(board_exec, vboard.port, "probe(0x44, 0xF3, 3)") == {5: 3}  # rp2: EIO
        assert client.status()["serial"] == vboard.serial
        with pytest.raises(ControlError, match="unknown control call"):
            client.call("__del__")
    finally:
        server.close()


def test_scenario_replays_the_same_events_for_the_same_seed(vboard):
    doc = {"seed": 11, "event": [{"at": 0.05, "action": "unplug", "args": ["bme280"]}],
           "random": {"count": 4, "span": 0.3, "duration": [0.05, 0.1], "kinds": ["nack", "freeze", "unplug"]}}
    first, second = expand(doc), expand(doc)
    assert first == second and len(first) == 9
    runner = ScenarioRunner(vboard, first).start()
    time.sleep(0.8)
    runner.stop()
    assert runner.applied == first
    with pytest.raises(ScenarioError, match="unknown action"):
        expand({"event": [{"at": 1, "action": "rm_rf"}]})


HANG_MAIN = """
import machine, time
wdt = machine.WDT(timeout=1000)
i2c = machine.I2C(0)
b = bytearray(1)
while True:
    i2c.readfrom_mem_into(0x76, 0xD0, b)
    wdt.feed()
    time.sleep_ms(10)
"""


def test_hang_stops_the_firmware_mid_call_until_the_watchdog_resets_it(vboard):
    (vboard.fs / "main.py").write_text(HANG_MAIN)
    n = len(vboard.boots)
    vboard.power_cycle()
    vboard.wait_boot(n + 1)
    time.sleep(1.5)  # fed: no watchdog reset while the bus answers
    assert len(vboard.boots) == n + 1
    t0 = time.monotonic()
    vboard.hang()
    rec = vboard.wait_boot(n + 2, timeout=4)
    assert rec.cause == 3  # WDT_RESET
    assert 0.9 < time.monotonic() - t0 < 2.5  # the 1 s watchdog, not anything sooner
    time.sleep(1.5)  # the reset cleared the hang: the new boot's loop keeps the watchdog fed
    assert len(vboard.boots) == n + 2


def test_the_shipped_example_scenario_is_valid():
    from host.virtual_board.scenario import load

    events = load(Path(__file__).resolve().parents[2] / "boards/virtual/scenarios/sensor_faults.toml")
    assert len(events) == 4 + 10 * 2 and events == sorted(events, key=lambda e: e.at)
