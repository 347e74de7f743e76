"""A stream's chip as the sampler sees it: its driver, whether it answers, when to ask again.

The driver's ``read_into`` (and ``start``, unless the chip is free-running) are bound once, so
a sample costs one attribute load per call instead of a bound method made each time.  A
free-running driver may also say how to read it without any Python code of its own
(``fast_read()``, below): then ``fastloop`` takes its samples in viper.  ``online`` and
``fails`` live in the stream's schedule row (schedule.py), where fastloop reads them.  After
``_FAILS_OFFLINE`` consecutive failed reads the chip goes offline; ``health.Health`` then asks
again with exponential back-off (100 ms doubling to 5 s, in ticks_ms) through ``probe``, which
allocates nothing: an address-only write on I2C, a read into a scratch buffer for an ADC.  Only
when the chip answers is the driver re-initialised (that allocates, with the heap unlocked).
"""

import time
from array import array

from micropython import const

_FAILS_OFFLINE = const(5)  # consecutive failed reads that take a chip offline
_BACKOFF_MIN_MS = const(100)
_BACKOFF_MAX_MS = const(5000)

_ON = const(6)  # = schedule.ON, FAILS, MODE, ADDR, REG, ROW
_FAILS = const(7)
_MODE = const(8)
_ADDR = const(9)
_REG = const(10)
_ROW = const(11)

# driver.fast_read() -> (mode, fn, addr, reg): how fastloop reads the chip, with the same bytes as
# read_into(slot) would store
FAST_U16 = const(1)  # fn() returns the 16-bit sample, stored big-endian (SAMPLE_SIZE 2)
FAST_MEM = const(2)  # fn(addr, reg, slot) fills the slot (an I2C readfrom_mem_into)

_EMPTY = bytearray(0)


class Chip:
    def __init__(self, sensor, sample_size):
        self.sensor = sensor  # config "sensor": a kind, or an ADC name (hardware.Hardware.open)
        self.driver = None
        self.read = None  # driver.read_into, bound once (bind)
        self.restart = None  # driver.start, None for a free-running chip (nothing to call per sample)
        self.bus = None  # I2C bus and address for the allocation-free presence probe
        self.address = 0
        self.scratch = bytearray(sample_size)
        self.size = sample_size
        self._t = array("i", bytes(4 * _ROW))  # the stream's row once placed (place)
        self._b = 0
        self.fast_fn = None  # fast_read's fn, also at fns[k] (the sampler's list once placed)
        self.fns = [None]
        self.k = 0
        self.fast = True  # fastloop may read it (False: every sample through Stream.sample)
        self.online = False
        self.fails = 0  # consecutive failed reads
        self.backoff_ms = _BACKOFF_MIN_MS
        self.retry_at = 0  # ticks_ms of the next probe while offline

    @property
    def online(self):
        return self._t[self._b + _ON] != 0

    @online.setter
    def online(self, v):
        self._t[self._b + _ON] = 1 if v else 0

    @property
    def fails(self):
        return self._t[self._b + _FAILS]

    @fails.setter
    def fails(self, v):
        self._t[self._b + _FAILS] = v

    def place(self, table, base, fns, k):
        """Share the stream's row (already moved to table[base:]) and the sampler's fns list."""
        self._t = table
        self._b = base
        self.fns = fns
        self.k = k
        fns[k] = self.fast_fn

    def set_bus(self, bus, address):
        """Where the presence probe knocks: (None, None) for an ADC."""
        self.bus = bus
        self.address = 0 if bus is None else address

    def bind(self, driver):
        """Use `driver` (boot, or a sensor absent at boot that came back); allocates.  A driver
        whose ``FREE_RUNNING`` is true (optional, default False) has a no-op ``start()``, so
        the stream does not call it per sample."""
        self.driver = driver
        self.read = driver.read_into
        self.restart = None if getattr(driver, "FREE_RUNNING", False) else driver.start
        mode, fn, addr, reg = 0, None, 0, 0
        if self.fast and self.restart is None and hasattr(driver, "fast_read"):
            mode, fn, addr, reg = driver.fast_read()
            if mode == FAST_U16 and self.size != 2 or mode not in (FAST_U16, FAST_MEM):
                mode, fn = 0, None
        t = self._t
        b = self._b
        t[b + _MODE] = 0  # never a mode with the previous driver's fn
        self.fast_fn = fn
        self.fns[self.k] = fn
        t[b + _ADDR] = addr
        t[b + _REG] = reg
        t[b + _MODE] = mode

    def start(self):
        """First conversion (START, recovery); a chip that does not answer is left to failed()."""
        if self.driver is not None:
            try:
                self.driver.start()
            except OSError:
                pass

    def failed(self):
        """Count a failed read; True when it is the one that takes the chip offline."""
        self.fails += 1
        return self.fails >= _FAILS_OFFLINE

    def offline(self, now_ms):
        """Take the chip offline; False if it already was.  The first probe is due soon."""
        if not self.online:
            return False
        self.online = False
        self.fails = 0
        self.backoff_ms = _BACKOFF_MIN_MS
        self.retry_at = time.ticks_add(now_ms, _BACKOFF_MIN_MS)
        return True

    def retry_due(self, now_ms):
        return not self.online and time.ticks_diff(now_ms, self.retry_at) >= 0

    def back_off(self, now_ms):
        """The chip did not come back: wait twice as long (at most 5 s) before the next probe."""
        b = self.backoff_ms * 2
        self.backoff_ms = b if b < _BACKOFF_MAX_MS else _BACKOFF_MAX_MS
        self.retry_at = time.ticks_add(now_ms, self.backoff_ms)

    def back_online(self):
        self.online = True
        self.fails = 0

    def probe(self):
        """True if the chip answers: an address-only write on I2C, a read for an ADC."""
        try:
            if self.bus is not None:
                self.bus.writeto(self.address, _EMPTY)
            elif self.driver is not None:
                self.driver.read_into(self.scratch)
            else:
                return False
            return True
        except OSError:
            return False
