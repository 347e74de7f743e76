"""Drivers written from the datasheets read correct values from the simulated chips, through the
real VM and the machine shim; and a loop of I2C reads through the shim allocates nothing."""
from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import pytest

from host.sensors import bme280, units
from host.testkit.probes import I2C_READ_LOOP as HEAPLOCK_LOOP

pytestmark = pytest.mark.virtual_board
FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"

READ_ALL = """
import machine, ubinascii, json
from sensors.bme280 import BME280
from sensors.mpu6050 import MPU6050
from sensors.sht31 import SHT31
from sensors.analog import Analog
i2c = machine.I2C(0)
out = {}
drivers = (("bme280", BME280(i2c)), ("mpu6050", MPU6050(i2c, accel_fs_g=%(fs)d)),
           ("sht31", SHT31(i2c)), ("analog", Analog(machine.ADC(machine.Pin(26)))))
def read_all():
    for name, drv in drivers:
        buf = bytearray(drv.SAMPLE_SIZE)
        drv.start()
        time.sleep_ms(20)
        drv.read_into(buf)
        out[name] = [ubinascii.hexlify(buf).decode(), ubinascii.hexlify(drv.calibration()).decode(), drv.config()]
    return json.dumps(out)
read_all()
"""


@pytest.fixture
def board_with_drivers(vboard):
    (vboard.fs / "sensors").copy_from(FIRMWARE / "sensors")
    vboard.power_cycle()  # the board sees files written from the host from its next boot
    vboard.wait_boot(2)
    return vboard


@pytest.mark.parametrize("accel_fs", [2, 8])
def test_datasheet_drivers_read_the_simulated_physics(board_with_drivers, board_exec, accel_fs):
    b = board_with_drivers
    board_exec(b.port, "import time\n" + READ_ALL % {"fs": accel_fs})  # init, first conversions
    for _ in range(20):  # until the BME280's first normal-mode result is in (0x80000 before it)
        raw = bytes.fromhex(json.loads(board_exec(b.port, "print(read_all())"))["bme280"][0])
        if struct.unpack(">IIH", raw)[1] != bme280.RAW_SKIPPED_TP:  # adc_T
            break
    for chip in ("bme280", "mpu6050", "analog"):  # hold the physics still while we compare
        b.freeze(chip, True)
    out = json.loads(board_exec(b.port, "print(read_all())"))
    phys = {k: units.to_physical(k, bytes.fromhex(raw), bytes.fromhex(cal), cfg)
            for k, (raw, cal, cfg) in out.items()}
    bme, sht, mpu = b.chip("bme280").truth(), b.chip("sht31").truth(), b.chip("mpu6050").truth()
    assert phys["bme280"]["temperature_c"][0] == pytest.approx(bme["temperature_c"], abs=0.01)
    assert phys["bme280"]["pressure_pa"][0] == pytest.approx(bme["pressure_pa"], abs=2.0)
    assert phys["bme280"]["humidity_rh"][0] == pytest.approx(bme["humidity_rh"], abs=0.05)
    assert phys["sht31"]["temperature_c"][0] == pytest.approx(sht["temperature_c"], abs=0.01)
    assert phys["sht31"]["humidity_rh"][0] == pytest.approx(sht["humidity_rh"], abs=0.01)
    g = [phys["mpu6050"][f"accel_{a}_g"][0] for a in "xyz"]
    lsb = {2: 16384, 8: 4096}[accel_fs]
    for a, val in zip("xyz", g):
        assert val == pytest.approx(mpu[f"accel_{a}_mps2"] / 9.80665, abs=2.0 / lsb)
    assert math.sqrt(sum(v * v for v in g)) == pytest.approx(1.0, abs=0.1)
    v = phys["analog"]["voltage_v"][0]
    assert 0.0 <= v <= 3.3 and v == pytest.approx(b.chip("analog").truth()["voltage_v"], abs=0.01)


def test_drivers_refuse_an_absent_or_wrong_chip(board_with_drivers, board_exec):
    b = board_with_drivers
    b.unplug("bme280")
    b.set_wrong_id("mpu6050", True)
    out = board_exec(b.port, (
        "import machine\nfrom sensors.bme280 import BME280\nfrom sensors.mpu6050 import MPU6050\n"
        "i2c = machine.I2C(0)\n"
        "for cls in (BME280, MPU6050):\n"
        "    try:\n        cls(i2c)\n    except OSError as e:\n        print(e)\n"))
    assert "0x76" in out and "0x68" in out




def test_i2c_reads_through_the_shim_allocate_nothing(vboard, board_exec):
    n = 2_000
    out = board_exec(vboard.port, HEAPLOCK_LOOP % n, timeout=60).split()
    assert out[0] == "OK"
    rate = n / (int(out[1]) / 1e6)
    print(f"I2C transactions through the shim: {rate:,.0f}/s")
    assert rate <= 2564 * 1.05  # a 400 kHz bus's wire time (2,564 14-byte reads/s), never faster (a busy host only slows it)


def test_nack_paths_allocate_nothing_either(vboard, board_exec):
    board_exec(vboard.port, "import machine\nmachine.I2C(0).writeto_mem(0x68, 0x6B, b'\\x01')")
    vboard.set_nack_rate("mpu6050", 0.5)
    code = HEAPLOCK_LOOP.replace("i2c.writeto_mem(0x68, 0x6B, b'\\x01')", "").replace(
        "        r(0x68, 0x3B, buf)", "        try:\n            r(0x68, 0x3B, buf)\n        except OSError:\n            pass")
    assert board_exec(vboard.port, code % 2000, timeout=60).split()[0] == "OK"
    assert vboard.buses.counters["nacks"] > 500


def test_instant_bus_mode_answers_repeat_reads_inside_the_vm(vboard_factory, board_exec):
    """Benchmarks only: the first read of each register goes to the chip, repeats are served from
    the VM's copy, so a loop measures the firmware, not the simulated bus."""
    b = vboard_factory(bus_mode="instant")
    out = board_exec(b.port, HEAPLOCK_LOOP % 10_000, timeout=60).split()
    assert out[0] == "OK"
    assert b.status()["i2c_transactions"] < 20
    rate = 10_000 / (int(out[1]) / 1e6)
    assert rate > 50_000


FIFO_OVERFLOW_ONCE = """
import machine, time
from sensors.mpu6050 import MPU6050
imu = MPU6050(machine.I2C(0))
imu.fifo_start()
time.sleep_ms(1500)  # 1 kHz x 14 B: the 1,024-byte FIFO overflows after ~73 ms
first = imu.fifo_overflowed()
imu.fifo_start()
time.sleep_ms(20)
print('OK', first, imu.fifo_overflowed(), imu.fifo_count())
"""


def test_instant_bus_mode_reads_int_status_from_the_chip(vboard_factory, board_exec):
    """INT_STATUS clears on read: the instant mode must not answer it from a copy. A cached one
    replayed a single FIFO overflow for ever (every IMU burst restarted, all its samples missing)."""
    b = vboard_factory(bus_mode="instant")
    (b.fs / "sensors").copy_from(FIRMWARE / "sensors")
    b.power_cycle()  # the board sees files written from the host from its next boot
    b.wait_boot(2)
    assert board_exec(b.port, FIFO_OVERFLOW_ONCE, timeout=60).split()[:3] == ["OK", "True", "False"]


ADC_INSTANT_LOOP = """
import machine, micropython
adc = machine.ADC(machine.Pin(26))
first = adc.read_u16()
def loop(n, r=adc.read_u16):
    same = 0
    for _ in range(n):
        if r() == first:
            same += 1
    return same
same = loop(2)  # a new global allocates: bind the name before the lock
micropython.heap_lock()
try:
    same = loop(%d)
finally:
    micropython.heap_unlock()
print('OK', same)
"""


def test_instant_bus_mode_answers_repeat_adc_reads_inside_the_vm(vboard_factory, board_exec):
    """An ADC's first reading goes to the chip model, repeats return that copy (allocation-free)."""
    b = vboard_factory(bus_mode="instant")
    n0 = b.status()["i2c_transactions"]
    out = board_exec(b.port, ADC_INSTANT_LOOP % 10_000, timeout=60).split()
    assert out == ["OK", "10000"]
    assert b.status()["i2c_transactions"] - n0 < 5


SHT31_INSTANT_LOOP = """
import machine, micropython, time
from sensors.sht31 import SHT31
i2c = machine.I2C(0)
sht = SHT31(i2c)
buf = bytearray(4)
def loop(n, start=sht.start, read=sht.read_into):
    bad = 0
    for _ in range(n):
        start()
        time.sleep_us(16000)
        try:
            read(buf)
        except OSError:
            bad += 1
    return bad
loop(2)
micropython.heap_lock()
try:
    bad = loop(%d)
finally:
    micropython.heap_unlock()
print('OK', bad, buf[0] | buf[1])
"""


def test_instant_bus_mode_answers_a_command_chip_by_its_last_command(vboard_factory, board_exec):
    """The SHT31's result read follows a measure command, its status read a status command: in
    instant mode each is answered from the copy made after that command (it used to skip every
    write once the chip had been read, so the result read NACKed and the stream went offline)."""
    b = vboard_factory(bus_mode="instant")
    (b.fs / "sensors").copy_from(FIRMWARE / "sensors")
    b.power_cycle()
    b.wait_boot(2)
    out = board_exec(b.port, SHT31_INSTANT_LOOP % 20, timeout=60).split()
    assert out[:2] == ["OK", "0"]  # every read under heap_lock passed its CRC check
    assert out[2] != "0"
    assert b.status()["i2c_transactions"] < 10


WRITES_UNDER_HEAP_LOCK = """
import machine, micropython
i2c = machine.I2C(0)
w, v = bytearray(b'\\x6b\\x01'), bytearray(b'\\x01')
i2c.writeto(0x68, w)
i2c.writeto_mem(0x68, 0x6B, v)
mem = ''
micropython.heap_lock()
try:
    i2c.writeto(0x68, w)
    try:
        i2c.writeto_mem(0x68, 0x6B, v)
        mem = 'no allocation'
    except MemoryError:
        mem = 'MemoryError'
finally:
    micropython.heap_unlock()
print(mem)
"""


@pytest.mark.parametrize(("profile", "writeto_mem"), [("rp2040", "MemoryError"), ("esp32", "no allocation")])
def test_writeto_mem_allocates_on_rp2_as_the_port_does(vboard_factory, board_exec, profile, writeto_mem):
    """rp2's I2C driver takes one buffer per transfer, so extmod joins writeto_mem's register
    address and data in a new one (m_new): under heap_lock a Pico raises MemoryError there (seen
    on the official UF2 in the emulated RP2040). A one-buffer writeto allocates on neither port."""
    b = vboard_factory(profile=profile)
    assert board_exec(b.port, WRITES_UNDER_HEAP_LOCK).strip() == writeto_mem


def test_driver_register_writes_allocate_nothing_on_rp2(board_with_drivers, board_exec):
    """The writes a running stream makes (a FIFO restart, a forced BME280 conversion) under heap_lock."""
    code = ("import machine, micropython\nfrom sensors.bme280 import BME280\nfrom sensors.mpu6050 import MPU6050\n"
            "i2c = machine.I2C(0)\nm = MPU6050(i2c)\nb = BME280(i2c, mode='forced')\nm.fifo_start()\nb.start()\n"
            "def run(n):\n    for _ in range(n):\n        m.fifo_start()\n        b.start()\n"
            "run(1)\nmicropython.heap_lock()\ntry:\n    run(20)\nfinally:\n    micropython.heap_unlock()\nprint('OK')")
    assert board_exec(board_with_drivers.port, code).strip() == "OK"
