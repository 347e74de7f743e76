"""`machine` for the virtual board: the ESP32/RP2040 API subset the firmware uses.

The unix port has no I2C, ADC or watchdog, so this module shadows the built-in `machine` (it sits
on MICROPYPATH, outside the board's flash, so deploys never see it). Bus traffic goes to the
virtual board's runner (CPython) through two FIFOs with fixed binary messages. Every buffer is
made once, at import, so a bus transaction allocates nothing in the firmware's heap and
`micropython.heap_lock()` around the firmware's hot loop is an honest test.

Message to the runner: op u8, bus u8, addr u8, addrsize u8 (bits of memaddr, 0 = none),
memaddr u16 LE, length u16 LE, then `length` bytes for writes.
Reply: status u8 (0 or an errno), 0 u8, length u16 LE, then `length` bytes.
A transaction is marked in `_vtimer.state` from its first byte in `_out` to its last read from
`_in`, so a Timer callback never runs in the middle of one (see _vtimer.py).
Keep in step with host/virtual_board/ipc.py; tests/unit/test_shim_constants.py compares the numbers.
"""
import os
import time

from micropython import const

try:
    import _vtimer
    from _vtimer import Timer  # noqa: F401  (machine.Timer)
except ImportError:  # a unix build without _thread: no Timer, as on a port without one
    _vtimer = None
_busy = _vtimer.state if _vtimer is not None else bytearray(2)
_resume = _vtimer.resume if _vtimer is not None else None

_OP_I2C_INIT = const(1)
_OP_SCAN = const(2)
_OP_WRITETO = const(3)
_OP_READFROM = const(4)
_OP_WRITE_MEM = const(5)
_OP_READ_MEM = const(6)
_OP_ADC = const(7)
_OP_WDT_START = const(8)
_OP_WDT_FEED = const(9)
_OP_RESET = const(10)
_HDR = const(8)
_MAXDATA = const(1024)

PWRON_RESET = const(1)
HARD_RESET = const(2)
WDT_RESET = const(3)
DEEPSLEEP_RESET = const(4)
SOFT_RESET = const(5)

_ipc = os.getenv("PAGERLESS_VB_IPC")
if _ipc is None:
    raise ImportError("virtual machine shim: PAGERLESS_VB_IPC is not set (not on a virtual board)")
_req = open(_ipc + "/bus.req", "wb")
_rsp = open(_ipc + "/bus.rsp", "rb")
_out = bytearray(_HDR + _MAXDATA)
_in = bytearray(4 + _MAXDATA)
_reset_cause = int(os.getenv("PAGERLESS_VB_RESET_CAUSE") or "1")
_uid = bytes.fromhex(os.getenv("PAGERLESS_VB_UID") or "e6614103e7452d2f")
_freq = int(os.getenv("PAGERLESS_VB_FREQ") or "125000000")
# Bench mode "instant": each distinct read is answered over the FIFOs once, then from a copy
# kept in the VM, so a benchmark measures the firmware's own cost per sample, not the simulated
# bus's (values stop changing after the first read). Never on by default.
# Register reads are keyed by (address, register, length). A plain read (readfrom_into) is keyed
# by (address, length, the last plain write to that address), so a command chip like the SHT31
# gets the answer to the command it sent (status vs. measurement); a plain write is skipped
# once a read after that same write has been cached (the chip need not see it again).
_INSTANT = os.getenv("PAGERLESS_VB_BUS") == "instant"
_cache = {}  # register reads: key -> bytes
_rcache = {}  # plain reads: key -> bytes
_warm = {}  # addresses with a cached read (their register writes and probes are skipped)
_wseen = {}  # (address, write key) whose following read is cached (the write is skipped)
_lastw = [0] * 128  # per address: key of the last plain write (bytes 0..2, length), 0 = none
# Timer slack: Linux lets a sleeping thread's wake-up be deferred by up to 50 us by default (to
# batch timer interrupts), so every time.sleep_us() on the VM returned ~80 us late (measured:
# mean 84 us, p99 ~200 us over the asked time; with 1 us slack: mean ~30 us, p99 ~75-130 us).
# A board has no such coalescing (short sleep_us is a busy wait there), so the virtual board
# asks for 1 us, the least Linux allows a process to set for itself. Best effort.
try:
    with open("/proc/self/timerslack_ns", "w") as _f:
        _f.write("1000")
except OSError:
    pass
_FEED = bytes((_OP_WDT_FEED, 0, 0, 0, 0, 0, 0, 0))
# Preallocated so raising them on a NACK does not allocate either.
_ERR = {}
for _e in (5, 19, 110, 22):
    _ERR[_e] = OSError(_e)


def _send(op, bus, addr, addrsize, memaddr, length, body):
    """Write the header plus `body` bytes already placed at _out[_HDR:] in one write.

    `length` is the byte count of the transfer: the body's for writes, the wanted count for reads.
    """
    _busy[0] = 1
    o = _out
    o[0] = op
    o[1] = bus
    o[2] = addr
    o[3] = addrsize
    o[4] = memaddr & 0xFF
    o[5] = memaddr >> 8
    o[6] = length & 0xFF
    o[7] = length >> 8
    _req.write(o, _HDR + body)


def _put_u32(off, v):
    _busy[0] = 1
    o = _out
    o[off] = v & 0xFF
    o[off + 1] = (v >> 8) & 0xFF
    o[off + 2] = (v >> 16) & 0xFF
    o[off + 3] = (v >> 24) & 0xFF


def _recv_exact(buf, n):
    got = 0
    while got < n:
        # readinto(buf, n) fills from the start; stay allocation-free by reading into the
        # front and shifting only in the rare short-read case.
        r = _rsp.readinto(buf, n - got) if got == 0 else _rsp.readinto(_in, n - got)
        if not r:
            raise OSError(5)
        if got:
            for i in range(r):
                buf[got + i] = _in[i]
        got += r


def _reply(into, n, keep=False):
    """Read the status word; copy up to n data bytes into `into`; raise the bus error if any.
    The transaction ends here unless `keep` (the caller still reads `_in`, then calls _done())."""
    h = _in
    _recv_exact(h, 4)
    status = h[0]
    ln = h[2] | (h[3] << 8)
    if ln:
        if into is None:
            _recv_exact(h, ln)
        else:
            _recv_exact(into, ln)
    if status or not keep:
        _done()
    if status:
        raise _ERR.get(status) or OSError(status)
    return ln


def _done():
    """The transaction is over: Timer callbacks that came due during it may run now."""
    _busy[0] = 0
    if _busy[1]:
        _resume()


def _remember(cache, key, addr, buf):
    # a first read may come after the firmware's heap_lock(): then it is simply not cached
    # (it keeps going to the chip), so the bench mode never changes what the firmware sees
    try:
        c = bytes(buf)
        _warm[addr] = True
        cache[key] = c
        if cache is _rcache:
            _wseen[addr << 24 | _lastw[addr]] = True
    except MemoryError:
        pass


def _wkey(buf):
    """Key of a plain write: its first 3 bytes and length (-1: not cacheable, > 3 bytes)."""
    n = len(buf)
    if n > 3:
        return -1
    k = n
    for i in range(n):
        k = k << 8 | buf[i]
    return k | 1 << 26


def _copy_out(buf, off):
    _busy[0] = 1
    o = _out
    n = len(buf)
    for i in range(n):
        o[off + i] = buf[i]
    return n


class Pin:
    IN = const(0)
    OUT = const(1)
    OPEN_DRAIN = const(2)
    PULL_UP = const(1)
    PULL_DOWN = const(2)
    IRQ_RISING = const(4)
    IRQ_FALLING = const(8)

    def __init__(self, id, mode=-1, pull=-1, value=None):
        self._id = id
        self._v = 0
        self.init(mode, pull, value)

    def init(self, mode=-1, pull=-1, value=None):
        if mode != -1:
            self._mode = mode
        if value is not None:
            self._v = 1 if value else 0

    def value(self, v=None):
        if v is None:
            return self._v
        self._v = 1 if v else 0

    def __call__(self, v=None):
        return self.value(v)

    def on(self):
        self._v = 1

    def off(self):
        self._v = 0

    def toggle(self):
        self._v ^= 1

    def __repr__(self):
        return "Pin(%s)" % self._id


class I2C:
    """Hardware I2C as on rp2/esp32: OSError ENODEV for an address NACK, EIO for a data NACK,
    ETIMEDOUT when the bus is stuck (after the configured timeout, as the real ports wait)."""

    def __init__(self, id=0, *, scl=None, sda=None, freq=400000, timeout=50000):
        self._id = id
        self.freq = freq
        self.timeout = timeout
        _put_u32(_HDR, freq)
        _put_u32(_HDR + 4, timeout)
        _send(_OP_I2C_INIT, id, 0, 0, 0, 8, 8)
        _reply(None, 0)

    def __repr__(self):
        return "I2C(%d, freq=%d, timeout=%d)" % (self._id, self.freq, self.timeout)

    def scan(self):
        _send(_OP_SCAN, self._id, 0, 0, 0, 0, 0)
        n = _reply(None, 0, True)
        found = [_in[i] for i in range(n)]
        _done()
        return found

    def writeto(self, addr, buf, stop=True):
        if _INSTANT:
            if not buf:
                if addr in _warm:  # presence probe of a chip that answered
                    return 0
            else:
                k = _wkey(buf)
                _lastw[addr & 0x7F] = k if k > 0 else 0
                if k > 0 and (addr << 24 | k) in _wseen:
                    return len(buf)
        n = _copy_out(buf, _HDR)
        _send(_OP_WRITETO, self._id, addr, 0, 0, n, n)
        _reply(None, 0)
        return n

    def writevto(self, addr, vector, stop=True):
        n = 0
        for b in vector:
            n += _copy_out(b, _HDR + n)
        _send(_OP_WRITETO, self._id, addr, 0, 0, n, n)
        _reply(None, 0)
        return n

    def readfrom_into(self, addr, buf, stop=True):
        n = len(buf)
        if _INSTANT:
            key = (addr << 28 | _lastw[addr & 0x7F]) << 12 | n
            c = _rcache.get(key)
            if c is not None:
                buf[:] = c  # same length; no allocation (checked under heap_lock)
                return
        _send(_OP_READFROM, self._id, addr, 0, 0, n, 0)
        _reply(buf, n)
        if _INSTANT and _lastw[addr & 0x7F]:
            _remember(_rcache, key, addr, buf)

    def readfrom(self, addr, nbytes, stop=True):
        buf = bytearray(nbytes)
        self.readfrom_into(addr, buf, stop)
        return bytes(buf)

    def writeto_mem(self, addr, memaddr, buf, *, addrsize=8):
        if _INSTANT and addr in _warm:
            return
        n = _copy_out(buf, _HDR)
        _send(_OP_WRITE_MEM, self._id, addr, addrsize, memaddr, n, n)
        _reply(None, 0)

    def readfrom_mem_into(self, addr, memaddr, buf, *, addrsize=8):
        n = len(buf)
        if _INSTANT:
            key = addr << 20 | (memaddr & 0x7FF) << 8 | (n & 0xFF)
            c = _cache.get(key)
            if c is not None:
                buf[:] = c  # same length; no allocation (checked under heap_lock)
                return
        _send(_OP_READ_MEM, self._id, addr, addrsize, memaddr, n, 0)
        _reply(buf, n)
        if _INSTANT:
            _remember(_cache, key, addr, buf)

    def readfrom_mem(self, addr, memaddr, nbytes, *, addrsize=8):
        buf = bytearray(nbytes)
        self.readfrom_mem_into(addr, memaddr, buf, addrsize=addrsize)
        return bytes(buf)


SoftI2C = I2C


class ADC:
    def __init__(self, pin, *, atten=None):
        self._ch = pin._id if isinstance(pin, Pin) else pin
        self._v = -1  # instant mode: the first reading, kept here (-1: none yet)

    def read_u16(self):
        # instant mode: one attribute load, no global or dict lookups (a real ADC read is one
        # C call; a firmware's 10 kHz stream calls this on every sample)
        v = self._v
        if v >= 0:
            return v
        _send(_OP_ADC, 0, self._ch & 0xFF, 0, 0, 2, 0)
        _reply(None, 0, True)
        v = _in[0] | (_in[1] << 8)
        _done()
        if _INSTANT:
            self._v = v
        return v


class WDT:
    """Cannot be stopped once started, as on the real ports; the runner restarts the board
    with reset cause WDT_RESET when feed() stops coming."""

    def __init__(self, id=0, timeout=5000):
        if timeout < 1:
            raise ValueError("WDT timeout too short")
        _put_u32(_HDR, timeout)
        _send(_OP_WDT_START, 0, 0, 0, 0, 4, 4)
        _reply(None, 0)
        self._timeout = timeout

    def feed(self):
        # one-way, from its own buffer in one write (atomic on a FIFO): no reply, no shared state
        _req.write(_FEED)


def _restart(cause):
    _send(_OP_RESET, 0, cause, 0, 0, 0, 0)
    # the runner kills this process; never return, like the real reset
    while True:
        time.sleep_ms(1000)


def reset():
    _restart(HARD_RESET)


def soft_reset():
    _restart(SOFT_RESET)


def bootloader(*args):
    _restart(HARD_RESET)


def reset_cause():
    return _reset_cause


def unique_id():
    return _uid


def freq(hz=None):
    global _freq
    if hz is None:
        return _freq
    _freq = hz


def idle():
    time.sleep_us(200)


def disable_irq():
    return 0


def enable_irq(state=0):
    pass
