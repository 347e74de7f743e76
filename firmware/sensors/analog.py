"""Analog input through a ``machine.ADC``-like object (anything with ``read_u16()``).

Sample layout, ``SAMPLE_FORMAT = ">H"`` (2 bytes): the 16-bit ``read_u16()`` value, 0..65535
spanning 0..vref. Host: voltage_v = raw * vref_mv / 1000 / 65535.

Example::

    from machine import ADC, Pin
    from sensors.analog import Analog

    a0 = Analog(ADC(Pin(26)), vref_mv=3300)
    buf = bytearray(Analog.SAMPLE_SIZE)
    a0.start()                   # no-op
    a0.read_into(buf)            # raw read_u16 value, big-endian
    # host side:
    # host.sensors.units.to_physical("analog", raw_bytes, a0.calibration(), a0.config())

Allocation: ``__init__``, ``config()`` and ``fast_read()`` allocate; ``start()`` and
``read_into()`` do not.
"""

try:
    from micropython import const
except ImportError:
    const = lambda x: x  # noqa: E731  (CPython)

_EIO = const(5)
_FULL_SCALE = const(0xFFFF)
_FAST_U16 = const(1)  # = chip.FAST_U16


class Analog:
    KIND = "analog"
    SAMPLE_FORMAT = ">H"
    SAMPLE_SIZE = const(2)
    CHANNELS = (("voltage", "raw"),)
    MIN_PERIOD_US = const(100)
    FREE_RUNNING = True  # start() does nothing: the sampler need not call it
    DEFAULT_STREAM = ("a0", 10000, 50)  # (name, period_us, batch) without config.json

    def __init__(self, adc, vref_mv=3300):
        if not isinstance(vref_mv, int) or not 0 < vref_mv <= 10000:
            raise ValueError("vref_mv must be an int in 1..10000")
        if not hasattr(adc, "read_u16"):
            raise TypeError("Analog needs an ADC-like object with read_u16()")
        self._adc = adc
        self._read_u16 = adc.read_u16  # bound once: the 10 kHz path skips one lookup
        self._vref_mv = vref_mv
        self.reset()

    def calibration(self):
        """Nothing to send: the scale is config()["vref_mv"]."""
        return b""

    def config(self):
        return {"vref_mv": self._vref_mv, "full_scale": _FULL_SCALE}

    def start(self):
        """The ADC converts on read: nothing to start."""

    def read_into(self, buf):
        """Store read_u16() into buf (SAMPLE_SIZE bytes, ">H")."""
        v = self._read_u16()
        buf[0] = (v >> 8) & 0xFF
        buf[1] = v & 0xFF

    def fast_read(self):
        """How the sampler's viper loop reads it with no Python call of ours (chip.py):
        read_u16() stored big-endian, the bytes read_into() stores."""
        return (_FAST_U16, self._read_u16, 0, 0)

    def reset(self):
        """Prove the input answers with a 16-bit value."""
        v = self._adc.read_u16()
        if not 0 <= v <= _FULL_SCALE:
            raise OSError(_EIO, "ADC read_u16() returned %r, outside 0..65535" % (v,))


DRIVER = Analog
