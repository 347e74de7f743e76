"""The per-frame path (pack header, CRC-32, COBS, ring push, ring drain) allocates nothing on the
unix port, with wire.py's pure functions and with fastwire's viper ones, and both produce the
same bytes, which the host decoder accepts."""

from __future__ import annotations

import binascii
import re

import pytest

from firmware import wire
from host.protocol.decoder import Decoder
from tests.micropython.mpy_runner import FIRMWARE, run_unix, unix_micropython

pytestmark = [
    pytest.mark.micropython,
    pytest.mark.skipif(unix_micropython() is None, reason="MicroPython unix port not installed"),
]

N_FRAMES = 20_000  # per variant; ~1-2 s for the pure variant on the CI machines
COUNT = 10
SAMPLE_SIZE = 14

# Runs under the unix port.  Everything is allocated up front; the loops run under heap_lock.
MP_CODE = r"""
import micropython, struct, time, sys
import wire, fastwire
from ring import Ring

N = @N@
COUNT = @COUNT@
SS = @SS@
BOOT = bytes((0xde, 0xad, 0xbe, 0xef))
NBODY = wire.data_length(COUNT, SS, 1)  # the largest frame (with the bitmap) before the CRC
BM = wire.bitmap_offset(COUNT, SS)


class Sink:
    # a non-blocking "stream": takes at most 64 bytes per call; copies only when keep is set
    def __init__(self):
        self.buf = bytearray(512)
        self.n = 0
        self.total = 0
        self.keep = False

    def write(self, buf, off, n):
        if n > 64:
            n = 64
        if self.keep:
            b = self.buf
            p = self.n
            i = 0
            while i < n:
                b[p + i] = buf[off + i]
                i += 1
            self.n = p + n
        self.total += n
        return n


def run(fw, start, n, frame, out, ring, write):
    pack_into = struct.pack_into
    finish = fw.finish_frame
    for i in range(start, start + n):
        o = wire.HEADER_SIZE  # samples right after the header, bitmap after them when needed
        for k in range(COUNT):
            pack_into("<hhhhhhh", frame, o, i, -i, k, 0, 255, -1, i >> 3)
            o += SS
        miss = i & 7 == 0
        if miss:
            wire.clear_bitmap(frame, COUNT, BM)
            wire.mark_missing(frame, i % COUNT, BM)
        m = wire.pack_data(frame, 0, BOOT, i, (i * 10000) & 0x3FFFFFFF, 1000, COUNT, SS, 5 if miss else 0)
        m = finish(frame, m, out, 0)
        if not ring.push(out, m):
            raise RuntimeError("ring full")
        while ring.pending():
            ring.drain(write)


def variant(fw, tag):
    frame = bytearray(NBODY + 4)
    out = bytearray(wire.wire_max(NBODY + 4))
    ring = Ring(bytearray(1024), fw.copy_into)
    sink = Sink()
    write = sink.write
    run(fw, 0, 2, frame, out, ring, write)  # warm up
    micropython.heap_lock()
    t = time.ticks_us()
    run(fw, 0, N - 1, frame, out, ring, write)
    dt = time.ticks_diff(time.ticks_us(), t)
    sink.keep = True
    run(fw, N - 1, 1, frame, out, ring, write)
    micropython.heap_unlock()
    print(tag, "us_per_frame", dt * 1000 // (N - 1), "e-3")
    print(tag, "bytes", sink.total)
    print(tag, "last", sink.buf[:sink.n].hex())


variant(wire, "pure")
variant(fastwire, "viper")
# byte-identical on a spread of frames (outside heap_lock: this part allocates)
same = 0
for i in range(0, 3000, 7):
    a = bytearray(NBODY + 4); b = bytearray(NBODY + 4)
    oa = bytearray(wire.wire_max(NBODY + 4)); ob = bytearray(wire.wire_max(NBODY + 4))
    for k in range(NBODY):
        a[k] = b[k] = (i * 31 + k * k) & 0xFF if (k + i) % 5 else 0
    na = wire.finish_frame(a, NBODY, oa, 0)
    nb = fastwire.finish_frame(b, NBODY, ob, 0)
    if na != nb or oa != ob:
        raise AssertionError("viper and pure differ at %d" % i)
    same += 1
print("identical", same)
print("END")
"""


def _run():
    code = MP_CODE.replace("@N@", str(N_FRAMES)).replace("@COUNT@", str(COUNT)).replace("@SS@", str(SAMPLE_SIZE))
    return run_unix(code, [FIRMWARE], heapsize="256k", timeout=120)


@pytest.fixture(scope="module")
def heaplock_output() -> str:
    return _run()


def test_wire_heaplock_loops_allocate_nothing(heaplock_output):
    out = heaplock_output
    assert "END" in out, out
    assert "MemoryError" not in out
    pure = int(re.search(r"pure us_per_frame (\d+)", out).group(1)) / 1000
    viper = int(re.search(r"viper us_per_frame (\d+)", out).group(1)) / 1000
    print("unix port per frame: pure %.1f us, viper %.1f us" % (pure, viper))
    assert viper < pure


def test_wire_heaplock_pure_and_viper_identical_and_decodable(heaplock_output):
    out = heaplock_output
    assert re.search(r"identical \d+", out)
    frames = {}
    for tag in ("pure", "viper"):
        hexs = re.search(tag + r" last ([0-9a-f]+)", out).group(1)
        raw = binascii.unhexlify(hexs)
        items = Decoder().feed(raw)
        assert len(items) == 1, items
        f = items[0]
        assert f.raw == raw
        assert (f.type, f.stream, f.seq, f.count, f.boot_id) == (wire.T_DATA, 0, (N_FRAMES - 1) & 0xFFFF, COUNT, 0xEFBEADDE)
        assert f.period_us == 1000 and f.t0_us == ((N_FRAMES - 1) * 10000) & 0x3FFFFFFF
        blk = f.data()
        assert blk.sample_size == SAMPLE_SIZE
        # N_FRAMES - 1 is not a multiple of 8: the frame has no bitmap and is shorter
        assert f.flags == 0 and blk.missing_count() == 0
        assert len(f.body) == COUNT * SAMPLE_SIZE
        frames[tag] = raw
    assert frames["pure"] == frames["viper"]
