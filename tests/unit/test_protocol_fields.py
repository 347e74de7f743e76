"""unpack_fields: the same Python values per field as struct.iter_unpack, for every path it takes."""
from __future__ import annotations

import math
import random
import struct

import pytest

from host.protocol.fields import _plan, unpack_fields

FORMATS = {
    ">7h": "table", ">HH": "table", ">H": "table", "<4b": "table", "!3B": "table",  # project chips: 7h, HH, H
    ">IIH": "record", "<hHbBiIqQ": "record", ">fh": "record",
    "<3f": "numpy", ">2d": "numpy", "=4i": "numpy", ">3Q": "numpy",
    "7h": "struct", "@hi": "struct", ">xh": "struct", ">2sh": "struct", ">?h": "struct",
}


def _reference(data: bytes, fmt: str) -> list[list]:
    cols = list(zip(*struct.iter_unpack(fmt, data)))
    return [list(c) for c in cols] if cols else [[] for _ in struct.unpack(fmt, bytes(struct.calcsize(fmt)))]


def _same(a, b) -> bool:
    return type(a) is type(b) and (a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b)))


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("count", [0, 1, 3, 260])
def test_values_and_types_match_struct(fmt: str, count: int) -> None:
    assert _plan(fmt)[0] == FORMATS[fmt]
    data = random.Random(f"{fmt}{count}").randbytes(struct.calcsize(fmt) * count)
    got, want = unpack_fields(data, fmt), _reference(data, fmt)
    assert len(got) == len(want) and all(type(col) is list for col in got)
    assert all(len(g) == len(w) and all(_same(x, y) for x, y in zip(g, w)) for g, w in zip(got, want)), fmt


def test_every_int16_value_and_every_input_type() -> None:
    data = struct.pack(">65536h", *range(-32768, 32768))
    assert unpack_fields(data, ">h") == [list(range(-32768, 32768))]
    assert unpack_fields(bytearray(data), ">H") == [list(range(32768, 65536)) + list(range(32768))]
    assert unpack_fields(memoryview(data)[:4], ">2h") == [[-32768], [-32767]]


@pytest.mark.parametrize("fmt", [">7h", ">IIH", "<3f", "7h"])
def test_partial_sample_is_an_error(fmt: str) -> None:
    with pytest.raises(struct.error):
        unpack_fields(bytes(struct.calcsize(fmt) + 1), fmt)
