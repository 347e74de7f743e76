"""BME280 driver against a recording fake bus (register contents from the datasheets)."""
import importlib.util
import struct
from pathlib import Path

import pytest

from firmware.sensors import bme280 as bme280_mod
from firmware.sensors.bme280 import BME280

_spec = importlib.util.spec_from_file_location(
    "pagerless_fakebus", Path(__file__).resolve().parents[1] / "micropython" / "fakebus.py")
fakebus = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fakebus)

# Bosch's worked example (BMP280 datasheet 3.12, same T/P formulas in the BME280) + humidity trims
CAL_A = struct.pack("<HhhHhhhhhhhh", 27504, 26435, -1000, 36477, -10685, 3024, 2855, 140, -7,
                    15500, -14600, 6000) + bytes([0x00, 75])
CAL_B = struct.pack("<hB", 362, 0) + bytes([313 >> 4, (313 & 0xF) | ((50 & 0xF) << 4), 50 >> 4, 30])
ADC_P, ADC_T, ADC_H = 415148, 519888, 30000


def make_chip(chip_id=0x60):
    chip = fakebus.RegisterChip({0xD0: chip_id})
    chip.regs[0x88:0x88 + 26] = CAL_A
    chip.regs[0xE1:0xE1 + 7] = CAL_B
    burst = bytes([ADC_P >> 12, (ADC_P >> 4) & 0xFF, (ADC_P & 0xF) << 4,
                   ADC_T >> 12, (ADC_T >> 4) & 0xFF, (ADC_T & 0xF) << 4,
                   ADC_H >> 8, ADC_H & 0xFF])
    chip.regs[0xF7:0xFF] = burst
    return chip


@pytest.fixture
def bus():
    b = fakebus.FakeI2C()
    b.attach(0x76, make_chip())
    b.log = []
    return b


def writes(bus):
    """Register writes as (register, data): a write of [register, data...] in one buffer (how the
    driver writes, as writeto_mem allocates on rp2) or writeto_mem."""
    return [(e[2][0], e[2][1:]) if e[0] == "writeto" else (e[2], e[3])
            for e in bus.log if e[0] == "writeto_mem" or (e[0] == "writeto" and len(e[2]) > 1)]


def test_driver_bme280_class_attributes():
    assert BME280.KIND == "bme280"
    assert struct.calcsize(BME280.SAMPLE_FORMAT) == BME280.SAMPLE_SIZE == 10
    assert [n for n, _ in BME280.CHANNELS] == ["pressure", "temperature", "humidity"]
    assert BME280.MIN_PERIOD_US > 0


def test_driver_bme280_init_writes_normal_mode(bus):
    dev = BME280(bus, address=0x76)
    # sleep first (config is ignored in normal mode), ctrl_hum, config, then ctrl_meas to latch
    assert writes(bus) == [
        (0xF4, bytes([0b001_001_00])),
        (0xF2, bytes([0b001])),
        (0xF5, bytes([0b000_000_00])),
        (0xF4, bytes([0b001_001_11])),
    ]
    assert dev.calibration() == CAL_A + CAL_B
    assert dev.config()["mode"] == "normal"
    assert dev.MIN_PERIOD_US == 9300 + 500


def test_driver_bme280_init_writes_settings(bus):
    dev = BME280(bus, 0x76, temperature_oversampling=2, pressure_oversampling=16,
                 humidity_oversampling=0, iir_filter=16, standby_us=1000000)
    assert writes(bus)[1:] == [
        (0xF2, bytes([0b000])),
        (0xF5, bytes([(5 << 5) | (4 << 2)])),
        (0xF4, bytes([(2 << 5) | (5 << 2) | 3])),
    ]
    cfg = dev.config()
    assert cfg["pressure_oversampling"] == 16 and cfg["iir_filter"] == 16 and cfg["standby_us"] == 1000000
    assert cfg["measure_time_max_us"] == 1250 + 2300 * 2 + 2300 * 16 + 575


def test_driver_bme280_read_into(bus):
    dev = BME280(bus)
    buf = bytearray(BME280.SAMPLE_SIZE)
    dev.start()  # normal mode: no bus traffic
    n = len(bus.log)
    dev.start()
    assert len(bus.log) == n
    dev.read_into(memoryview(buf))
    assert struct.unpack(BME280.SAMPLE_FORMAT, buf) == (ADC_P, ADC_T, ADC_H)
    assert bus.log[-1] == ("readfrom_mem_into", 0x76, 0xF7, 8)


def test_driver_bme280_chip_id_wrong():
    b = fakebus.FakeI2C()
    b.attach(0x77, make_chip(chip_id=0x58))  # a BMP280
    with pytest.raises(OSError, match="BME280 not found at 0x77"):
        BME280(b, address=0x77)


def test_driver_bme280_absent():
    with pytest.raises(OSError, match="0x76") as e:
        BME280(fakebus.FakeI2C())
    assert e.value.errno == 19


@pytest.mark.parametrize("kwargs", [
    {"address": 0x40}, {"mode": "continuous"}, {"temperature_oversampling": 3},
    {"pressure_oversampling": 32}, {"humidity_oversampling": -1}, {"iir_filter": 1},
    {"standby_us": 1000},
])
def test_driver_bme280_bad_settings_touch_nothing(bus, kwargs):
    with pytest.raises(ValueError):
        BME280(bus, **kwargs)
    assert bus.log == []


def test_driver_bme280_free_running_only_in_normal_mode(bus):
    # FREE_RUNNING tells the sampler it may skip start(): true only where start() does nothing
    assert BME280(bus).FREE_RUNNING is True
    dev = BME280(bus, mode="forced")
    assert dev.FREE_RUNNING is False
    bus.log.clear()
    dev.start()
    assert bus.log  # forced mode: start() triggers the conversion


def test_driver_bme280_forced_mode(bus):
    dev = BME280(bus, mode="forced", pressure_oversampling=4)
    assert writes(bus)[-1] == (0xF4, bytes([(1 << 5) | (3 << 2) | 0]))  # asleep until start()
    bus.log.clear()
    dev.start()
    assert writes(bus) == [(0xF4, bytes([(1 << 5) | (3 << 2) | 1]))]
    buf = bytearray(10)
    dev.read_into(buf)
    assert ("readfrom_mem_into", 0x76, 0xF3, 1) in bus.log  # status polled
    assert struct.unpack(">IIH", buf) == (ADC_P, ADC_T, ADC_H)
    assert dev.MIN_PERIOD_US == dev.config()["measure_time_max_us"]


def test_driver_bme280_forced_mode_times_out(bus, monkeypatch):
    dev = BME280(bus, mode="forced")
    bus.chips[0x76].regs[0xF3] = 0x08  # measuring forever
    clock = iter(range(0, 10**6, 3))
    monkeypatch.setattr(bme280_mod, "ticks_ms", lambda: next(clock))
    with pytest.raises(OSError) as e:
        dev.read_into(bytearray(10))
    assert e.value.errno == 110


def test_driver_bme280_read_bus_error(bus):
    dev = BME280(bus)
    del bus.chips[0x76]
    with pytest.raises(OSError):
        dev.read_into(bytearray(10))


def test_driver_bme280_reset_rewrites_config(bus):
    dev = BME280(bus, iir_filter=4)
    bus.log.clear()
    dev.reset()
    w = writes(bus)
    assert w[0] == (0xE0, b"\xb6")
    assert w[1:] == [(0xF4, b"\x24"), (0xF2, b"\x01"), (0xF5, bytes([2 << 2])), (0xF4, b"\x27")]
