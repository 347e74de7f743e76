"""Bosch BME280 (firmware/sensors/bme280.py, datasheet BST-BME280-DS002): degC, Pa and %RH from
raw ADC values and the chip's calibration block, and the chip itself as seen over I2C.

Conversion: the datasheet's double-precision compensation (section 8.1), vectorised, with the
trimming parameters parsed from the 33-byte block the driver sends once (``calibration()``).

The simulated chip holds such a block in its NVM and parses it with the same code. Its raw ADC
values are found by inverting the datasheet's own *integer* compensation, so any driver written from
the datasheet gets back the simulated temperature, pressure and humidity within its resolution
(host/sensors/_bme280_inverse.py).
Measurement time uses the datasheet's *maximum* formula (section 9.1), so a driver that waits the
maximum time always finds fresh data.
"""

from __future__ import annotations

import math
import struct
import time
from types import SimpleNamespace

import numpy as np

from host.sensors._bme280_inverse import RAW_SKIPPED_H, RAW_SKIPPED_TP, raw_codes
from host.sensors.chip import Clock, Environment, I2CChip
from host.sensors.units import UnitsError

CHANNEL_UNITS = (("temperature_c", "degC"), ("pressure_pa", "Pa"), ("humidity_rh", "%RH"))


def parse_calibration(calibration: bytes) -> dict[str, int]:
    """dig_T1..dig_H6 from calib00..calib25 (0x88..0xA1) + calib26..calib32 (0xE1..0xE7).

    Datasheet BST-BME280-DS002 table 16: little-endian words; dig_H4 and dig_H5 are signed 12-bit
    values sharing 0xE5.
    """
    cal = bytes(calibration)
    if len(cal) != 33:
        raise UnitsError("BME280 calibration must be 33 bytes (0x88..0xA1, 0xE1..0xE7), got %d" % len(cal))
    a = np.frombuffer(cal[:24], dtype="<u2")
    s = np.frombuffer(cal[:24], dtype="<i2")
    e1 = cal[26:]

    def s8(v: int) -> int:
        return v - 256 if v > 127 else v

    return {
        "dig_T1": int(a[0]), "dig_T2": int(s[1]), "dig_T3": int(s[2]),
        "dig_P1": int(a[3]), "dig_P2": int(s[4]), "dig_P3": int(s[5]), "dig_P4": int(s[6]),
        "dig_P5": int(s[7]), "dig_P6": int(s[8]), "dig_P7": int(s[9]), "dig_P8": int(s[10]),
        "dig_P9": int(s[11]),
        "dig_H1": cal[25],
        "dig_H2": int.from_bytes(e1[0:2], "little", signed=True),
        "dig_H3": e1[2],
        "dig_H4": s8(e1[3]) * 16 | (e1[4] & 0x0F),
        "dig_H5": s8(e1[5]) * 16 | (e1[4] >> 4),
        "dig_H6": s8(e1[6]),
    }


def compensate(adc_t: np.ndarray, adc_p: np.ndarray, adc_h: np.ndarray,
                      cal: dict[str, int]) -> dict[str, np.ndarray]:
    """The datasheet's double-precision compensation (section 8.1), vectorised.

    t_fine is truncated to an integer as in the datasheet (``(BME280_S32_t)(var1 + var2)``).
    Skipped measurements (0x80000 / 0x8000) and a zero pressure divisor give NaN.
    """
    adc_t = np.asarray(adc_t, dtype=np.float64)
    adc_p = np.asarray(adc_p, dtype=np.float64)
    adc_h = np.asarray(adc_h, dtype=np.float64)
    t1, t2, t3 = float(cal["dig_T1"]), float(cal["dig_T2"]), float(cal["dig_T3"])
    var1 = (adc_t / 16384.0 - t1 / 1024.0) * t2
    var2 = ((adc_t / 131072.0 - t1 / 8192.0) * (adc_t / 131072.0 - t1 / 8192.0)) * t3
    t_fine = np.trunc(var1 + var2)
    temperature = (var1 + var2) / 5120.0

    p = {k: float(cal["dig_P%d" % k]) for k in range(1, 10)}
    var1 = t_fine / 2.0 - 64000.0
    var2 = var1 * var1 * p[6] / 32768.0
    var2 = var2 + var1 * p[5] * 2.0
    var2 = var2 / 4.0 + p[4] * 65536.0
    var1 = (p[3] * var1 * var1 / 524288.0 + p[2] * var1) / 524288.0
    var1 = (1.0 + var1 / 32768.0) * p[1]
    var1 = np.where(var1 == 0.0, np.nan, var1)  # the datasheet returns 0 here: no valid pressure
    pressure = 1048576.0 - adc_p
    pressure = (pressure - var2 / 4096.0) * 6250.0 / var1
    var1 = p[9] * pressure * pressure / 2147483648.0
    var2 = pressure * p[8] / 32768.0
    pressure = pressure + (var1 + var2 + p[7]) / 16.0

    h = {k: float(cal["dig_H%d" % k]) for k in range(1, 7)}
    var_h = t_fine - 76800.0
    var_h = (adc_h - (h[4] * 64.0 + h[5] / 16384.0 * var_h)) * (
        h[2] / 65536.0 * (1.0 + h[6] / 67108864.0 * var_h * (1.0 + h[3] / 67108864.0 * var_h)))
    var_h = var_h * (1.0 - h[1] * var_h / 524288.0)
    humidity = np.clip(var_h, 0.0, 100.0)

    t_skipped = adc_t == RAW_SKIPPED_TP
    temperature = np.where(t_skipped, np.nan, temperature)
    pressure = np.where(t_skipped | (adc_p == RAW_SKIPPED_TP), np.nan, pressure)
    humidity = np.where(t_skipped | (adc_h == RAW_SKIPPED_H), np.nan, humidity)
    return {"temperature_c": temperature, "pressure_pa": pressure, "humidity_rh": humidity}


def convert(rec: np.ndarray, calibration: bytes, config: dict) -> dict[str, np.ndarray]:
    cal = parse_calibration(calibration)
    return compensate(rec["temperature"], rec["pressure"], rec["humidity"], cal)


# --- the simulated chip --------------------------------------------------------------------------

CHIP_ID = 0x60
WRONG_CHIP_ID = 0x58  # a BMP280 fitted instead: the classic mix-up

REG_CALIB00 = 0x88
REG_ID = 0xD0
REG_RESET = 0xE0
REG_CALIB26 = 0xE1
REG_CTRL_HUM = 0xF2
REG_STATUS = 0xF3
REG_CTRL_MEAS = 0xF4
REG_CONFIG = 0xF5
REG_DATA = 0xF7
RESET_WORD = 0xB6

OVERSAMPLING = (0, 1, 2, 4, 8, 16, 16, 16)  # osrs field -> factor; 0 = measurement skipped
STANDBY_MS = (0.5, 62.5, 125.0, 250.0, 500.0, 1000.0, 10.0, 20.0)  # t_sb field (BME280 values)
FILTER_COEFF = (1, 2, 4, 8, 16, 16, 16, 16)  # filter field -> IIR coefficient; 1 = off
STARTUP_S = 0.002  # t_startup: NVM copy after power-on / soft reset (status.im_update)

# NVM image 0x88..0xA1 + 0xE1..0xE7: the temperature/pressure trimming of the BMP280 datasheet's
# worked example (same ASIC design) and the humidity trimming commonly read from BME280 parts
# (dig_H1 75, dig_H2 362, dig_H3 0, dig_H4 313 and dig_H5 50 sharing 0xE5, dig_H6 30).
TYPICAL_CALIBRATION = struct.pack(
    "<HhhHhhhhhhhhBBhBBBBb", 27504, 26435, -1000, 36477, -10685, 3024, 2855, 140, -7, 15500, -14600,
    6000, 0x00, 75, 362, 0, 313 >> 4, (50 & 0x0F) << 4 | (313 & 0x0F), 50 >> 4, 30)


def measure_time_ms(osrs_t: int, osrs_p: int, osrs_h: int) -> float:
    """t_measure,max from datasheet 9.1; factors, 0 = skipped (its term drops out)."""
    t = 1.25
    if osrs_t:
        t += 2.3 * osrs_t
    if osrs_p:
        t += 2.3 * osrs_p + 0.575
    if osrs_h:
        t += 2.3 * osrs_h + 0.575
    return t


class BME280(I2CChip):
    """BME280 register model with forced and normal mode timing, IIR filter and soft reset.

    I2C writes are register/value *pairs* (datasheet 6.2.1), not auto-incrementing bursts; reads
    auto-increment. The IIR filter is applied to the physical values, which is what the ADC-domain
    filter amounts to through the near-linear compensation; truth() reports the filtered values, since
    those are what the registers encode.
    """

    KIND = "bme280"
    DEFAULT_ADDRESS = 0x76
    ADDRESSES = (0x76, 0x77)

    def __init__(self, address: int = DEFAULT_ADDRESS, seed: int = 0, clock: Clock = time.monotonic,
                 calibration: bytes = TYPICAL_CALIBRATION, env: Environment | None = None) -> None:
        super().__init__(address, seed, clock, env)
        self.calibration = bytes(calibration)
        self._trims = SimpleNamespace(**parse_calibration(self.calibration))
        # this part's fixed error, within the datasheet's absolute accuracy (table 1 at 25 degC:
        # +-0.5 degC, +-1 hPa, +-3 %RH)
        off = self._rng("offset", 0)
        self.offsets = {"temperature_c": off.uniform(-0.5, 0.5), "pressure_pa": off.uniform(-100.0, 100.0),
                        "humidity_rh": off.uniform(-3.0, 3.0)}
        self._conversions = 0  # lifetime conversion count: indexes the noise
        self._reset(self._clock())

    # --- state -------------------------------------------------------------------------------------

    def _reset(self, now: float) -> None:
        regs = bytearray(256)
        regs[REG_CALIB00:REG_CALIB00 + 26] = self.calibration[:26]
        regs[REG_CALIB26:REG_CALIB26 + 7] = self.calibration[26:]
        regs[REG_ID] = CHIP_ID
        regs[REG_DATA:REG_DATA + 8] = bytes((0x80, 0, 0, 0x80, 0, 0, 0x80, 0))
        self._regs = regs
        self._ptr = 0
        self._reset_at = now
        self._osrs_h_latched = 0
        self._forced_end: float | None = None
        self._cycle_t0 = 0.0  # normal mode: start of conversion 0 of the current cycle run
        self._cycle_k0 = 0
        self._cycle_done = 0
        self._filt_t: float | None = None
        self._filt_p: float | None = None
        self._truth = {"temperature_c": math.nan, "pressure_pa": math.nan, "humidity_rh": math.nan}
        self._pending = False  # new filtered values not yet encoded into the data registers
        self._last: tuple[float, float, float] | None = None

    def _settings(self) -> tuple[int, int, int]:
        meas = self._regs[REG_CTRL_MEAS]
        return OVERSAMPLING[meas >> 5], OVERSAMPLING[(meas >> 2) & 7], OVERSAMPLING[self._osrs_h_latched]

    def _t_measure(self) -> float:
        return measure_time_ms(*self._settings()) / 1000.0

    def _period(self) -> float:
        return self._t_measure() + STANDBY_MS[self._regs[REG_CONFIG] >> 5] / 1000.0

    def _filter_coeff(self) -> int:
        return FILTER_COEFF[(self._regs[REG_CONFIG] >> 2) & 7]

    # --- time --------------------------------------------------------------------------------------

    def _advance(self, now: float) -> None:
        mode = self._regs[REG_CTRL_MEAS] & 3
        if self._forced_end is not None:
            if now >= self._forced_end:
                self._convert(self._conversions, self._forced_end)
                self._conversions += 1
                self._forced_end = None
                self._regs[REG_CTRL_MEAS] &= 0xFC  # back to sleep (datasheet 3.3.3)
        elif mode == 3:
            t_meas = self._t_measure()
            if now >= self._cycle_t0 + t_meas:
                period = self._period()
                done = int((now - self._cycle_t0 - t_meas) // period) + 1
                if done > self._cycle_done:
                    # Only the tail matters: older conversions have left the IIR filter's memory.
                    keep = 1 if self._filter_coeff() == 1 else 8 * self._filter_coeff()
                    for j in range(max(self._cycle_done, done - keep), done):
                        self._convert(self._cycle_k0 + j, self._cycle_t0 + j * period + t_meas)
                    self._cycle_done = done
                    self._conversions = self._cycle_k0 + done
        if self._pending:
            self._encode()

    def _restart_cycle(self, now: float) -> None:
        self._cycle_t0 = now
        self._cycle_k0 = self._conversions
        self._cycle_done = 0

    def _measuring(self, now: float) -> bool:
        if self._forced_end is not None:
            return True
        if self._regs[REG_CTRL_MEAS] & 3 == 3:
            phase = (now - self._cycle_t0) % self._period()
            return phase < self._t_measure()
        return False

    # --- conversions -------------------------------------------------------------------------------

    def _convert(self, k: int, t: float) -> None:
        """One conversion completing at time ``t``: physical values + sensor noise, then the filter."""
        if self._frozen:
            return
        osrs_t, osrs_p, _ = self._settings()
        rng = self._rng("noise", k)
        env, off = self.env, self.offsets
        temp = env.temperature(t) + off["temperature_c"] + rng.gauss(0.0, 0.005 / math.sqrt(max(osrs_t, 1)))
        press = env.pressure(t) + off["pressure_pa"] + rng.gauss(0.0, 2.0 / math.sqrt(max(osrs_p, 1)))
        hum = env.humidity(t) + off["humidity_rh"] + rng.gauss(0.0, 0.02)
        coeff = self._filter_coeff()
        if coeff == 1 or self._filt_t is None:
            self._filt_t, self._filt_p = temp, press
        else:
            self._filt_t += (temp - self._filt_t) / coeff
            self._filt_p += (press - self._filt_p) / coeff
        self._last = (self._filt_t, self._filt_p, hum)
        self._pending = True

    def _encode(self) -> None:
        """Invert the compensation once per batch of conversions, for the newest values only."""
        self._pending = False
        if self._last is None:
            return
        (adc_t, adc_p, adc_h), (temp, press, hum) = raw_codes(*self._last, self._trims, self._settings(),
                                                              self._filter_coeff() > 1)
        self._regs[REG_DATA:REG_DATA + 8] = bytes((
            adc_p >> 12, (adc_p >> 4) & 0xFF, (adc_p & 0x0F) << 4,
            adc_t >> 12, (adc_t >> 4) & 0xFF, (adc_t & 0x0F) << 4,
            adc_h >> 8, adc_h & 0xFF,
        ))
        self._truth = {"temperature_c": temp, "pressure_pa": press, "humidity_rh": hum}

    # --- bus ---------------------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if not data:
            return
        now = self._clock()
        self._advance(now)
        for i in range(0, len(data) - 1, 2):
            self._write_reg(data[i], data[i + 1], now)
        self._ptr = data[-1] if len(data) % 2 else data[-2]

    def _write_reg(self, reg: int, value: int, now: float) -> None:
        regs = self._regs
        if reg == REG_RESET:
            if value == RESET_WORD:
                self._reset(now)
        elif reg == REG_CTRL_HUM:
            regs[REG_CTRL_HUM] = value & 0x07  # latched by the next ctrl_meas write (datasheet 5.4.3)
        elif reg == REG_CTRL_MEAS:
            regs[REG_CTRL_MEAS] = value
            self._osrs_h_latched = regs[REG_CTRL_HUM]
            mode = value & 3
            self._forced_end = None
            if mode in (1, 2):
                self._forced_end = now + self._t_measure()
            elif mode == 3:
                self._restart_cycle(now)
        elif reg == REG_CONFIG:
            regs[REG_CONFIG] = value & 0xFD
            self._filt_t = self._filt_p = None  # writing the filter setting restarts the filter
            if regs[REG_CTRL_MEAS] & 3 == 3:
                self._restart_cycle(now)
        # everything else is read-only

    def read(self, n: int) -> bytes:
        now = self._clock()
        self._advance(now)
        regs = self._regs
        status = 0x08 if self._measuring(now) else 0
        if now - self._reset_at < STARTUP_S:
            status |= 0x01
        regs[REG_STATUS] = status
        regs[REG_ID] = WRONG_CHIP_ID if self._wrong_id else CHIP_ID
        start = self._ptr
        end = start + n
        if end <= 256:
            out = bytes(regs[start:end])
        else:
            out = bytes(regs[(start + i) & 0xFF] for i in range(n))
        self._ptr = end & 0xFF
        return out

    def truth(self) -> dict[str, float]:
        self._advance(self._clock())
        return dict(self._truth)


CHIP = BME280
