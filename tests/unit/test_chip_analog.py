"""Analog source behind the virtual board's machine.ADC."""

import pytest

from host import sensors
from host.sensors.analog import AnalogSource


class FakeClock:
    def __init__(self, t=0.0):
        self.t = t

    def __call__(self):
        return self.t


def run(seed, vref_mv=3300, n=50):
    clock = FakeClock()
    src = AnalogSource(seed=seed, clock=clock, vref_mv=vref_mv)
    out = []
    for i in range(n):
        clock.t = i * 0.37
        out.append((src.read_u16(), src.truth()["voltage_v"]))
    return out


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("vref_mv", [3300, 1100])
def test_range_and_scaling(seed, vref_mv):
    vref = vref_mv / 1000
    for code, volts in run(seed, vref_mv):
        assert 0 <= code <= 65535
        assert 0.2 * vref < volts < 0.8 * vref, "well inside the rails"
        code12 = code >> 4
        assert code & 0x0F == code12 >> 8, "12-bit code scaled like rp2's read_u16"
        assert abs(code12 - volts / vref * 4096) < 1.0


def test_determinism_and_seed_dependence():
    assert run(3) == run(3)
    assert run(3) != run(4)


def test_freeze():
    clock = FakeClock()
    src = AnalogSource(seed=1, clock=clock)
    held = src.read_u16()
    src.freeze(True)
    for i in range(1, 10):
        clock.t = i * 5.0
        assert src.read_u16() == held
    src.freeze(False)
    codes = set()
    for i in range(10, 20):
        clock.t = i * 5.0
        codes.add(src.read_u16())
    assert len(codes) > 1


def test_truth_before_first_read_is_nan_and_registry():
    import math

    assert sensors.kind("analog").chip is AnalogSource
    assert math.isnan(AnalogSource(clock=FakeClock()).truth()["voltage_v"])
    with pytest.raises(ValueError):
        AnalogSource(vref_mv=0)
