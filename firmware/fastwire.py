"""Viper versions of the per-frame codec in wire.py (MicroPython only).

Same signatures and byte-identical results as wire.py: ``crc32_append(buf, end, start)``,
``crc32_check(buf, n, start)``, ``cobs_encode(src, n, dst, dpos)``,
``wrap_frame(frame, n, out, pos)``, ``finish_frame(frame, n, out, pos)``,
``copy_into(dst, doff, src, n)``.  Viper functions take no default arguments: always pass
every argument (the wire.py versions accept the same positional calls).

Choosing an implementation: ``fw = wire.fast()`` returns this module when it imports (the
port has the viper emitter and, for a .mpy, the right native arch) and its import-time
self-test passes, otherwise ``wire`` itself.  This module raises ImportError if the self-test
fails, so a broken emitter falls back instead of sending bad CRCs.

Viper ints are machine words (64-bit on the unix port, 32-bit on boards): the CRC is kept in
the low 32 bits by masking every right shift, and results are written as bytes, so no int
object >= 2**30 is ever created.  Nothing here allocates after import.

``finish_frame`` on a board with the Thumb inline assembler (rp2, stm32) is two ``asm_thumb``
loops instead: on the emulated RP2040 (Cortex-M0+) the viper CRC-32 + COBS of a 370-byte frame
took 534 emulated us (armv6m viper keeps only three locals in registers, the rest go through the
stack, and every constant is rebuilt per use), the assembler pair ~110 us.  They are compiled on
the device from ``_THUMB`` at import (mpy-cross for another arch refuses the decorator, so they
cannot live in a module of their own) and checked against the viper path before use.
"""

import micropython
from array import array

import wire

# 32-bit CRC table built from wire.py's 16-bit halves (done in viper: no big ints at import)
_T32 = array("I", bytes(1024))


@micropython.viper
def _fill(t, lo, hi):
    p = ptr32(t)
    a = ptr16(lo)
    b = ptr16(hi)
    i = 0
    while i < 256:
        p[i] = a[i] | (b[i] << 16)
        i += 1


_fill(_T32, wire.CRC_LO, wire.CRC_HI)


@micropython.viper
def crc32_append(buf, end: int, start: int) -> int:
    """CRC-32 of buf[start:end] stored LE at buf[end:end+4]; returns end + 4."""
    # the CRC register never leaves this function: a viper int >= 2**30 returned to Python
    # would be a heap object on a 32-bit board
    p = ptr8(buf)
    t = ptr32(_T32)
    c = -1
    i = start
    while i < end:
        c = t[(c ^ p[i]) & 0xFF] ^ ((c >> 8) & 0xFFFFFF)
        i += 1
    c = c ^ -1
    p[end] = c & 0xFF
    p[end + 1] = (c >> 8) & 0xFF
    p[end + 2] = (c >> 16) & 0xFF
    p[end + 3] = (c >> 24) & 0xFF
    return end + 4


@micropython.viper
def crc32_check(buf, n: int, start: int) -> bool:
    """True if the last 4 bytes of buf[start:n] are the CRC-32 of the bytes before them."""
    end = n - 4
    if end < start:
        return False
    p = ptr8(buf)
    t = ptr32(_T32)
    c = -1
    i = start
    while i < end:
        c = t[(c ^ p[i]) & 0xFF] ^ ((c >> 8) & 0xFFFFFF)
        i += 1
    c = c ^ -1
    if p[end] != (c & 0xFF):
        return False
    if p[end + 1] != ((c >> 8) & 0xFF):
        return False
    if p[end + 2] != ((c >> 16) & 0xFF):
        return False
    return p[end + 3] == ((c >> 24) & 0xFF)


@micropython.viper
def cobs_encode(src, n: int, dst, dpos: int) -> int:
    """COBS-encode src[0:n] into dst at dpos; returns the bytes written (no delimiters)."""
    s = ptr8(src)
    d = ptr8(dst)
    code_pos = dpos
    o = dpos + 1
    code = 1
    i = 0
    while i < n:
        b = s[i]
        i += 1
        if b == 0:
            d[code_pos] = code
            code_pos = o
            o += 1
            code = 1
        else:
            d[o] = b
            o += 1
            code += 1
            if code == 0xFF:
                d[code_pos] = code
                code_pos = o
                o += 1
                code = 1
    d[code_pos] = code
    return o - dpos


@micropython.viper
def wrap_frame(frame, n: int, out, pos: int) -> int:
    """0x00, COBS(frame[0:n]), 0x00 at out[pos:]; returns the bytes written."""
    d = ptr8(out)
    d[pos] = 0
    k = int(cobs_encode(frame, n, out, pos + 1))
    d[pos + 1 + k] = 0
    return k + 2


@micropython.viper
def finish_frame(frame, n: int, out, pos: int) -> int:
    """Append the CRC to frame[0:n] and write the wire form into out[pos:]; returns its length."""
    m = int(crc32_append(frame, n, 0))
    return int(wrap_frame(frame, m, out, pos))


@micropython.viper
def copy_into(dst, doff: int, src, n: int) -> int:
    """dst[doff:doff+n] = src[0:n]; returns doff + n."""
    d = ptr8(dst)
    s = ptr8(src)
    i = 0
    while i < n:
        d[doff + i] = s[i]
        i += 1
    return doff + n


def _self_test():
    b = bytearray(b"123456789\x00\x00\x00\x00")
    crc32_append(b, 9, 0)
    if b[9:] != b"\x26\x39\xf4\xcb" or not crc32_check(b, 13, 0):
        raise ImportError("fastwire: CRC self-test failed")
    o = bytearray(8)
    if cobs_encode(b"\x11\x00\x22", 3, o, 0) != 4 or o[:4] != b"\x02\x11\x02\x22":
        raise ImportError("fastwire: COBS self-test failed")


# crc(frame, n, table): CRC-32 of frame[0:n] stored LE at frame[n:n+4]; returns n + 4.
# wrap(frame, m, out, pos): 0x00, COBS(frame[0:m]), 0x00 at out[pos:]; returns its length.
_THUMB = """
@micropython.asm_thumb
def crc(r0, r1, r2):
    add(r3, r0, r1)
    mov(r4, 0)
    mvn(r4, r4)
    mov(r6, 0xFF)
    cmp(r0, r3)
    bge(DONE)
    label(LOOP)
    ldrb(r5, [r0, 0])
    eor(r5, r4)
    and_(r5, r6)
    lsl(r5, r5, 2)
    add(r5, r5, r2)
    ldr(r5, [r5, 0])
    lsr(r4, r4, 8)
    eor(r4, r5)
    add(r0, 1)
    cmp(r0, r3)
    blt(LOOP)
    label(DONE)
    mvn(r4, r4)
    strb(r4, [r0, 0])
    lsr(r4, r4, 8)
    strb(r4, [r0, 1])
    lsr(r4, r4, 8)
    strb(r4, [r0, 2])
    lsr(r4, r4, 8)
    strb(r4, [r0, 3])
    mov(r0, r1)
    add(r0, 4)


@micropython.asm_thumb
def wrap(r0, r1, r2, r3):
    add(r1, r0, r1)
    add(r2, r2, r3)
    mov(r7, r2)
    mov(r4, 0)
    strb(r4, [r2, 0])
    add(r2, 1)
    add(r3, r2, 1)
    mov(r4, 1)
    mov(r6, 0xFF)
    cmp(r0, r1)
    bge(END)
    label(LOOP)
    ldrb(r5, [r0, 0])
    add(r0, 1)
    cmp(r5, 0)
    beq(CODE)
    strb(r5, [r3, 0])
    add(r3, 1)
    add(r4, 1)
    cmp(r4, r6)
    bne(NEXT)
    label(CODE)
    strb(r4, [r2, 0])
    mov(r2, r3)
    add(r3, 1)
    mov(r4, 1)
    label(NEXT)
    cmp(r0, r1)
    blt(LOOP)
    label(END)
    strb(r4, [r2, 0])
    mov(r4, 0)
    strb(r4, [r3, 0])
    add(r3, 1)
    sub(r0, r3, r7)
"""


def _thumb():
    """(crc, wrap) compiled from _THUMB, or None where the port has no Thumb assembler."""
    g = {"micropython": micropython}
    try:
        exec(_THUMB, g)
    except Exception:  # SyntaxError (no asm_thumb), MemoryError, NotImplementedError
        return None
    return g["crc"], g["wrap"]


def _thumb_ok(crc, wrap):
    """The assembler pair gives finish_frame's viper bytes on frames with zeros, 254-byte runs
    and an empty body."""
    for n, step in ((0, 1), (9, 1), (300, 7), (600, 0)):
        a = bytearray(n + 4)
        for i in range(n):
            a[i] = (i * step + 1) & 0xFF if step else 0x41
        b = bytearray(a)
        o1 = bytearray(n + n // 254 + 10)
        o2 = bytearray(len(o1))
        k1 = _finish_viper(a, n, o1, 1)
        crc(b, n, _T32)
        if wrap(b, n + 4, o2, 1) != k1 or o1 != o2:
            return False
    return True


_finish_viper = finish_frame
_asm = _thumb()
if _asm is not None and _thumb_ok(*_asm):
    _crc_t, _wrap_t = _asm

    def finish_frame(frame, n, out, pos):
        """Append the CRC to frame[0:n] and write the wire form into out[pos:]; returns its length."""
        _crc_t(frame, n, _T32)
        return _wrap_t(frame, n + 4, out, pos)

del _asm, _thumb, _thumb_ok, _THUMB  # the assembler source (~2.4 KB) is not needed after import
_self_test()
