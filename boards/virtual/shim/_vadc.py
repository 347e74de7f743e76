"""`machine.ADC` of the virtual board: the rp2 port's on the rp2040 profile, the esp32 port's API
(atten, width, read, read_uv) on the esp32 profile.

rp2: `ADC(0..3)` or `ADC(Pin(26..29))`, and `ADC(4)` (`ADC.CORE_TEMP`), the temperature sensor:
0.706 V at 27 degC and -1.721 mV/degC (RP2040 datasheet 4.9.5), read through the 12-bit ADC on a
3.3 V reference; the die is modelled at 27 degC. read_u16 scales 12 bits to 16 as the port does.
esp32: ADC1 pins 32..39 and ADC2 pins 0, 2, 4, 12..15, 25..27; `atten` ATTN_0DB..ATTN_11DB
(default 11 dB), `width` 9..12 bits (default 12). The simulated input is the runner's voltage on
a 3.3 V scale; full scale per attenuation is 0.95 / 1.25 / 1.75 / 3.3 V (11 dB modelled as the
3.3 V the firmware assumes), read_uv an ideally calibrated reading.
"""
from micropython import const

from _vipc import OP_ADC, ESP32, done, inb, reply, send
import os

_INSTANT = os.getenv("PAGERLESS_VB_BUS") == "instant"
_TEMP = const(4)
_ESP_PINS = (32, 33, 34, 35, 36, 37, 38, 39, 0, 2, 4, 12, 13, 14, 15, 25, 26, 27)
_FS_MV = (950, 1250, 1750, 3300)
# 27 degC: 0.706 V of 3.3 V in 12 bits
_TEMP_RAW = 706 * 4095 // 3300


class ADC:
    CORE_TEMP = _TEMP

    def __init__(self, pin, *, atten=None):
        src = pin if isinstance(pin, int) else pin._id
        self._v = -1  # instant mode: the first reading, kept here (-1: none yet)
        self._atten = 3
        self._width = 12
        if ESP32:
            if src not in _ESP_PINS:
                raise ValueError("invalid pin")
            if atten is not None:
                self.atten(atten)
        elif atten is not None:
            raise TypeError("unexpected keyword argument 'atten'")
        elif isinstance(pin, int) and 0 <= src <= 4:
            src = src if src == _TEMP else 26 + src
        elif not 26 <= src <= 29:
            raise ValueError("Pin doesn't have ADC capabilities")
        self._ch = src
        self._temp = not ESP32 and src == _TEMP

    def __repr__(self):
        if ESP32:
            return "ADC(Pin(%u), atten=%u)" % (self._ch, self._atten)
        return "<ADC channel=%u>" % (4 if self._temp else self._ch - 26)

    def read_u16(self):
        # instant mode: one attribute load, no global or dict lookups (a real ADC read is one
        # C call; a firmware's 10 kHz stream calls this on every sample)
        v = self._v
        if v >= 0:
            return v
        if self._temp:
            return _TEMP_RAW << 4 | _TEMP_RAW >> 8
        send(OP_ADC, 0, self._ch & 0xFF, 0, 0, 2, 0)
        reply(None, 0, True)
        v = inb[0] | (inb[1] << 8)
        done()
        if self._atten != 3 or self._width != 12:
            b = self._width
            raw = self.read()
            v = raw << (16 - b) | raw >> (2 * b - 16)
        if _INSTANT:
            self._v = v
        return v


class _EspADC(ADC):
    """The esp32 port's ADC: atten, width, read, read_uv and their constants."""

    ATTN_0DB = 0
    ATTN_2_5DB = 1
    ATTN_6DB = 2
    ATTN_11DB = 3
    WIDTH_9BIT = 9
    WIDTH_10BIT = 10
    WIDTH_11BIT = 11
    WIDTH_12BIT = 12

    def _mv(self):
        send(OP_ADC, 0, self._ch & 0xFF, 0, 0, 2, 0)
        reply(None, 0, True)
        v = inb[0] | (inb[1] << 8)
        done()
        return v * 3300 // 65535

    def read(self):
        fs = _FS_MV[self._atten]
        mv = min(self._mv(), fs)
        return mv * ((1 << self._width) - 1) // fs

    def read_uv(self):
        return min(self._mv(), _FS_MV[self._atten]) * 1000

    def atten(self, a):
        if not 0 <= a <= 3:
            raise ValueError("invalid attenuation")
        self._atten = a

    def width(self, w):
        if not 9 <= w <= 12:
            raise ValueError("invalid bit-width")
        self._width = w

    def init(self, *, atten=None):
        if atten is not None:
            self.atten(atten)


if ESP32:
    ADC = _EspADC  # noqa: F811
