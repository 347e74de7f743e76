"""Raw sensor samples -> physical units, vectorised with numpy.

The board sends raw integers (layout: each driver's ``SAMPLE_FORMAT``), each chip's calibration
block once (``driver.calibration()``) and its settings (``driver.config()``); this module turns
them into physical values through each kind's description (``host/sensors/<kind>.py``, found by
name by the registry in ``host/sensors/__init__.py``). One unit per channel, named in the channel:
``temperature_c``, ``pressure_pa``, ``humidity_rh``, ``accel_x_g``, ``gyro_x_dps``, ``voltage_v``.

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

from host import sensors as registry

_STRUCT_TO_NUMPY = {
    "b": "i1", "B": "u1", "h": "i2", "H": "u2", "i": "i4", "I": "u4", "l": "i4", "L": "u4",
    "q": "i8", "Q": "u8", "e": "f2", "f": "f4", "d": "f8",
}


class UnitsError(ValueError):
    """Input that cannot be converted: unknown kind, bad calibration, missing config key."""


def kinds() -> list[str]:
    return registry.kinds()


def channel_units(kind: str) -> list[tuple[str, str]]:
    """(name, unit) of each output of :func:`to_physical`, in order."""
    return list(registry.kind(kind).channel_units)


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
    drv = registry.kind(kind).driver
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
        kind: the sensor kind, a module name in host/sensors/ and firmware/sensors/ ("bme280").
        samples: raw samples, see :func:`decode`.
        calibration: the driver's ``calibration()`` bytes (BME280: 33 bytes; others: empty).
        config: the driver's ``config()`` (MPU-6050 needs accel_fs_g/gyro_fs_dps; analog vref_mv).
        missing: optional boolean mask, True where a sample is missing; those values are NaN.

    Returns:
        {name: float64 array} with the names and order of :func:`channel_units`.
    """
    convert = registry.kind(kind).convert
    rec = decode(kind, samples)
    config = config or {}
    with np.errstate(all="ignore"):
        out = convert(rec, calibration, config)
    if missing is not None:
        mask = np.asarray(missing, dtype=bool)
        if mask.shape != (len(rec),):
            raise UnitsError("missing mask has shape %r, expected (%d,)" % (mask.shape, len(rec)))
        for arr in out.values():
            arr[mask] = np.nan
    return out


def require(config: dict, key: str, kind: str) -> Any:
    """``config[key]`` for a kind's conversion; UnitsError naming what is missing."""
    if key not in config:
        raise UnitsError("%s conversion needs config[%r] (the driver's config())" % (kind, key))
    return config[key]
