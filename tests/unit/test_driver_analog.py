"""Analog driver with a fake ADC."""
import struct

import pytest

from firmware.sensors.analog import Analog


class ADC:
    def __init__(self, value):
        self.value = value

    def read_u16(self):
        return self.value


def test_driver_analog_class_attributes():
    assert Analog.KIND == "analog"
    assert struct.calcsize(Analog.SAMPLE_FORMAT) == Analog.SAMPLE_SIZE == 2
    assert Analog.CHANNELS == (("voltage", "raw"),)
    assert Analog.FREE_RUNNING is True  # start() is a no-op: the sampler skips it


@pytest.mark.parametrize("value", [0, 1, 0x1234, 0x8000, 0xFFFF])
def test_driver_analog_read_into(value):
    adc = ADC(value)
    dev = Analog(adc, vref_mv=3300)
    buf = bytearray(2)
    dev.start()
    dev.read_into(memoryview(buf))
    assert struct.unpack(Analog.SAMPLE_FORMAT, buf) == (value,)
    assert dev.calibration() == b""
    assert dev.config() == {"vref_mv": 3300, "full_scale": 65535}


@pytest.mark.parametrize("vref", [0, -5, 3.3, 20000, "3300"])
def test_driver_analog_bad_vref(vref):
    with pytest.raises(ValueError):
        Analog(ADC(0), vref_mv=vref)


def test_driver_analog_not_an_adc():
    with pytest.raises(TypeError):
        Analog(object())


def test_driver_analog_out_of_range_value():
    with pytest.raises(OSError):
        Analog(ADC(70000))
