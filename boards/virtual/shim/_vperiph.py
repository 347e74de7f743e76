"""`machine.UART`, `SPI`, `SoftSPI`, `PWM` and `RTC` of the virtual board: the ports' constructor
shapes and methods, with nothing on their wires but what the docstrings say. `machine` hands them out
through its module `__getattr__`.
"""
import time

from _vipc import ESP32

_NUART = 3 if ESP32 else 2
_NSPI = 3 if ESP32 else 2  # esp32: SPI(1) and SPI(2) (HSPI, VSPI); rp2: SPI(0), SPI(1)


def _pid(p):
    return p if p is None or isinstance(p, int) else p._id


class UART:
    """A UART whose TX reaches its own RX only when both are the same pin (a loopback jumper):
    `UART(1, 9600, tx=Pin(4), rx=Pin(4))`. Otherwise what it sends goes nowhere and nothing comes
    in (read() returns None after `timeout` ms, as on a port)."""

    def __init__(self, id, baudrate=115200, bits=8, parity=None, stop=1, **kw):
        if not 0 <= id < _NUART:
            raise ValueError("UART(%d) doesn't exist" % id)
        self._id = id
        self._rx = bytearray()
        self.init(baudrate, bits, parity, stop, **kw)

    def init(self, baudrate=115200, bits=8, parity=None, stop=1, *, tx=None, rx=None, timeout=0,
             timeout_char=0, rxbuf=256, txbuf=256, flow=0, invert=0, **kw):
        if bits not in (5, 6, 7, 8) or stop not in (1, 2) or parity not in (None, 0, 1):
            raise ValueError("invalid UART settings")
        self._baud = baudrate
        self._bits, self._parity, self._stop = bits, parity, stop
        self._tx, self._rxpin = _pid(tx), _pid(rx)
        self._timeout = timeout
        self._rxbuf = rxbuf

    def deinit(self):
        self._rx = bytearray()

    def __repr__(self):
        return "UART(%u, baudrate=%u, bits=%u, parity=%s, stop=%u)" % (
            self._id, self._baud, self._bits, self._parity, self._stop)

    def _loop(self):
        return self._tx is not None and self._tx == self._rxpin

    def write(self, buf):
        n = len(buf)
        if self._loop():
            room = self._rxbuf - len(self._rx)
            self._rx.extend(buf[:room] if n > room else buf)
        time.sleep_us(n * (self._bits + 2) * 1000000 // self._baud)  # bytes on the wire
        return n

    def any(self):
        return len(self._rx)

    def read(self, n=-1):
        if not self._rx:
            if self._timeout:
                time.sleep_ms(self._timeout)
            return None
        n = len(self._rx) if n < 0 else min(n, len(self._rx))
        data = bytes(self._rx[:n])
        self._rx = self._rx[n:]
        return data

    def readinto(self, buf, nbytes=-1):
        data = self.read(len(buf) if nbytes < 0 else nbytes)
        if data is None:
            return None
        buf[:len(data)] = data
        return len(data)

    def readline(self):
        i = self._rx.find(b"\n")
        return self.read(i + 1 if i >= 0 else -1)

    def flush(self):
        pass

    def txdone(self):
        return True

    def sendbreak(self):
        pass


class SPI:
    """An SPI bus with no device on it: MISO is pulled up, every byte read is 0xFF."""

    MSB = 0 if ESP32 else 1
    LSB = 1 if ESP32 else 0

    def __init__(self, id, baudrate=1000000, *, polarity=0, phase=0, bits=8, firstbit=None,
                 sck=None, mosi=None, miso=None):
        if not (1 if ESP32 else 0) <= id < _NSPI:
            raise ValueError("SPI(%d) doesn't exist" % id)
        self._id = id
        self.init(baudrate, polarity=polarity, phase=phase, bits=bits, firstbit=firstbit)

    def init(self, baudrate=1000000, *, polarity=0, phase=0, bits=8, firstbit=None, **kw):
        self._baud = baudrate
        self._pol, self._pha, self._bits = polarity, phase, bits
        self._first = self.MSB if firstbit is None else firstbit

    def deinit(self):
        pass

    def __repr__(self):
        return "SPI(%u, baudrate=%u, polarity=%u, phase=%u, bits=%u)" % (
            self._id, self._baud, self._pol, self._pha, self._bits)

    def write(self, buf):
        return None

    def read(self, nbytes, write=0):
        return b"\xff" * nbytes

    def readinto(self, buf, write=0):
        for i in range(len(buf)):
            buf[i] = 0xFF

    def write_readinto(self, write_buf, read_buf):
        if len(write_buf) != len(read_buf):
            raise ValueError("buffers must be the same length")
        self.readinto(read_buf)


class SoftSPI(SPI):
    """`SoftSPI(baudrate=500000, *, polarity, phase, bits, firstbit, sck, mosi, miso)`."""

    MSB = 0
    LSB = 1

    def __init__(self, baudrate=500000, *, polarity=0, phase=0, bits=8, firstbit=0, sck=None,
                 mosi=None, miso=None):
        self._id = -1
        self.init(baudrate, polarity=polarity, phase=phase, bits=bits, firstbit=firstbit)

    def __repr__(self):
        return "SoftSPI(baudrate=%u, polarity=%u, phase=%u)" % (self._baud, self._pol, self._pha)


class PWM:
    """`PWM(pin, *, freq, duty_u16, duty_ns, invert)`: the settings kept and read back, as the
    port's hardware would (no scope on the pin)."""

    def __init__(self, dest, *, freq=None, duty_u16=None, duty_ns=None, invert=False):
        self._pin = dest
        self._freq = 5000 if ESP32 else 1000
        self._duty = 0
        self.init(freq=freq, duty_u16=duty_u16, duty_ns=duty_ns, invert=invert)

    def init(self, *, freq=None, duty_u16=None, duty_ns=None, invert=False):
        if freq is not None:
            self.freq(freq)
        if duty_u16 is not None:
            self.duty_u16(duty_u16)
        if duty_ns is not None:
            self.duty_ns(duty_ns)
        self._invert = bool(invert)

    def deinit(self):
        self._duty = 0

    def __repr__(self):
        return "<PWM pin=%s freq=%u duty_u16=%u>" % (_pid(self._pin), self._freq, self._duty)

    def freq(self, f=None):
        if f is None:
            return self._freq
        if not 8 <= f <= (40000000 if ESP32 else 62500000):
            raise ValueError("freq out of range")
        self._freq = f

    def duty_u16(self, d=None):
        if d is None:
            return self._duty
        if not 0 <= d <= 65535:
            raise ValueError("duty_u16 must be from 0 to 65535")
        self._duty = d

    def duty_ns(self, ns=None):
        if ns is None:
            return self._duty * 1000000000 // (self._freq * 65535)
        self.duty_u16(min(65535, ns * self._freq * 65535 // 1000000000))


class RTC:
    """The board's clock as `datetime()` tuples (year, month, day, weekday, hours, minutes,
    seconds, subseconds; weekday 0 = Monday). It starts at the host's local time and keeps the
    time it is set to for the rest of this boot."""

    _offset = 0

    def __init__(self, id=0):
        pass

    def datetime(self, dt=None):
        if dt is None:
            t = time.time() + RTC._offset
            lt = time.localtime(t)
            sub = time.time_ns() // 1000 % 1000000 if ESP32 else 0
            return (lt[0], lt[1], lt[2], lt[6], lt[3], lt[4], lt[5], sub)
        y, mo, d, wd, h, mi, s = dt[:7]
        RTC._offset = time.mktime((y, mo, d, h, mi, s, 0, 0)) - time.time()

    def init(self, dt):
        self.datetime(dt)
