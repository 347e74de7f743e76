"""`machine` for the virtual board: the rp2 / esp32 port's API, per profile (PAGERLESS_VB_PROFILE).

The unix port has no `machine` peripherals, so this module shadows the built-in one (it sits on
MICROPYPATH, outside the board's flash, so deploys never see it). It is the one module users
import; the parts live beside it: `_vipc` (the FIFOs to the runner that keeps the simulated
chips), `_vi2c` (I2C, SoftI2C), `_vpin` (Pin, Signal), `_vadc` (ADC), `_vtimer` (Timer) and
`_vperiph` (UART, SPI, SoftSPI, PWM, RTC). What differs from a real port is
listed in docs/virtual-board.md.
"""
import os
import time

from micropython import const

from _vi2c import I2C, SoftI2C  # noqa: F401
from _vadc import ADC  # noqa: F401
from _vipc import ESP32, HDR, OP_RESET, OP_WDT_FEED, OP_WDT_START, put_u32, reply, req, send
from _vpin import Pin, Signal  # noqa: F401

try:
    from _vtimer import Timer  # noqa: F401  (machine.Timer)
except ImportError:  # a unix build without _thread: no Timer, as on a port without one
    pass

PWRON_RESET = const(1)
HARD_RESET = const(2)
WDT_RESET = const(3)
DEEPSLEEP_RESET = const(4)
SOFT_RESET = const(5)

_reset_cause = int(os.getenv("PAGERLESS_VB_RESET_CAUSE") or "1")
_uid = bytes.fromhex(os.getenv("PAGERLESS_VB_UID") or "e6614103e7452d2f")
_freq = int(os.getenv("PAGERLESS_VB_FREQ") or "125000000")
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
_FEED = bytes((OP_WDT_FEED, 0, 0, 0, 0, 0, 0, 0))
_LAZY = ("UART", "SPI", "SoftSPI", "PWM", "RTC")
_MEM = {"mem8": 0, "mem16": 1, "mem32": 2}


def __getattr__(name):
    if name in _LAZY:
        import _vperiph

        return getattr(_vperiph, name)
    if name in _MEM and not ESP32:
        import _vregs  # the RP2040's ADC and DMA registers (rp2040 profile)

        m = _vregs.Mem(_MEM[name])
        globals()[name] = m
        return m
    raise AttributeError(name)


class WDT:
    """Cannot be stopped once started, as on the real ports; the runner restarts the board
    with reset cause WDT_RESET when feed() stops coming."""

    def __init__(self, id=0, timeout=5000):
        if timeout < 1:
            raise ValueError("WDT timeout too short")
        put_u32(HDR, timeout)
        send(OP_WDT_START, 0, 0, 0, 0, 4, 4)
        reply(None, 0)
        self._timeout = timeout

    def feed(self):
        # one-way, from its own buffer in one write (atomic on a FIFO): no reply, no shared state
        req.write(_FEED)


def _restart(cause):
    send(OP_RESET, 0, cause, 0, 0, 0, 0)
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
    """8 bytes (the flash's id) on rp2; the 6-byte base MAC on esp32, as its ROM loader reports it."""
    return _uid


def freq(hz=None):
    global _freq
    if hz is None:
        return _freq
    _freq = hz


def idle():
    time.sleep_us(200)


def lightsleep(time_ms=None):
    """Sleeps `time_ms`; without it a port sleeps until a wake source, which this board lacks."""
    if time_ms is None:
        while True:
            time.sleep_ms(1000)
    time.sleep_ms(time_ms)


def deepsleep(time_ms=None):
    """Sleeps, then the board restarts with reset_cause() DEEPSLEEP_RESET (RAM is lost)."""
    if time_ms:
        time.sleep_ms(time_ms)
    _restart(DEEPSLEEP_RESET)


def disable_irq():
    return 0


def enable_irq(state=0):
    pass


def time_pulse_us(pin, pulse_level, timeout_us=1000000):
    """Nothing drives a pin here: the wait for the pulse times out (-2), or -1 if it is already at
    `pulse_level` and never leaves it, as the ports return."""
    time.sleep_us(timeout_us)
    return -1 if pin.value() == pulse_level else -2
