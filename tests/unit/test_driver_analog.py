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


class Ring(ADC):
    """firmware/adcring.AdcRing's surface: what Analog hands the burst reader."""

    ring_bytes = 8192

    def __init__(self, value):
        super().__init__(value)
        self.sample_us = 0

    def configure(self, sample_us):
        if not 2 <= sample_us <= 1365:
            raise ValueError("sample_us must be an int in 2..1365")
        self.sample_us = sample_us

    def fifo_start(self):
        pass

    def fifo_stop(self):
        pass

    def fifo_count(self):
        return 0

    def fifo_read_into(self, buf):
        pass

    def fifo_overflowed(self):
        return False


def test_driver_analog_sample_us_reads_the_ring_as_a_fifo():
    ring = Ring(0x1234)
    dev = Analog(ring, vref_mv=3300, sample_us=50)
    assert (dev.FIFO_PERIOD_US, dev.FIFO_BYTES, dev.MIN_PERIOD_US, ring.sample_us) == (50, 8192, 50, 50)
    assert dev.fifo_count == ring.fifo_count and dev.fifo_read_into == ring.fifo_read_into
    assert dev.config() == {"vref_mv": 3300, "full_scale": 65535, "sample_us": 50}
    assert Analog.fifo_period(sample_us=50) == 50 and Analog.fifo_period() == 0
    plain = Analog(ring)  # without sample_us: read_u16 per sample, no FIFO
    assert getattr(plain, "FIFO_PERIOD_US", 0) == 0 and plain.MIN_PERIOD_US == 100


def test_driver_analog_sample_us_needs_a_ring_and_a_period_in_range():
    with pytest.raises(ValueError, match="DMA ring"):
        Analog(ADC(0), sample_us=50)
    with pytest.raises(ValueError, match="2..1365"):
        Analog(Ring(0), sample_us=1)
