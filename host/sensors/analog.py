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

from host.sensors.chip import AnalogChip, Clock, Drift
from host.sensors.units import require

CHANNEL_UNITS = (("voltage_v", "V"),)


def convert(rec: np.ndarray, calibration: bytes, config: dict) -> dict[str, np.ndarray]:
    vref_mv = require(config, "vref_mv", "analog")
    full_scale = float(config.get("full_scale", 65535))
    return {"voltage_v": rec["voltage"].astype(np.float64) * (vref_mv / 1000.0) / full_scale}


class AnalogSource(AnalogChip):
    """Each ``read_u16`` is one conversion at the clock's current time."""

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
        self._count = 0
        self._last_code: int | None = None
        self._voltage = math.nan

    def read_u16(self) -> int:
        if self._frozen and self._last_code is not None:
            return self._last_code
        rng = self._rng("noise", self._count)
        self._count += 1
        volts = min(self.vref_v, max(0.0, self._signal(self._clock()) + rng.gauss(0.0, 0.001)))
        code12 = min(4095, int(volts / self.vref_v * 4096.0))
        self._voltage = volts
        self._last_code = (code12 << 4) | (code12 >> 8)
        return self._last_code

    def truth(self) -> dict[str, float]:
        """Voltage behind the most recent conversion (NaN before the first one)."""
        return {"voltage_v": self._voltage}


CHIP = AnalogSource
