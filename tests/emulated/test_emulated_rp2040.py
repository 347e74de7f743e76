"""The official MicroPython RP2040 firmware on the emulated chip, with our simulated sensors on its
real I2C0 and ADC (host/emulated_rp2040). Skipped, with one reason, when no UF2 is supplied
($PAGERLESS_RP2_UF2 or --rp2-image)."""
from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import pytest

from host.device import ports
from host.sensors import bme280, units

pytestmark = pytest.mark.slow
FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"
RP2_PWRON_RESET, RP2_WDT_RESET = 1, 3  # ports/rp2/modmachine.c

READ_ALL = """
import machine, time, ubinascii, json
from sensors.bme280 import BME280
from sensors.mpu6050 import MPU6050
from sensors.sht31 import SHT31
from sensors.analog import Analog
i2c = machine.I2C(0, sda=machine.Pin(4), scl=machine.Pin(5))
drivers = (("bme280", BME280(i2c)), ("mpu6050", MPU6050(i2c)), ("sht31", SHT31(i2c)),
           ("analog", Analog(machine.ADC(machine.Pin(26)))))
def read_all():
    out = {}
    for name, drv in drivers:
        buf = bytearray(drv.SAMPLE_SIZE)
        drv.start()
        time.sleep_ms(20)
        drv.read_into(buf)
        out[name] = [ubinascii.hexlify(buf).decode(), ubinascii.hexlify(drv.calibration()).decode(), drv.config()]
    return json.dumps(out)
"""


def _put_files(exec_, port: str, files: dict[str, bytes]) -> None:
    """Write files into the board's littlefs through the raw REPL (one exec per file)."""
    for name, data in files.items():
        exec_(port, f"f = open({name!r}, 'wb')\nf.write({data!r})\nf.close()")


@pytest.fixture
def erp(erp_factory):
    return erp_factory()


def test_the_real_rp2_port_boots_and_is_found_by_name(erp, board_exec):
    assert ports.resolve_port("emulated_rp2040", "emulated_rp2040") == erp.port
    out = board_exec(erp.port, "import sys, machine\nprint(sys.platform, sys.maxsize, machine.reset_cause())")
    assert out.split() == ["rp2", str(2**31 - 1), str(RP2_PWRON_RESET)]
    print(f"boot to USB enumeration: {erp.boot_seconds:.2f} s wall")


def test_scan_finds_the_three_chips_and_loses_an_unplugged_one(erp, board_exec):
    scan = "import machine\nprint(machine.I2C(0, sda=machine.Pin(4), scl=machine.Pin(5)).scan())"
    assert json.loads(board_exec(erp.port, scan)) == [0x44, 0x68, 0x76]
    erp.unplug("bme280")
    assert json.loads(board_exec(erp.port, scan)) == [0x44, 0x68]
    erp.replug("bme280")


def test_each_driver_reads_its_chip_models_truth(erp, board_exec):
    sensors = {f"sensors/{p.name}": p.read_bytes() for p in sorted((FIRMWARE / "sensors").glob("*.py"))}
    board_exec(erp.port, "import os\ntry:\n    os.mkdir('sensors')\nexcept OSError:\n    pass")
    _put_files(board_exec, erp.port, sensors)
    board_exec(erp.port, READ_ALL, timeout=60)
    for _ in range(20):  # until the BME280's first normal-mode result is in
        raw = bytes.fromhex(json.loads(board_exec(erp.port, "print(read_all())", timeout=60))["bme280"][0])
        if struct.unpack(">IIH", raw)[1] != bme280.RAW_SKIPPED_TP:
            break
    for chip in ("bme280", "mpu6050", "analog"):
        erp.freeze(chip, True)
    out = json.loads(board_exec(erp.port, "print(read_all())", timeout=60))
    phys = {k: units.to_physical(k, bytes.fromhex(raw), bytes.fromhex(cal), cfg)
            for k, (raw, cal, cfg) in out.items()}
    bme, sht, mpu = erp.chip("bme280").truth(), erp.chip("sht31").truth(), erp.chip("mpu6050").truth()
    assert phys["bme280"]["temperature_c"][0] == pytest.approx(bme["temperature_c"], abs=0.01)
    assert phys["bme280"]["pressure_pa"][0] == pytest.approx(bme["pressure_pa"], abs=2.0)
    assert phys["bme280"]["humidity_rh"][0] == pytest.approx(bme["humidity_rh"], abs=0.05)
    assert phys["sht31"]["temperature_c"][0] == pytest.approx(sht["temperature_c"], abs=0.02)
    assert phys["sht31"]["humidity_rh"][0] == pytest.approx(sht["humidity_rh"], abs=0.02)
    for a in "xyz":
        assert phys["mpu6050"][f"accel_{a}_g"][0] == pytest.approx(mpu[f"accel_{a}_mps2"] / 9.80665, abs=2 / 16384)
    v = phys["analog"]["voltage_v"][0]
    # the RP2040 converts to 12 bits: one code is 3.3 V / 4096 = 0.8 mV
    assert v == pytest.approx(erp.chip("analog").truth()["voltage_v"], abs=0.002)


def test_i2c_faults_surface_as_the_rp2_ports_errors(erp, board_exec):
    code = ("import machine\ni2c = machine.I2C(0, sda=machine.Pin(4), scl=machine.Pin(5), timeout=5000)\n"
            "def probe():\n    try:\n        i2c.readfrom_mem(0x68, 0x75, 1)\n        return 'ok'\n"
            "    except OSError as e:\n        return e.errno\nprint(probe())")
    assert board_exec(erp.port, code).split() == ["ok"]
    erp.unplug("mpu6050")
    assert board_exec(erp.port, "print(probe())").split() == ["5"]  # EIO: rp2 maps every NACK to it
    erp.replug("mpu6050")
    erp.set_bus_stuck(True)
    assert board_exec(erp.port, "print(probe())", timeout=60).split() == ["110"]  # ETIMEDOUT
    erp.set_bus_stuck(False)
    erp.set_wrong_id("mpu6050", True)
    assert board_exec(erp.port, "print(i2c.readfrom_mem(0x68, 0x75, 1)[0])").split() != ["104"]


def _cause_after_reset(exec_, port: str, trigger: str | None, board=None, timeout: float = 60.0) -> int:
    """Run `trigger` (or press RESET on `board`), wait until RAM is gone, return reset_cause()."""
    exec_(port, "marker = 1")
    if trigger is not None:
        exec_(port, trigger)
    else:
        board.reset()
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        gone, cause = exec_(port, "import machine\nprint('marker' not in globals(), machine.reset_cause())").split()
        if gone == "True":
            return int(cause)
        time.sleep(0.2)
    raise AssertionError(f"the board did not reset within {timeout} s")


def test_machine_reset_and_the_watchdog_come_from_the_emulated_chip(erp, exec_when_back):
    reset_soon = ("import machine\nmachine.Timer(period=50, mode=machine.Timer.ONE_SHOT, "
                  "callback=lambda t: machine.reset())")
    assert _cause_after_reset(exec_when_back, erp.port, reset_soon) == RP2_WDT_RESET
    never_fed = "import machine\nw = machine.WDT(timeout=200)"
    assert _cause_after_reset(exec_when_back, erp.port, never_fed) == RP2_WDT_RESET
    # the RESET button (RUN pin): the rp2 port reports anything but a watchdog reboot as power-on
    assert _cause_after_reset(exec_when_back, erp.port, None, board=erp) == RP2_PWRON_RESET


def test_the_flash_filesystem_persists_across_a_restart_of_the_runner(erp_factory, tmp_path, board_exec,
                                                                       exec_when_back):
    folder = tmp_path / "persistent"
    first = erp_factory(folder)
    board_exec(first.port, "f = open('kept.txt', 'w')\nf.write('littlefs on flash.bin')\nf.close()")
    first.stop()
    assert (folder / "flash.bin").stat().st_size == 2 * 1024 * 1024
    second = erp_factory(folder)
    assert exec_when_back(second.port, "print(open('kept.txt').read())").strip() == "littlefs on flash.bin"
