"""Common ground for the simulated chips: the NACK signal, the I2C chip and analog source
interfaces, seeded randomness and slow drift. Each kind's model lives in ``host/sensors/<kind>.py``.

Chips are lazy: nothing runs between transactions. Each transaction reads the injected clock and
works out what the silicon would have done since the last one, so a fake clock drives them in tests
and a long pause costs nothing.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable

import numpy as np

Clock = Callable[[], float]


class Nack(Exception):
    """The chip did not acknowledge; the bus turns this into ``OSError(EIO)``."""


class I2CChip:
    """Register-level model of one I2C device; subclasses follow their datasheet."""

    KIND = ""
    DEFAULT_ADDRESS = 0
    ADDRESSES: tuple[int, ...] = ()

    def __init__(self, address: int, seed: int = 0, clock: Clock = time.monotonic,
                 env: "Environment | None" = None) -> None:
        # Only the addresses the address pin can select: a board definition with any other value is a
        # wiring mistake that real hardware would also reveal (nothing answers).
        if self.ADDRESSES and address not in self.ADDRESSES:
            wanted = ", ".join(f"0x{a:02x}" for a in self.ADDRESSES)
            raise ValueError(f"{self.KIND}: address 0x{address:02x} is not selectable (use {wanted})")
        self.address = address
        self.seed = seed
        self._clock = clock
        self._frozen = False
        self._wrong_id = False
        # the air this chip sits in: its board's, shared with the other chips; alone, its own
        self.env = env if env is not None else Environment(seed)
        self.stretch_s = 0.0  # set by read(): how long the chip held SCL low before its data

    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def read(self, n: int) -> bytes:
        raise NotImplementedError

    def read_consumes(self) -> bool:
        """True when a read at the chip's current register takes data away (a FIFO port): a bus
        that reads ahead of the master would lose bytes there (host/emulated_rp2040/i2c_bridge.py
        then reads byte by byte).  Register windows and fixed outputs are safe to read ahead."""
        return False

    def freeze(self, frozen: bool) -> None:
        self._frozen = bool(frozen)

    def set_wrong_id(self, wrong: bool) -> None:
        self._wrong_id = bool(wrong)

    def truth(self) -> dict[str, float]:
        raise NotImplementedError

    def _rng(self, stream: str, index: int) -> random.Random:
        """A generator for conversion ``index``: counter-based, so values do not depend on how many
        conversions were skipped over while nobody was looking (str seeds hash with SHA-512, stable
        across runs and Python versions, unlike ``hash()``)."""
        return random.Random(f"{self.KIND}:{self.seed}:{stream}:{index}")


class AnalogChip:
    """A signal behind a ``machine.ADC``: the virtual board calls ``read_u16`` for each conversion."""

    KIND = ""
    _rng = I2CChip._rng  # same counter-based noise scheme as the I2C chips

    def __init__(self, seed: int = 0, clock: Clock = time.monotonic) -> None:
        self.seed = seed
        self._clock = clock
        self._frozen = False

    def read_u16(self) -> int:
        raise NotImplementedError

    def codes12(self, t: np.ndarray, index: np.ndarray) -> np.ndarray:
        """12-bit codes of conversions `index` taken at board times `t` (a free-running ADC)."""
        raise NotImplementedError

    def freeze(self, frozen: bool) -> None:
        self._frozen = bool(frozen)

    def truth(self) -> dict[str, float]:
        raise NotImplementedError


class Drift:
    """A slowly varying quantity: a base value plus a few seeded sinusoids.

    A sum of sinusoids is a closed-form function of time, so any instant can be evaluated directly and
    the steepest slope is bounded by sum(amplitude * 2*pi / period).
    """

    __slots__ = ("base", "_terms")

    def __init__(self, rng: random.Random, low: float, high: float, terms: tuple[tuple[float, float], ...]):
        self.base = rng.uniform(low, high)
        self._terms = tuple(
            (amp, 2.0 * math.pi / (period * rng.uniform(0.8, 1.25)), rng.uniform(0.0, 2.0 * math.pi))
            for amp, period in terms
        )

    def __call__(self, t: float) -> float:
        value = self.base
        for amp, omega, phase in self._terms:
            value += amp * math.sin(omega * t + phase)
        return value

    def at(self, t: np.ndarray) -> np.ndarray:
        """The same function at many instants at once (a block of ADC conversions)."""
        value = np.full(np.shape(t), self.base)
        for amp, omega, phase in self._terms:
            value += amp * np.sin(omega * t + phase)
        return value

    def rate(self, t: float) -> float:
        """Time derivative, used where a physical rate must match the motion (gyro vs. tilt)."""
        return sum(amp * omega * math.cos(omega * t + phase) for amp, omega, phase in self._terms)

    def rate_at(self, t: np.ndarray) -> np.ndarray:
        """``rate`` at many instants at once."""
        value = np.zeros(np.shape(t))
        for amp, omega, phase in self._terms:
            value += amp * omega * np.cos(omega * t + phase)
        return value

    def max_rate(self) -> float:
        return sum(abs(amp) * omega for amp, omega, _ in self._terms)


class NoiseTable:
    """Seeded Gaussian draws picked by a hash of an integer index (Fibonacci hashing into 65,536
    draws): counter based, so a sample's noise does not depend on how samples were grouped into
    blocks, and a block of samples draws its noise in one numpy expression."""

    BITS = 16
    _GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # consecutive indices land far apart in the table

    def __init__(self, rng: random.Random, sigma: float = 1.0) -> None:
        self._table = np.random.default_rng(rng.getrandbits(64)).normal(0.0, sigma, 1 << self.BITS)

    def __call__(self, index: np.ndarray) -> np.ndarray:
        return self._table[(index.astype(np.uint64) * self._GOLDEN) >> np.uint64(64 - self.BITS)]


class BoardClock:
    """The board's own time in seconds: 0 until the board is powered on (``start``), then the time
    since. Chips read this, never the host's clock, so readings depend on the seed, the scenario and
    when in the board's life they are taken, not on when the host happens to run."""

    __slots__ = ("_source", "_t0")

    def __init__(self, source: Clock = time.monotonic) -> None:
        self._source = source
        self._t0: float | None = None

    def start(self, source: Clock | None = None) -> None:
        """Power-on: time 0 is now (of `source`, if given: tests drive a board with a fake clock)."""
        if source is not None:
            self._source = source
        self._t0 = self._source()

    def __call__(self) -> float:
        return 0.0 if self._t0 is None else self._source() - self._t0


class Environment:
    """The air around one board, shared by all its chips: temperature (degC), relative humidity
    (%RH) and pressure (Pa) as functions of board time, seeded.

    Indoor dynamics: a room's slow temperature cycle (+-1 degC over hours) with a heating or
    ventilation cycle on top (+-0.25 degC, ~30 min); humidity +-3 %RH over hours; pressure from the
    weather, at most ~2 hPa per hour (swings of +-1.5 hPa over half a day, +-0.4 hPa over hours) and a
    building's +-1 Pa breathing over minutes. Each chip adds its own fixed offset within its
    datasheet accuracy, and its own noise.
    """

    __slots__ = ("temperature", "humidity", "pressure")

    def __init__(self, seed: int = 0) -> None:
        rng = random.Random(f"environment:{seed}")
        self.temperature = Drift(rng, 19.0, 26.0, ((1.0, 21600.0), (0.25, 1800.0), (0.01, 120.0)))
        self.humidity = Drift(rng, 35.0, 55.0, ((3.0, 28800.0), (0.8, 1500.0), (0.1, 130.0)))
        self.pressure = Drift(rng, 98000.0, 103000.0, ((150.0, 43200.0), (40.0, 10800.0), (1.0, 600.0)))
