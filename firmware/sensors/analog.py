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

Block mode (``sample_us``): on an ADC that converts on its own clock into a DMA ring
(firmware/adcring.py, a board.json ADC with ``dma_ring_bytes``: the RP2040's), the converter takes
a sample every ``sample_us`` (2..1365 us) and the driver offers the ring as a FIFO
(``FIFO_PERIOD_US``, ``fifo_*``): a stream at that period reads each frame from it in one copy
(firmware/burst.py), the way it reads the MPU-6050's FIFO.  Same ">H" bytes either way.  An ADC
without a ring rejects ``sample_us`` (ValueError: the stream runs with the driver's defaults and
the boot report says so).

Allocation: ``__init__``, ``config()`` and ``fast_read()`` allocate; ``start()``,
``read_into()`` and the ``fifo_*`` methods do not.
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

    @staticmethod
    def fifo_period(sample_us=0, **_):
        """The converter's own sample period when these settings run it into a DMA ring, else 0
        (static: the heap budget reads it from a config, as the MPU-6050's)."""
        return sample_us if isinstance(sample_us, int) and sample_us > 0 else 0

    def __init__(self, adc, vref_mv=3300, sample_us=0):
        if not isinstance(vref_mv, int) or not 0 < vref_mv <= 10000:
            raise ValueError("vref_mv must be an int in 1..10000")
        if not hasattr(adc, "read_u16"):
            raise TypeError("Analog needs an ADC-like object with read_u16()")
        self._adc = adc
        self._read_u16 = adc.read_u16  # bound once: the 10 kHz path skips one lookup
        self._vref_mv = vref_mv
        self._sample_us = sample_us
        if sample_us:
            if not hasattr(adc, "fifo_start"):
                raise ValueError("sample_us needs an ADC with a DMA ring (board.json dma_ring_bytes)")
            adc.configure(sample_us)  # ValueError outside the converter's range
            self.FIFO_PERIOD_US = sample_us
            self.FIFO_BYTES = adc.ring_bytes
            self.MIN_PERIOD_US = sample_us
            self.fifo_start = adc.fifo_start
            self.fifo_stop = adc.fifo_stop
            self.fifo_count = adc.fifo_count
            self.fifo_read_into = adc.fifo_read_into
            self.fifo_overflowed = adc.fifo_overflowed
        self.reset()

    def calibration(self):
        """Nothing to send: the scale is config()["vref_mv"]."""
        return b""

    def config(self):
        c = {"vref_mv": self._vref_mv, "full_scale": _FULL_SCALE}
        if self._sample_us:
            c["sample_us"] = self._sample_us
        return c

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
