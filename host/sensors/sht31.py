"""Sensirion SHT3x-DIS (SHT31, firmware/sensors/sht31.py): degC and %RH from raw codes, and the chip.

Conversion (datasheet 4.13): T = -45 + 175 * S_T / 65535 degC, RH = 100 * S_RH / 65535 %RH; the
chip is calibrated on die, so there is no calibration block.

The simulated chip speaks 16-bit commands and answers with CRC-8 protected words. Measurement
durations are the datasheet's maximum values (15.5/6.5/4.5 ms for high/medium/low repeatability).
Clock stretching: a read after a stretching command during the measurement returns the result and
sets ``stretch_s`` to the time SCL is held low until the measurement ends; the bus adds it to the
transaction's wire time (host/virtual_board/bus.py), as a real bus waits for the chip.
Noise: the datasheet's repeatability figures are 3 sigma (table 1, footnote 2), so sigma is a third
of 0.04/0.08/0.15 degC and 0.08/0.15/0.21 %RH for high/medium/low repeatability.
"""

from __future__ import annotations

import math
import time

import numpy as np

from host.sensors.chip import Clock, Environment, I2CChip, Nack

CHANNEL_UNITS = (("temperature_c", "degC"), ("humidity_rh", "%RH"))


def convert(rec: np.ndarray, calibration: bytes, config: dict) -> dict[str, np.ndarray]:
    return {
        "temperature_c": -45.0 + 175.0 * rec["temperature"].astype(np.float64) / 65535.0,
        "humidity_rh": 100.0 * rec["humidity"].astype(np.float64) / 65535.0,
    }


# --- the simulated chip --------------------------------------------------------------------------

# command -> (repeatability index 0 high / 1 medium / 2 low, clock stretching)
SINGLE_SHOT = {
    0x2400: (0, False), 0x240B: (1, False), 0x2416: (2, False),
    0x2C06: (0, True), 0x2C0D: (1, True), 0x2C10: (2, True),
}
# periodic mode: command -> (repeatability, measurements per second)
PERIODIC = {
    0x2032: (0, 0.5), 0x2024: (1, 0.5), 0x202F: (2, 0.5),
    0x2130: (0, 1.0), 0x2126: (1, 1.0), 0x212D: (2, 1.0),
    0x2236: (0, 2.0), 0x2220: (1, 2.0), 0x222B: (2, 2.0),
    0x2334: (0, 4.0), 0x2322: (1, 4.0), 0x2329: (2, 4.0),
    0x2737: (0, 10.0), 0x2721: (1, 10.0), 0x272A: (2, 10.0),
    0x2B32: (0, 4.0),  # ART: accelerated response time, 4 Hz
}
MEASURE_MAX_S = (0.0155, 0.0065, 0.0045)
NOISE_T = (0.04 / 3, 0.08 / 3, 0.15 / 3)  # 1 sigma, degC (the datasheet's repeatability is 3 sigma)
NOISE_RH = (0.08 / 3, 0.15 / 3, 0.21 / 3)  # 1 sigma, %RH
CMD_FETCH = 0xE000
CMD_BREAK = 0x3093
CMD_SOFT_RESET = 0x30A2
CMD_HEATER_ON = 0x306D
CMD_HEATER_OFF = 0x3066
CMD_READ_STATUS = 0xF32D
CMD_CLEAR_STATUS = 0x3041
CMD_READ_SERIAL = (0x3780, 0x3682)  # without / with clock stretching (later datasheet revisions)
# Alert limits (application note "SHT3x alert mode"): read command -> write command.
ALERT_READ = {0xE11F: 0x611D, 0xE114: 0x6116, 0xE109: 0x610B, 0xE102: 0x6100}

ST_ALERT = 1 << 15
ST_HEATER = 1 << 13
ST_RH_ALERT = 1 << 11
ST_T_ALERT = 1 << 10
ST_RESET = 1 << 4
ST_COMMAND = 1 << 1
ST_WRITE_CRC = 1 << 0
STATUS_AFTER_RESET = ST_ALERT | ST_RESET

HEATER_RISE_C = 1.5  # a few degrees at most: the heater is meant for plausibility checks
HEATER_TAU_S = 10.0


def crc8(data: bytes) -> int:
    """Datasheet 4.12: polynomial 0x31, init 0xFF, no reflection, no final XOR (0xBEEF -> 0x92)."""
    crc = 0xFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x31) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def raw_temperature(temp_c: float) -> int:
    """Inverse of T = -45 + 175 * St / 65535, rounded and clamped to the 16-bit code range."""
    return min(65535, max(0, round((temp_c + 45.0) * 65535.0 / 175.0)))


def raw_humidity(rh: float) -> int:
    """Inverse of RH = 100 * Srh / 65535."""
    return min(65535, max(0, round(rh * 65535.0 / 100.0)))


def _alert_word(rh: float, temp_c: float) -> int:
    """Limit format: 7 MSBs of the RH code, then the 9 MSBs of the T code."""
    return (raw_humidity(rh) & 0xFE00) | (raw_temperature(temp_c) >> 7)


ALERT_DEFAULTS = {0xE11F: _alert_word(80.0, 60.0), 0xE114: _alert_word(79.0, 58.0),
                  0xE109: _alert_word(22.0, -9.0), 0xE102: _alert_word(20.0, -10.0)}


def _word(value: int, good_crc: bool = True) -> bytes:
    pair = bytes((value >> 8, value & 0xFF))
    crc = crc8(pair)
    return pair + bytes((crc if good_crc else crc ^ 0xFF,))


class SHT31(I2CChip):
    """SHT3x command model: single-shot and periodic measurements, status, heater, soft reset.

    A new command replaces whatever result was waiting to be read. ``set_wrong_id`` makes the status
    and serial-number words carry bad CRCs, as a different device at this address would, so a driver
    that proves the chip with a CRC-checked status read rejects it.
    """

    KIND = "sht31"
    DEFAULT_ADDRESS = 0x44
    ADDRESSES = (0x44, 0x45)

    def __init__(self, address: int = DEFAULT_ADDRESS, seed: int = 0, clock: Clock = time.monotonic,
                 env: Environment | None = None) -> None:
        super().__init__(address, seed, clock, env)
        # this part's fixed error, within the SHT31's typical accuracy (+-0.2 degC, +-2 %RH)
        off = self._rng("offset", 0)
        self.offsets = {"temperature_c": off.uniform(-0.2, 0.2), "humidity_rh": off.uniform(-2.0, 2.0)}
        self._serial = self._rng("serial", 0).getrandbits(32)
        self._count = 0  # lifetime measurement count: indexes the noise
        self._last: tuple[float, float] | None = None
        self._reset(self._clock())

    def _reset(self, now: float) -> None:
        self._status = STATUS_AFTER_RESET
        self._heater = (now, 0.0, False)  # (since, offset then, on)
        self._output: bytes | None = None
        self._single: tuple[float, tuple[float, float], bool] | None = None  # (done at, values, stretch)
        self._periodic: tuple[float, float, float, int, int] | None = None  # t0, period, duration, k0, rep
        self._per_latest = -1
        self._per_fetched = -1
        self._fetch = False
        self._alerts = dict(ALERT_DEFAULTS)
        self._truth = {"temperature_c": math.nan, "humidity_rh": math.nan}

    # --- physics -----------------------------------------------------------------------------------

    def _heater_offset(self, t: float) -> float:
        since, start, on = self._heater
        target = HEATER_RISE_C if on else 0.0
        return target + (start - target) * math.exp(-max(0.0, t - since) / HEATER_TAU_S)

    def _measure(self, t: float, k: int, rep: int) -> tuple[float, float]:
        """Values of measurement ``k`` taken at ``t``; the heater warms the sensor and so lowers RH."""
        if self._frozen and self._last is not None:
            return self._last
        rng = self._rng("noise", k)
        ambient = self.env.temperature(t) + self.offsets["temperature_c"]
        die = ambient + self._heater_offset(t)
        temp = die + rng.gauss(0.0, NOISE_T[rep])
        rh = (self.env.humidity(t) + self.offsets["humidity_rh"]) * _saturation(ambient) / _saturation(die)
        rh += rng.gauss(0.0, NOISE_RH[rep])
        self._last = (temp, min(100.0, max(0.0, rh)))
        return self._last

    def _complete(self, values: tuple[float, float]) -> None:
        self._truth = {"temperature_c": values[0], "humidity_rh": values[1]}

    # --- time --------------------------------------------------------------------------------------

    def _advance(self, now: float) -> None:
        if self._single is not None and now >= self._single[0]:
            self._complete(self._single[1])
        if self._periodic is not None:
            t0, period, duration, k0, rep = self._periodic
            if now >= t0 + duration:
                idx = int((now - t0 - duration) // period)
                if idx > self._per_latest:
                    self._per_latest = idx
                    self._per_values = self._measure(t0 + idx * period, k0 + idx, rep)
                    self._complete(self._per_values)

    # --- bus ---------------------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if not data:
            return  # address-only probe
        now = self._clock()
        self._advance(now)
        if len(data) < 2:
            self._status |= ST_COMMAND  # incomplete command: acknowledged byte, nothing executed
            return
        cmd = (data[0] << 8) | data[1]
        args = bytes(data[2:])
        if args and cmd not in ALERT_READ.values():
            self._invalid()
        if self._periodic is not None and cmd not in (CMD_FETCH, CMD_BREAK, CMD_SOFT_RESET, CMD_HEATER_ON,
                                                      CMD_HEATER_OFF, CMD_CLEAR_STATUS, CMD_READ_STATUS):
            self._invalid()  # the datasheet wants a break before anything else
        self._output = None
        self._single = None
        if cmd == CMD_READ_STATUS:
            # Leaves the command-status bit alone: reporting the previous command is its purpose.
            self._output = _word(self._status, not self._wrong_id)
            return
        if cmd in SINGLE_SHOT:
            rep, stretch = SINGLE_SHOT[cmd]
            values = self._measure(now, self._count, rep)
            self._count += 1
            self._single = (now + MEASURE_MAX_S[rep], values, stretch)
            self._advance(now)
        elif cmd in PERIODIC:
            rep, mps = PERIODIC[cmd]
            self._periodic = (now, 1.0 / mps, MEASURE_MAX_S[rep], self._count, rep)
            self._per_latest = self._per_fetched = -1
        elif cmd == CMD_FETCH:
            self._fetch = True
        elif cmd == CMD_BREAK:
            self._stop_periodic(now)
        elif cmd == CMD_SOFT_RESET:
            self._stop_periodic(now)
            self._reset(now)
            return
        elif cmd in (CMD_HEATER_ON, CMD_HEATER_OFF):
            on = cmd == CMD_HEATER_ON
            self._heater = (now, self._heater_offset(now), on)
            self._status = (self._status | ST_HEATER) if on else (self._status & ~ST_HEATER)
        elif cmd == CMD_CLEAR_STATUS:
            self._status &= ~(ST_ALERT | ST_RH_ALERT | ST_T_ALERT | ST_RESET)
        elif cmd in CMD_READ_SERIAL:
            serial = self._serial
            self._output = _word(serial >> 16, not self._wrong_id) + _word(serial & 0xFFFF, not self._wrong_id)
        elif cmd in ALERT_READ:
            self._output = _word(self._alerts[cmd])
        elif cmd in ALERT_READ.values():
            if len(args) != 3:
                self._invalid()
            if crc8(args[:2]) != args[2]:
                self._status |= ST_WRITE_CRC
                raise Nack(f"sht31: bad checksum on command 0x{cmd:04x}")
            self._status &= ~ST_WRITE_CRC
            read_cmd = next(r for r, w in ALERT_READ.items() if w == cmd)
            self._alerts[read_cmd] = (args[0] << 8) | args[1]
        else:
            self._invalid()
        self._status &= ~ST_COMMAND

    def _invalid(self) -> None:
        self._status |= ST_COMMAND
        raise Nack("sht31: command not processed")

    def _stop_periodic(self, now: float) -> None:
        if self._periodic is not None:
            t0, period, _, k0, _ = self._periodic
            self._count = k0 + int(max(0.0, now - t0) // period) + 1
        self._periodic = None
        self._fetch = False

    def read(self, n: int) -> bytes:
        now = self._clock()
        self._advance(now)
        if self._output is not None:
            out, self._output = self._output, None
        elif self._single is not None:
            done, values, stretch = self._single
            if now < done:
                if not stretch:
                    raise Nack("sht31: measurement in progress")
                self.stretch_s = done - now  # SCL held low until the result is there
                self._complete(values)
            self._single = None
            out = _word(raw_temperature(values[0])) + _word(raw_humidity(values[1]))
        elif self._fetch and self._periodic is not None and self._per_latest > self._per_fetched:
            self._per_fetched = self._per_latest
            self._fetch = False
            temp, rh = self._per_values
            out = _word(raw_temperature(temp)) + _word(raw_humidity(rh))
        else:
            self._fetch = False  # a fetch finding no new result is spent
            raise Nack("sht31: no data to read")
        if n <= len(out):
            return out[:n]
        return out + b"\xff" * (n - len(out))

    def truth(self) -> dict[str, float]:
        self._advance(self._clock())
        return dict(self._truth)


def _saturation(temp_c: float) -> float:
    """Magnus saturation vapour pressure (relative): RH scales inversely with it at fixed moisture."""
    return math.exp(17.62 * temp_c / (243.12 + temp_c))


CHIP = SHT31
