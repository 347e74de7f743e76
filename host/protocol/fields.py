"""A DATA block's samples as plain Python values per field (lists, not numpy arrays), for callers
that keep or hand on the numbers themselves (export to JSON, a plain-Python consumer, the benches).

    from host.protocol.fields import unpack_fields
    ax, ay, az, temp, gx, gy, gz = unpack_fields(samples, ">7h")   # lists of int

Making the values is most of the cost: ~700,000 ints per 1.5 MB of IMU samples. For 8- and
16-bit integer fields (every chip of the project but the BME280) the values are taken from a
table of all 256 or 65,536 Python ints of that type, built once: one numpy gather and one
``tolist`` over the block, with no int object made per value (CPython ints are immutable, so
sharing them is what its own small-int cache does for -5..256). The cost does not depend on the
values (the table holds every one). Other numeric formats go through numpy's ``tolist``, anything
else (native alignment, strings, padding) through ``struct.iter_unpack``.
"""

from __future__ import annotations

import re
import struct
from functools import lru_cache

import numpy as np

__all__ = ["unpack_fields"]

_ORDER = {">": ">", "!": ">", "<": "<", "=": "="}  # standard sizes, no alignment ("@" and none: struct)
_ITEM = re.compile(r"\s*(\d*)([a-zA-Z?])")
_TABLE_CODES = {"b": (np.int8, "u1"), "B": (np.uint8, "u1"), "h": (np.int16, "u2"), "H": (np.uint16, "u2")}
_NUMPY_CODES = {"i": "i4", "I": "u4", "l": "i4", "L": "u4", "q": "i8", "Q": "u8", "e": "f2", "f": "f4", "d": "f8"}


@lru_cache(maxsize=None)
def _table(code: str) -> np.ndarray:
    """Every value of a small integer type as a Python int, indexed by its unsigned bit pattern."""
    signed, unsigned = _TABLE_CODES[code]
    bits = np.arange(np.iinfo(np.dtype(unsigned)).max + 1, dtype=unsigned)
    return np.array(bits.view(signed).tolist(), dtype=object)


@lru_cache(maxsize=64)
def _plan(sample_format: str) -> tuple[str, object, int]:
    """How to unpack a format: (kind, how, fields) with kind "table" (one small integer type:
    (table, dtype)), "numpy" (one other type: its dtype), "record" (several numeric types: a
    structured dtype) or "struct" (anything else: the Struct)."""
    st = struct.Struct(sample_format)
    n = len(st.unpack(bytes(st.size)))
    order = _ORDER.get(sample_format[:1])
    codes = set()
    for count, code in _ITEM.findall(sample_format[1:] if order is not None else ""):
        codes.add(code if code not in "sp" or count in ("", "1") else "s")
    uniform = order is not None and len(codes) == 1
    code0 = next(iter(codes)) if uniform else ""
    if code0 in _TABLE_CODES:
        return "table", (_table(code0), np.dtype(order + _TABLE_CODES[code0][1])), n
    if code0 in _NUMPY_CODES:
        return "numpy", np.dtype(order + _NUMPY_CODES[code0]), n
    if order is not None and codes and codes <= _TABLE_CODES.keys() | _NUMPY_CODES.keys():
        items = [(c, int(k or 1)) for k, c in _ITEM.findall(sample_format[1:])]
        dt = np.dtype([(f"f{i}", order + _numpy_code(c)) for i, c in enumerate(c for c, k in items for _ in range(k))])
        return "record", dt, n
    return "struct", st, n


def _numpy_code(code: str) -> str:
    return _NUMPY_CODES[code] if code in _NUMPY_CODES else ("i" if code.islower() else "u") + _TABLE_CODES[code][1][1]


def unpack_fields(samples: bytes | bytearray | memoryview, sample_format: str) -> list[list]:
    """The fields of ``len(samples) // size`` samples laid out as ``sample_format`` (a ``struct``
    format, e.g. a HELLO's ``sample_format``), one list per field in format order.

    Raises ``struct.error`` for a bad format or a length that is not a whole number of samples."""
    kind, how, n = _plan(sample_format)
    if kind == "struct":
        cols = list(zip(*how.iter_unpack(samples)))
        return [list(c) for c in cols] if cols else [[] for _ in range(n)]
    if kind == "table":
        table, dtype = how
        if len(samples) % (dtype.itemsize * n):
            raise struct.error(f"{len(samples)} bytes are not whole {sample_format!r} samples")
        return table.take(np.frombuffer(samples, dtype).reshape(-1, n).T).tolist()
    if kind == "record":
        if len(samples) % how.itemsize:
            raise struct.error(f"{len(samples)} bytes are not whole {sample_format!r} samples")
        rec = np.frombuffer(samples, how)
        return [rec[name].tolist() for name in how.names]
    if len(samples) % (how.itemsize * n):
        raise struct.error(f"{len(samples)} bytes are not whole {sample_format!r} samples")
    return np.frombuffer(samples, how).reshape(-1, n).T.astype(how.newbyteorder("=")).tolist()
