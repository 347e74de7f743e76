"""Sensirion SHT31 humidity and temperature sensor (SHT3x-DIS datasheet).

Single-shot measurements without clock stretching: ``start()`` sends the measurement command
(0x2400 high / 0x240B medium / 0x2416 low repeatability) and ``read_into()``, called at least
``MIN_PERIOD_US`` later, reads the 6 result bytes, checks both CRC-8s (polynomial 0x31, init
0xFF) and copies the two 16-bit words. A CRC mismatch raises ``OSError(EIO)``; reading before
the conversion finished makes the chip NACK, which the bus reports as ``OSError``.

Sample layout, ``SAMPLE_FORMAT = ">HH"`` (4 bytes, the chip's own byte order):
raw temperature S_T, raw humidity S_RH. Host: T = -45 + 175 * S_T / 65535 degrees C,
RH = 100 * S_RH / 65535 %.

``MIN_PERIOD_US`` is the datasheet's maximum measurement duration plus 0.5 ms: 16 ms for the
class (high repeatability, 15.5 ms); an instance with medium/low repeatability sets 7/5 ms.

Example::

    import time
    from machine import I2C, Pin
    from sensors.sht31 import SHT31

    i2c = I2C(0, scl=Pin(5), sda=Pin(4), freq=400000)
    sht = SHT31(i2c, address=0x44, repeatability="high")
    buf = bytearray(SHT31.SAMPLE_SIZE)
    sht.start()
    time.sleep_us(sht.MIN_PERIOD_US)
    sht.read_into(buf)           # raw S_T, S_RH
    # host side:
    # host.sensors.units.to_physical("sht31", raw_bytes, sht.calibration(), sht.config())

Allocation: ``__init__``, ``config()`` and ``reset()`` allocate; ``start()`` and
``read_into()`` do not (the CRC error is a pre-built exception).
"""

try:
    from micropython import const
except ImportError:
    const = lambda x: x  # noqa: E731  (CPython)

try:
    from time import sleep_ms
except ImportError:  # CPython (host tests)
    from time import sleep as _sleep

    def sleep_ms(ms):
        _sleep(ms / 1000)


# Commands (datasheet section 4), sent as two bytes MSB first
_CMD_READ_STATUS = b"\xf3\x2d"
_CMD_SOFT_RESET = b"\x30\xa2"
_CMD_MEASURE = (b"\x24\x00", b"\x24\x0b", b"\x24\x16")  # single shot, no clock stretching
_REPEATABILITY = ("high", "medium", "low")
_MEASURE_MAX_US = (15500, 6500, 4500)  # max measurement duration (datasheet table 4)
_MARGIN_US = const(500)
_SOFT_RESET_MS = const(2)  # soft reset time 1.5 ms max

_CRC_POLY = const(0x31)
_CRC_INIT = const(0xFF)
_ENODEV = const(19)
_EIO = const(5)


def _table():
    """CRC-8 of each byte value (poly 0x31): one lookup per byte instead of eight shifts (the
    bitwise loop cost ~1.1 ms a sample on an RP2040 in bytecode; the lookups ~10 us)."""
    t = bytearray(256)
    for v in range(256):
        crc = v
        for _ in range(8):
            crc = ((crc << 1) ^ _CRC_POLY) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
        t[v] = crc
    return t


_CRC_TABLE = _table()


def _crc8(data, start):
    """CRC-8 of data[start], data[start + 1] (poly 0x31, init 0xFF): 0xBEEF -> 0x92."""
    t = _CRC_TABLE
    return t[t[_CRC_INIT ^ data[start]] ^ data[start + 1]]


class SHT31:
    KIND = "sht31"
    SAMPLE_FORMAT = ">HH"
    SAMPLE_SIZE = const(4)
    CHANNELS = (("temperature", "raw"), ("humidity", "raw"))
    MIN_PERIOD_US = const(16000)  # high repeatability; instances set their own
    FREE_RUNNING = False  # start() sends the measurement command
    DEFAULT_STREAM = ("rh", 100000, 10)  # (name, period_us, batch) without config.json

    def __init__(self, i2c, address=0x44, repeatability="high"):
        if address not in (0x44, 0x45):
            raise ValueError("SHT31 address must be 0x44 or 0x45")
        if repeatability not in _REPEATABILITY:
            raise ValueError("repeatability must be 'high', 'medium' or 'low'")
        self._i2c = i2c
        self._address = address
        self._repeatability = repeatability
        i = _REPEATABILITY.index(repeatability)
        self._cmd = _CMD_MEASURE[i]
        self._measure_us = _MEASURE_MAX_US[i]
        self.MIN_PERIOD_US = self._measure_us + _MARGIN_US
        self._raw = bytearray(6)
        self._status = bytearray(3)
        # pre-built so the hot path raises without allocating (two args: errno set on CPython too)
        self._eio = OSError(_EIO, "SHT31 at 0x%02x: CRC mismatch" % address)
        self._check_status()

    def _check_status(self):
        st = self._status
        try:
            self._i2c.writeto(self._address, _CMD_READ_STATUS)
            self._i2c.readfrom_into(self._address, st)
        except OSError:
            raise OSError(_ENODEV, "SHT31 not found at 0x%02x" % self._address)
        if _crc8(st, 0) != st[2]:
            raise OSError(_ENODEV, "SHT31 not found at 0x%02x (status register CRC mismatch)"
                          % self._address)

    def calibration(self):
        """The SHT31 is calibrated on chip: nothing to send."""
        return b""

    def config(self):
        return {"repeatability": self._repeatability, "measure_time_max_us": self._measure_us}

    def start(self):
        """Send the single-shot measurement command."""
        self._i2c.writeto(self._address, self._cmd)

    def read_into(self, buf):
        """Read the result of the last start() into buf (SAMPLE_SIZE bytes, ">HH")."""
        raw = self._raw
        self._i2c.readfrom_into(self._address, raw)
        if _crc8(raw, 0) != raw[2] or _crc8(raw, 3) != raw[5]:
            raise self._eio
        buf[0] = raw[0]
        buf[1] = raw[1]
        buf[2] = raw[3]
        buf[3] = raw[4]

    def reset(self):
        """Soft reset, wait the reset time, check the status register again."""
        self._i2c.writeto(self._address, _CMD_SOFT_RESET)
        sleep_ms(_SOFT_RESET_MS)
        self._check_status()


DRIVER = SHT31
