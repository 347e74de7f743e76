"""SHT31 driver against a fake bus speaking the SHT3x-DIS command set."""
import importlib.util
import struct
from pathlib import Path

import pytest

from firmware.sensors import sht31 as sht31_mod
from firmware.sensors.sht31 import SHT31

_spec = importlib.util.spec_from_file_location(
    "pagerless_fakebus", Path(__file__).resolve().parents[1] / "micropython" / "fakebus.py")
fakebus = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fakebus)


@pytest.fixture
def bus():
    b = fakebus.FakeI2C()
    b.attach(0x44, fakebus.SHT31Chip(t_raw=0x6666, h_raw=0x8000))
    b.log = []
    return b


def test_driver_sht31_crc8_datasheet_example():
    assert sht31_mod._crc8(b"\xbe\xef", 0) == 0x92  # datasheet section 4.12
    assert sht31_mod._crc8(b"\x00\xbe\xef", 1) == 0x92
    assert fakebus.sht_crc8(b"\xbe\xef", 0, 2) == 0x92


def test_driver_sht31_class_attributes():
    assert SHT31.KIND == "sht31"
    assert struct.calcsize(SHT31.SAMPLE_FORMAT) == SHT31.SAMPLE_SIZE == 4
    assert SHT31.MIN_PERIOD_US >= 15500  # high repeatability max duration


def test_driver_sht31_init_reads_status_with_crc(bus):
    dev = SHT31(bus)
    assert bus.log == [("writeto", 0x44, b"\xf3\x2d"), ("readfrom_into", 0x44, 3)]
    assert dev.calibration() == b""
    assert dev.config()["repeatability"] == "high"


@pytest.mark.parametrize("rep,cmd,period", [
    ("high", b"\x24\x00", 16000), ("medium", b"\x24\x0b", 7000), ("low", b"\x24\x16", 5000)])
def test_driver_sht31_start_sends_single_shot(bus, rep, cmd, period):
    dev = SHT31(bus, repeatability=rep)
    bus.log.clear()
    dev.start()
    assert bus.log == [("writeto", 0x44, cmd)]
    assert dev.FREE_RUNNING is False  # the sampler must call start() before every read
    assert dev.MIN_PERIOD_US == period
    assert dev.MIN_PERIOD_US <= SHT31.MIN_PERIOD_US


def test_driver_sht31_read_into(bus):
    dev = SHT31(bus)
    buf = bytearray(4)
    dev.start()
    bus.log.clear()
    dev.read_into(memoryview(buf))
    assert bus.log == [("readfrom_into", 0x44, 6)]
    assert struct.unpack(">HH", buf) == (0x6666, 0x8000)


def test_driver_sht31_crc_mismatch_is_eio(bus):
    dev = SHT31(bus)
    bus.chips[0x44].corrupt = True
    dev.start()
    buf = bytearray(b"\xaa\xaa\xaa\xaa")
    with pytest.raises(OSError) as e:
        dev.read_into(buf)
    assert e.value.errno == 5
    assert buf == b"\xaa\xaa\xaa\xaa"  # nothing half-written


def test_driver_sht31_read_without_start_nacks(bus):
    dev = SHT31(bus)
    with pytest.raises(OSError):
        dev.read_into(bytearray(4))


def test_driver_sht31_absent():
    with pytest.raises(OSError, match="SHT31 not found at 0x45") as e:
        SHT31(fakebus.FakeI2C(), address=0x45)
    assert e.value.errno == 19


def test_driver_sht31_status_crc_wrong_is_not_found():
    class BadStatus(fakebus.SHT31Chip):
        def read_into(self, buf):
            super().read_into(buf)
            buf[2] ^= 0xFF

    b = fakebus.FakeI2C()
    b.attach(0x44, BadStatus())
    with pytest.raises(OSError, match="SHT31 not found at 0x44"):
        SHT31(b)


@pytest.mark.parametrize("kwargs", [{"address": 0x40}, {"repeatability": "ultra"}])
def test_driver_sht31_bad_settings_touch_nothing(bus, kwargs):
    with pytest.raises(ValueError):
        SHT31(bus, **kwargs)
    assert bus.log == []


def test_driver_sht31_reset(bus):
    dev = SHT31(bus)
    bus.log.clear()
    dev.reset()
    assert bus.log[0] == ("writeto", 0x44, b"\x30\xa2")
    assert bus.log[1:] == [("writeto", 0x44, b"\xf3\x2d"), ("readfrom_into", 0x44, 3)]
