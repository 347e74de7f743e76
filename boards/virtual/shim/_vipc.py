"""The FIFO link from the virtual board's `machine` shim to its runner (CPython), allocation-free.

The unix port has no I2C, ADC or watchdog, so the shim's peripherals ask the runner, which keeps the
simulated chips. Every buffer is made once, at import, so a bus transaction allocates nothing in
the firmware's heap and `micropython.heap_lock()` around the firmware's hot loop is an honest test.

Message to the runner: op u8, bus u8, addr u8, addrsize u8 (bits of memaddr, 0 = none),
memaddr u16 LE, length u16 LE, then `length` bytes for writes.
Reply: status u8 (0 or an errno), 0 u8, length u16 LE, then `length` bytes.
A transaction is marked in `_vtimer.state` from its first byte in `out` to its last read from
`inb`, so a Timer callback never runs in the middle of one (see _vtimer.py).
Keep in step with host/virtual_board/ipc.py; tests/unit/test_shim_constants.py compares the numbers.
"""
import os

from micropython import const

try:
    import _vtimer
except ImportError:  # a unix build without _thread: no Timer, as on a port without one
    _vtimer = None
busy = _vtimer.state if _vtimer is not None else bytearray(2)
_resume = _vtimer.resume if _vtimer is not None else None

OP_I2C_INIT = const(1)
OP_SCAN = const(2)
OP_WRITETO = const(3)
OP_READFROM = const(4)
OP_WRITE_MEM = const(5)
OP_READ_MEM = const(6)
OP_ADC = const(7)
OP_WDT_START = const(8)
OP_WDT_FEED = const(9)
OP_RESET = const(10)
OP_ADC_START = const(11)  # one-way: body u32 period in 1/256 ADC cycles (0: stop)
OP_ADC_BLOCK = const(12)  # memaddr: conversions wanted; body u64 first index; reply u16 codes
HDR = const(8)
_MAXDATA = const(1024)

_ipc = os.getenv("PAGERLESS_VB_IPC")
if _ipc is None:
    raise ImportError("virtual machine shim: PAGERLESS_VB_IPC is not set (not on a virtual board)")
req = open(_ipc + "/bus.req", "wb")
_rsp = open(_ipc + "/bus.rsp", "rb")
out = bytearray(HDR + _MAXDATA)
inb = bytearray(4 + _MAXDATA)
PROFILE = os.getenv("PAGERLESS_VB_PROFILE") or "rp2040"
ESP32 = PROFILE == "esp32"
# Preallocated so raising them on a NACK does not allocate either.
ERR = {}
for _e in (5, 19, 110, 22):
    ERR[_e] = OSError(_e)


def send(op, bus, addr, addrsize, memaddr, length, body):
    """Write the header plus `body` bytes already placed at out[HDR:] in one write.

    `length` is the byte count of the transfer: the body's for writes, the wanted count for reads.
    """
    busy[0] = 1
    o = out
    o[0] = op
    o[1] = bus
    o[2] = addr
    o[3] = addrsize
    o[4] = memaddr & 0xFF
    o[5] = memaddr >> 8
    o[6] = length & 0xFF
    o[7] = length >> 8
    req.write(o, HDR + body)


def put_u32(off, v):
    busy[0] = 1
    o = out
    o[off] = v & 0xFF
    o[off + 1] = (v >> 8) & 0xFF
    o[off + 2] = (v >> 16) & 0xFF
    o[off + 3] = (v >> 24) & 0xFF


def copy_out(buf, off):
    busy[0] = 1
    o = out
    n = len(buf)
    for i in range(n):
        o[off + i] = buf[i]
    return n


def _recv_exact(buf, n):
    got = 0
    while got < n:
        # readinto(buf, n) fills from the start; stay allocation-free by reading into the
        # front and shifting only in the rare short-read case.
        r = _rsp.readinto(buf, n - got) if got == 0 else _rsp.readinto(inb, n - got)
        if not r:
            raise OSError(5)
        if got:
            for i in range(r):
                buf[got + i] = inb[i]
        got += r


def status(into, n, keep=False):
    """Read the reply; copy up to n data bytes into `into`. Returns (errno << 16) | length, errno 0
    on success, without raising, so a caller can translate the bus's error into its port's. The
    transaction ends here unless `keep` (the caller still reads `inb`, then calls done())."""
    h = inb
    _recv_exact(h, 4)
    st = h[0]
    ln = h[2] | (h[3] << 8)
    if ln:
        if into is None:
            _recv_exact(h, ln)
        else:
            _recv_exact(into, ln)
    if st or not keep:
        done()
    return st << 16 | ln


def reply(into, n, keep=False):
    """As status(), raising the bus error (preallocated) if any; returns the data length."""
    r = status(into, n, keep)
    if r >> 16:
        raise ERR.get(r >> 16) or OSError(r >> 16)
    return r


def done():
    """The transaction is over: Timer callbacks that came due during it may run now."""
    busy[0] = 0
    if busy[1]:
        _resume()
