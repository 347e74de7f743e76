"""Bosch BME280 humidity, pressure and temperature sensor (datasheet BST-BME280-DS002).

Raw integers on the device, physics on the host: ``read_into()`` copies the three ADC
values into the caller's buffer and the host applies the datasheet's compensation
(``host/sensors/bme280.py``) with the calibration block sent once.

Sample layout, ``SAMPLE_FORMAT = ">IIH"`` (10 bytes, big-endian):
``adc_P`` (20-bit), ``adc_T`` (20-bit), ``adc_H`` (16-bit) as unsigned integers, i.e. exactly
the inputs of the datasheet's compensation formulas. A skipped measurement (oversampling 0)
reads 0x80000 (P, T) or 0x8000 (H).

Modes: ``mode="normal"`` (default) runs the chip continuously, so ``start()`` is a no-op and
``read_into()`` never waits. ``mode="forced"``: ``start()`` triggers one conversion and
``read_into()`` polls the status register for at most the datasheet's maximum measurement
time (plus a margin), then raises ``OSError(ETIMEDOUT)``.

Example::

    from machine import I2C, Pin
    from sensors.bme280 import BME280

    i2c = I2C(0, scl=Pin(5), sda=Pin(4), freq=400000)
    bme = BME280(i2c, address=0x76, pressure_oversampling=4, iir_filter=4)
    buf = bytearray(BME280.SAMPLE_SIZE)
    bme.start()                  # no-op in normal mode
    bme.read_into(buf)           # raw adc_P, adc_T, adc_H
    # host side:
    # host.sensors.units.to_physical("bme280", raw_bytes, bme.calibration(), bme.config())

Allocation: ``__init__``, ``calibration()``, ``config()`` and ``reset()`` allocate;
``start()`` and ``read_into()`` do not.
"""

import struct

try:
    from micropython import const
except ImportError:
    const = lambda x: x  # noqa: E731  (CPython)

try:
    from time import sleep_ms, ticks_diff, ticks_ms
except ImportError:  # CPython (host tests)
    from time import monotonic as _monotonic
    from time import sleep as _sleep

    def ticks_ms():
        return int(_monotonic() * 1000)

    def ticks_diff(a, b):
        return a - b

    def sleep_ms(ms):
        _sleep(ms / 1000)


# Register map (datasheet section 5.3, table 18)
_REG_CALIB00 = const(0x88)  # calib00..calib25: 0x88..0xA1 (dig_T1..dig_H1)
_REG_ID = const(0xD0)
_REG_RESET = const(0xE0)
_REG_CALIB26 = const(0xE1)  # calib26..calib32: 0xE1..0xE7 (dig_H2..dig_H6)
_REG_CTRL_HUM = const(0xF2)
_REG_STATUS = const(0xF3)
_REG_CTRL_MEAS = const(0xF4)
_REG_CONFIG = const(0xF5)
_REG_PRESS_MSB = const(0xF7)  # press_msb..hum_lsb: 0xF7..0xFE, one burst

_CHIP_ID = const(0x60)
_RESET_WORD = const(0xB6)
_STATUS_MEASURING = const(0x08)
_STATUS_IM_UPDATE = const(0x01)
_MODE_SLEEP = const(0x00)
_MODE_FORCED = const(0x01)
_MODE_NORMAL = const(0x03)

_CALIB_LEN_A = const(26)
_CALIB_LEN_B = const(7)
_BURST_LEN = const(8)
_NVM_TIMEOUT_MS = const(10)  # start-up time is 2 ms max (datasheet table 1)
_FORCED_MARGIN_MS = const(5)

_ENODEV = const(19)
_EIO = const(5)
_ETIMEDOUT = const(110)

# setting value -> register code is the index in these tuples
_OVERSAMPLING = (0, 1, 2, 4, 8, 16)  # osrs_x: 0 = skipped
_IIR_FILTER = (0, 2, 4, 8, 16)  # filter: 0 = off
_STANDBY_US = (500, 62500, 125000, 250000, 500000, 1000000, 10000, 20000)  # t_sb


def _code(table, value, name):
    if value not in table:
        raise ValueError("%s must be one of %r, not %r" % (name, table, value))
    return table.index(value)


def _measure_time_max_us(osrs_t, osrs_p, osrs_h):
    """Maximum measurement time (datasheet section 9.1), oversampling factors in."""
    t = 1250 + 2300 * osrs_t
    if osrs_p:
        t += 2300 * osrs_p + 575
    if osrs_h:
        t += 2300 * osrs_h + 575
    return t


class BME280:
    KIND = "bme280"
    SAMPLE_FORMAT = ">IIH"
    SAMPLE_SIZE = const(10)
    CHANNELS = (("pressure", "raw"), ("temperature", "raw"), ("humidity", "raw"))
    # For the default settings (x1 oversampling, 0.5 ms standby); each instance sets its own.
    MIN_PERIOD_US = const(9800)
    FREE_RUNNING = True  # normal mode: start() does nothing (each instance sets its own)
    DEFAULT_STREAM = ("env", 100000, 10)  # (name, period_us, batch) without config.json

    def __init__(
        self,
        i2c,
        address=0x76,
        mode="normal",
        temperature_oversampling=1,
        pressure_oversampling=1,
        humidity_oversampling=1,
        iir_filter=0,
        standby_us=500,
    ):
        # settings first, before any register is touched
        if address not in (0x76, 0x77):
            raise ValueError("BME280 address must be 0x76 or 0x77")
        if mode not in ("normal", "forced"):
            raise ValueError("mode must be 'normal' or 'forced'")
        osrs_t = _code(_OVERSAMPLING, temperature_oversampling, "temperature_oversampling")
        osrs_p = _code(_OVERSAMPLING, pressure_oversampling, "pressure_oversampling")
        osrs_h = _code(_OVERSAMPLING, humidity_oversampling, "humidity_oversampling")
        filt = _code(_IIR_FILTER, iir_filter, "iir_filter")
        t_sb = _code(_STANDBY_US, standby_us, "standby_us")

        self._i2c = i2c
        self._address = address
        self._mode = mode
        self._forced = mode == "forced"
        self._settings = (temperature_oversampling, pressure_oversampling, humidity_oversampling,
                          iir_filter, standby_us)
        self._ctrl_hum = osrs_h
        meas = (osrs_t << 5) | (osrs_p << 2)
        self._ctrl_meas = meas | (_MODE_FORCED if self._forced else _MODE_NORMAL)
        self._config = (t_sb << 5) | (filt << 2)
        self._measure_us = _measure_time_max_us(
            temperature_oversampling, pressure_oversampling, humidity_oversampling)
        self._timeout_ms = self._measure_us // 1000 + _FORCED_MARGIN_MS
        if self._forced:
            self.MIN_PERIOD_US = self._measure_us
        else:
            self.MIN_PERIOD_US = self._measure_us + standby_us
        self.FREE_RUNNING = not self._forced  # normal mode: start() does nothing

        # scratch, allocated once
        self._reg = bytearray(1)
        self._wr = bytearray(2)  # register, value: one buffer per write (see _write)
        self._status = bytearray(1)
        self._raw = bytearray(_BURST_LEN)
        self._forced_cmd = bytearray(2)  # CTRL_MEAS and its value: a forced conversion in one write
        self._forced_cmd[0] = _REG_CTRL_MEAS
        self._forced_cmd[1] = self._ctrl_meas
        # pre-built so the hot path raises without allocating (two args: errno set on CPython too)
        self._etimedout = OSError(_ETIMEDOUT, "BME280 at 0x%02x: conversion timed out" % address)

        self._check_id()
        self._wait_nvm()
        cal = bytearray(_CALIB_LEN_A + _CALIB_LEN_B)
        mv = memoryview(cal)
        i2c.readfrom_mem_into(address, _REG_CALIB00, mv[:_CALIB_LEN_A])
        i2c.readfrom_mem_into(address, _REG_CALIB26, mv[_CALIB_LEN_A:])
        self._calib = bytes(cal)
        self._configure()

    def _check_id(self):
        reg = self._reg
        try:
            self._i2c.readfrom_mem_into(self._address, _REG_ID, reg)
        except OSError:
            raise OSError(_ENODEV, "BME280 not found at 0x%02x" % self._address)
        if reg[0] != _CHIP_ID:
            raise OSError(_ENODEV, "BME280 not found at 0x%02x (chip id 0x%02x, expected 0x60)"
                          % (self._address, reg[0]))

    def _wait_nvm(self):
        # im_update is set while the NVM calibration is copied into the image registers
        st = self._status
        t0 = ticks_ms()
        while True:
            self._i2c.readfrom_mem_into(self._address, _REG_STATUS, st)
            if not st[0] & _STATUS_IM_UPDATE:
                return
            if ticks_diff(ticks_ms(), t0) > _NVM_TIMEOUT_MS:
                raise OSError(_ETIMEDOUT, "BME280 at 0x%02x: NVM copy did not finish" % self._address)
            sleep_ms(1)

    def _write(self, reg, value):
        b = self._wr
        b[0] = reg
        b[1] = value
        self._i2c.writeto(self._address, b)  # one buffer: writeto_mem allocates on rp2

    def _configure(self):
        # config is only written reliably in sleep mode; ctrl_hum takes effect on the
        # following ctrl_meas write (datasheet 5.4.3, 5.4.6)
        self._write(_REG_CTRL_MEAS, self._ctrl_meas & 0xFC)  # sleep, keep osrs_t/osrs_p
        self._write(_REG_CTRL_HUM, self._ctrl_hum)
        self._write(_REG_CONFIG, self._config)
        # forced mode stays asleep until start(); this write still latches ctrl_hum
        self._write(_REG_CTRL_MEAS, self._ctrl_meas & 0xFC if self._forced else self._ctrl_meas)

    def calibration(self):
        """calib00..calib25 (0x88..0xA1) followed by calib26..calib32 (0xE1..0xE7): 33 bytes."""
        return self._calib

    def config(self):
        t, p, h, f, sb = self._settings
        return {
            "mode": self._mode,
            "temperature_oversampling": t,
            "pressure_oversampling": p,
            "humidity_oversampling": h,
            "iir_filter": f,
            "standby_us": sb,
            "measure_time_max_us": self._measure_us,
        }

    def start(self):
        """Forced mode: trigger one conversion. Normal mode: nothing to do."""
        if self._forced:
            self._i2c.writeto(self._address, self._forced_cmd)

    def read_into(self, buf):
        """Fill buf (SAMPLE_SIZE bytes) with adc_P, adc_T, adc_H (">IIH")."""
        i2c = self._i2c
        addr = self._address
        if self._forced:
            st = self._status
            t0 = ticks_ms()
            while True:
                i2c.readfrom_mem_into(addr, _REG_STATUS, st)
                if not st[0] & _STATUS_MEASURING:
                    break
                if ticks_diff(ticks_ms(), t0) > self._timeout_ms:
                    raise self._etimedout
        raw = self._raw
        i2c.readfrom_mem_into(addr, _REG_PRESS_MSB, raw)
        struct.pack_into(
            ">IIH", buf, 0,
            (raw[0] << 12) | (raw[1] << 4) | (raw[2] >> 4),
            (raw[3] << 12) | (raw[4] << 4) | (raw[5] >> 4),
            (raw[6] << 8) | raw[7],
        )

    def reset(self):
        """Soft reset, wait for the NVM copy, check the chip id, rewrite the settings."""
        self._write(_REG_RESET, _RESET_WORD)
        sleep_ms(2)
        self._check_id()
        self._wait_nvm()
        self._configure()


DRIVER = BME280
