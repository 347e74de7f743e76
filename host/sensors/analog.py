"""Analog input (firmware/sensors/analog.py): volts from ``read_u16`` codes, and the simulated source.

Conversion: voltage_v = raw * vref_mv / 1000 / full_scale, with the driver's ``config()``.

The simulated source is a slowly wandering voltage seen through a 12-bit converter: ``read_u16``
scales the 12-bit code to 16 bits the way MicroPython's rp2 port does (``code << 4 | code >> 8``),
so full scale is exactly 65535 and the low nibble is not free noise.
"""

from __future__ import annotations

import math
import time

import numpy as np

from host.sensors.chip import AnalogChip, Clock, Drift, NoiseTable
from host.sensors.units import require

CHANNEL_UNITS = (("voltage_v", "V"),)


def convert(rec: np.ndarray, calibration: bytes, config: dict) -> dict[str, np.ndarray]:
    vref_mv = require(config, "vref_mv", "analog")
    full_scale = float(config.get("full_scale", 65535))
    return {"voltage_v": rec["voltage"].astype(np.float64) * (vref_mv / 1000.0) / full_scale}


_NOISE_V = 0.001  # 1 mV rms of input noise: about 1.2 LSB at 3.3 V


class AnalogSource(AnalogChip):
    """One conversion at a time (``read_u16``, at the clock's current time) or a block of them
    (``codes12``, at given board times: the virtual board's free-running ADC).  Both are the same
    function of (time, conversion index), so a block split anywhere gives the same codes."""

    KIND = "analog"

    def __init__(self, seed: int = 0, clock: Clock = time.monotonic, vref_mv: int = 3300) -> None:
        if vref_mv <= 0:
            raise ValueError(f"analog: vref_mv must be positive, got {vref_mv}")
        super().__init__(seed, clock)
        self.vref_v = vref_mv / 1000.0
        env = self._rng("env", 0)
        # A sensor output (e.g. a thermistor divider) kept well inside the rails.
        self._signal = Drift(env, 0.25 * self.vref_v, 0.75 * self.vref_v,
                             ((0.05 * self.vref_v, 60.0), (0.01 * self.vref_v, 7.0)))
        self._noise = NoiseTable(self._rng("noise", 0), _NOISE_V)  # by conversion index
        self._count = 0
        self._last_code: int | None = None
        self._voltage = math.nan

    def codes12(self, t: np.ndarray, index: np.ndarray) -> np.ndarray:
        """12-bit codes (uint16) of the conversions `index` taken at board times `t` (seconds)."""
        if self._frozen and self._last_code is not None:
            return np.full(len(t), self._last_code >> 4, np.uint16)
        volts = np.clip(self._signal.at(t) + self._noise(index), 0.0, self.vref_v)
        codes = np.minimum(4095, (volts / self.vref_v * 4096.0).astype(np.int64)).astype(np.uint16)
        if len(codes):
            self._voltage = float(volts[-1])
            self._last_code = (int(codes[-1]) << 4) | (int(codes[-1]) >> 8)
        return codes

    def read_u16(self) -> int:
        if self._frozen and self._last_code is not None:
            return self._last_code
        code12 = int(self.codes12(np.array([self._clock()]), np.array([self._count]))[0])
        self._count += 1
        return (code12 << 4) | (code12 >> 8)

    def truth(self) -> dict[str, float]:
        """Voltage behind the most recent conversion (NaN before the first one)."""
        return {"voltage_v": self._voltage}


CHIP = AnalogSource
