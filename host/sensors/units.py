"""Raw sensor samples -> physical units, vectorised with numpy.

The board sends raw integers (layout: each driver's ``SAMPLE_FORMAT``), each chip's calibration
block once (``driver.calibration()``) and its settings (``driver.config()``); this module turns
them into physical values. One unit per channel, named in the channel: ``temperature_c``,
``pressure_pa``, ``humidity_rh``, ``accel_x_g``, ``gyro_x_dps``, ``voltage_v``.

    >>> out = to_physical("sht31", b"\\x66\\x66\\x80\\x00", b"", {"repeatability": "high"})
    >>> round(float(out["temperature_c"][0]), 3), round(float(out["humidity_rh"][0]), 3)
    (25.0, 50.001)

Missing samples are given as a boolean mask (``missing=``, True where the sample is missing); the
result holds NaN there. Every result array is float64, one value per sample.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from firmware.sensors.analog import Analog
from firmware.sensors.bme280 import BME280
from firmware.sensors.mpu6050 import MPU6050
from firmware.sensors.sht31 import SHT31

DRIVERS = {cls.KIND: cls for cls in (BME280, MPU6050, SHT31, Analog)}

_CHANNEL_UNITS: dict[str, list[tuple[str, str]]] = {
    "bme280": [("temperature_c", "degC"), ("pressure_pa", "Pa"), ("humidity_rh", "%RH")],
    "mpu6050": [
        ("accel_x_g", "g"), ("accel_y_g", "g"), ("accel_z_g", "g"),
        ("temperature_c", "degC"),
        ("gyro_x_dps", "deg/s"), ("gyro_y_dps", "deg/s"), ("gyro_z_dps", "deg/s"),
    ],
    "sht31": [("temperature_c", "degC"), ("humidity_rh", "%RH")],
    "analog": [("voltage_v", "V")],
}

# MPU-6050 product specification, tables 6.1/6.2: LSB per unit at each full scale
MPU6050_ACCEL_LSB_PER_G = {2: 16384.0, 4: 8192.0, 8: 4096.0, 16: 2048.0}
MPU6050_GYRO_LSB_PER_DPS = {250: 131.0, 500: 65.5, 1000: 32.8, 2000: 16.4}

BME280_SKIPPED_PT = 0x80000  # adc_P / adc_T when the measurement is skipped
BME280_SKIPPED_H = 0x8000

_STRUCT_TO_NUMPY = {
    "b": "i1", "B": "u1", "h": "i2", "H": "u2", "i": "i4", "I": "u4", "l": "i4", "L": "u4",
    "q": "i8", "Q": "u8", "e": "f2", "f": "f4", "d": "f8",
}


class UnitsError(ValueError):
    """Input that cannot be converted: unknown kind, bad calibration, missing config key."""


def kinds() -> list[str]:
    return list(DRIVERS)


def channel_units(kind: str) -> list[tuple[str, str]]:
    """(name, unit) of each output of :func:`to_physical`, in order."""
    _driver(kind)
    return list(_CHANNEL_UNITS[kind])


def dtype_from_format(fmt: str, names: Sequence[str]) -> np.dtype:
    """Structured numpy dtype for a struct format with standard sizes ('<', '>', '!' or '=').

    Each field of the format gets one of ``names``; the itemsize equals ``struct.calcsize(fmt)``.
    """
    if not fmt or fmt[0] not in "<>!=":
        raise UnitsError("format %r must start with '<', '>', '!' or '='" % fmt)
    order = "<" if fmt[0] == "<" else (">" if fmt[0] in ">!" else "=")
    codes: list[str] = []
    for count, code in re.findall(r"(\d*)([a-zA-Z?])", fmt[1:]):
        if code not in _STRUCT_TO_NUMPY:
            raise UnitsError("unsupported struct code %r in %r" % (code, fmt))
        codes.extend([code] * (int(count) if count else 1))
    if len(codes) != len(names):
        raise UnitsError("format %r has %d fields but %d names were given" % (fmt, len(codes), len(names)))
    return np.dtype([(name, order + _STRUCT_TO_NUMPY[c]) for name, c in zip(names, codes)])


def sample_dtype(kind: str) -> np.dtype:
    """Structured dtype of one raw sample of ``kind``, fields named after the driver's CHANNELS."""
    drv = _driver(kind)
    return dtype_from_format(drv.SAMPLE_FORMAT, [name for name, _ in drv.CHANNELS])


def decode(kind: str, samples: Any) -> np.ndarray:
    """Raw samples -> structured array (one record per sample).

    ``samples`` is bytes-like (count * SAMPLE_SIZE bytes as on the wire), a uint8 array of the
    same bytes (1-D or (count, SAMPLE_SIZE)), or already a structured array of ``sample_dtype``.
    """
    dt = sample_dtype(kind)
    if isinstance(samples, np.ndarray):
        if samples.dtype.names is not None:
            if samples.dtype.names != dt.names:
                raise UnitsError("structured samples have fields %r, expected %r"
                                 % (samples.dtype.names, dt.names))
            return samples
        if samples.dtype != np.uint8:
            raise UnitsError("raw sample arrays must be uint8, not %s" % samples.dtype)
        data = np.ascontiguousarray(samples).tobytes()
    else:
        data = bytes(samples)
    if len(data) % dt.itemsize:
        raise UnitsError("%d bytes is not a whole number of %d-byte %s samples"
                         % (len(data), dt.itemsize, kind))
    return np.frombuffer(data, dtype=dt)


def to_physical(kind: str, samples: Any, calibration: bytes = b"", config: dict | None = None,
                missing: Any = None) -> dict[str, np.ndarray]:
    """Convert raw samples of one sensor into physical units.

    Args:
        kind: the driver's KIND ("bme280", "mpu6050", "sht31", "analog").
        samples: raw samples, see :func:`decode`.
        calibration: the driver's ``calibration()`` bytes (BME280: 33 bytes; others: empty).
        config: the driver's ``config()`` (MPU-6050 needs accel_fs_g/gyro_fs_dps; analog vref_mv).
        missing: optional boolean mask, True where a sample is missing; those values are NaN.

    Returns:
        {name: float64 array} with the names and order of :func:`channel_units`.
    """
    rec = decode(kind, samples)
    config = config or {}
    with np.errstate(all="ignore"):
        out = _CONVERTERS[kind](rec, calibration, config)
    if missing is not None:
        mask = np.asarray(missing, dtype=bool)
        if mask.shape != (len(rec),):
            raise UnitsError("missing mask has shape %r, expected (%d,)" % (mask.shape, len(rec)))
        for arr in out.values():
            arr[mask] = np.nan
    return out


# -- per-chip conversions ------------------------------------------------------------------------

def parse_bme280_calibration(calibration: bytes) -> dict[str, int]:
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


def bme280_compensate(adc_t: np.ndarray, adc_p: np.ndarray, adc_h: np.ndarray,
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

    t_skipped = adc_t == BME280_SKIPPED_PT
    temperature = np.where(t_skipped, np.nan, temperature)
    pressure = np.where(t_skipped | (adc_p == BME280_SKIPPED_PT), np.nan, pressure)
    humidity = np.where(t_skipped | (adc_h == BME280_SKIPPED_H), np.nan, humidity)
    return {"temperature_c": temperature, "pressure_pa": pressure, "humidity_rh": humidity}


def _bme280(rec: np.ndarray, calibration: bytes, config: dict) -> dict[str, np.ndarray]:
    cal = parse_bme280_calibration(calibration)
    return bme280_compensate(rec["temperature"], rec["pressure"], rec["humidity"], cal)


def _require(config: dict, key: str, kind: str) -> Any:
    if key not in config:
        raise UnitsError("%s conversion needs config[%r] (the driver's config())" % (kind, key))
    return config[key]


def _mpu6050(rec: np.ndarray, calibration: bytes, config: dict) -> dict[str, np.ndarray]:
    afs = _require(config, "accel_fs_g", "mpu6050")
    gfs = _require(config, "gyro_fs_dps", "mpu6050")
    if afs not in MPU6050_ACCEL_LSB_PER_G:
        raise UnitsError("accel_fs_g must be one of 2, 4, 8, 16, not %r" % (afs,))
    if gfs not in MPU6050_GYRO_LSB_PER_DPS:
        raise UnitsError("gyro_fs_dps must be one of 250, 500, 1000, 2000, not %r" % (gfs,))
    a_lsb = MPU6050_ACCEL_LSB_PER_G[afs]
    g_lsb = MPU6050_GYRO_LSB_PER_DPS[gfs]
    out = {}
    for axis in "xyz":
        out["accel_%s_g" % axis] = rec["accel_" + axis].astype(np.float64) / a_lsb
    out["temperature_c"] = rec["temperature"].astype(np.float64) / 340.0 + 36.53
    for axis in "xyz":
        out["gyro_%s_dps" % axis] = rec["gyro_" + axis].astype(np.float64) / g_lsb
    return out


def _sht31(rec: np.ndarray, calibration: bytes, config: dict) -> dict[str, np.ndarray]:
    return {
        "temperature_c": -45.0 + 175.0 * rec["temperature"].astype(np.float64) / 65535.0,
        "humidity_rh": 100.0 * rec["humidity"].astype(np.float64) / 65535.0,
    }


def _analog(rec: np.ndarray, calibration: bytes, config: dict) -> dict[str, np.ndarray]:
    vref_mv = _require(config, "vref_mv", "analog")
    full_scale = float(config.get("full_scale", 65535))
    return {"voltage_v": rec["voltage"].astype(np.float64) * (vref_mv / 1000.0) / full_scale}


_CONVERTERS = {"bme280": _bme280, "mpu6050": _mpu6050, "sht31": _sht31, "analog": _analog}


def _driver(kind: str):
    try:
        return DRIVERS[kind]
    except KeyError:
        raise UnitsError("unknown sensor kind %r (known: %s)" % (kind, ", ".join(DRIVERS))) from None
