"""The BME280 datasheet's *integer* compensation (BST-BME280-DS002 section 4.2.3 / 8.2), inverted: the
raw ADC codes the simulated chip (host/sensors/bme280.py) reports for a temperature, pressure and
humidity.  Inverting the datasheet's own reference code means any driver written from the datasheet
gets the simulated values back within its resolution; the host's conversion uses the double-precision
formulas instead.  (Underscored: a helper of the bme280 kind, not a sensor kind of its own.)"""
from __future__ import annotations

import math
from types import SimpleNamespace

RAW_SKIPPED_TP = 0x80000  # adc_P / adc_T when the measurement is skipped
RAW_SKIPPED_H = 0x8000


def raw_codes(temp: float, press: float, hum: float, cal: SimpleNamespace, osrs: tuple[int, int, int],
              filtered: bool) -> tuple[tuple[int, int, int], tuple[float, float, float]]:
    """((adc_t, adc_p, adc_h), (temperature, pressure, humidity) as the chip measured them): a
    skipped measurement (oversampling factor 0) reports its RAW_SKIPPED code and NaN."""
    osrs_t, osrs_p, osrs_h = osrs
    if osrs_t:
        bits = resolution_bits(osrs_t, filtered)
        adc_t = _closest(lambda a: t_fine_of(a, cal), temp * 5120.0, bits, 20 - bits, True)
        t_fine = t_fine_of(adc_t, cal)
    else:
        adc_t, t_fine = RAW_SKIPPED_TP, round(temp * 5120.0)
        temp = math.nan
    if osrs_p:
        bits = resolution_bits(osrs_p, filtered)
        adc_p = _closest(lambda a: pressure_q24_8(a, t_fine, cal), press * 256.0, bits, 20 - bits, False)
    else:
        adc_p, press = RAW_SKIPPED_TP, math.nan
    if osrs_h:
        adc_h = _closest(lambda a: humidity_q22_22(a, t_fine, cal), hum * 4194304.0, 16, 0, True)
    else:
        adc_h, hum = RAW_SKIPPED_H, math.nan
    return (adc_t, adc_p, adc_h), (temp, press, hum)


def t_fine_of(adc_t: int, c: SimpleNamespace) -> int:
    var1 = (((adc_t >> 3) - (c.dig_T1 << 1)) * c.dig_T2) >> 11
    d = (adc_t >> 4) - c.dig_T1
    var2 = (((d * d) >> 12) * c.dig_T3) >> 14
    return var1 + var2


def _cdiv(a: int, b: int) -> int:
    """C integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def pressure_q24_8(adc_p: int, t_fine: int, c: SimpleNamespace) -> int:
    """The 64-bit reference: pressure in Pa as unsigned Q24.8."""
    var1 = t_fine - 128000
    var2 = var1 * var1 * c.dig_P6
    var2 = var2 + ((var1 * c.dig_P5) << 17)
    var2 = var2 + (c.dig_P4 << 35)
    var1 = ((var1 * var1 * c.dig_P3) >> 8) + ((var1 * c.dig_P2) << 12)
    var1 = (((1 << 47) + var1) * c.dig_P1) >> 33
    if var1 == 0:
        return 0
    p = 1048576 - adc_p
    p = _cdiv(((p << 31) - var2) * 3125, var1)
    var1 = (c.dig_P9 * (p >> 13) * (p >> 13)) >> 25
    var2 = (c.dig_P8 * p) >> 19
    return ((p + var1 + var2) >> 8) + (c.dig_P7 << 4)


def humidity_q22_22(adc_h: int, t_fine: int, c: SimpleNamespace) -> int:
    """The 32-bit reference before its final ``>> 12``: finer steps make a better inversion target."""
    v = t_fine - 76800
    v = (((((adc_h << 14) - (c.dig_H4 << 20) - (c.dig_H5 * v)) + 16384) >> 15)
         * (((((((v * c.dig_H6) >> 10) * (((v * c.dig_H3) >> 11) + 32768)) >> 10) + 2097152)
             * c.dig_H2 + 8192) >> 14))
    v = v - (((((v >> 15) * (v >> 15)) >> 7) * c.dig_H1) >> 4)
    return min(max(v, 0), 419430400)


def _closest(f, target: float, bits: int, shift: int, increasing: bool) -> int:
    """The raw value on the ``bits``-bit lattice whose compensated value is nearest ``target``.

    Bisection over monotonic ``f``: ~20 evaluations for a 20-bit value.
    """
    lo, hi = 0, (1 << bits) - 1
    sign = 1 if increasing else -1
    while lo < hi:
        mid = (lo + hi) >> 1
        if sign * f(mid << shift) < sign * target:
            lo = mid + 1
        else:
            hi = mid
    best = lo
    if lo > 0 and abs(f((lo - 1) << shift) - target) <= abs(f(lo << shift) - target):
        best = lo - 1
    return best << shift


def resolution_bits(osrs_factor: int, filtered: bool) -> int:
    """T/P ADC resolution (datasheet 3.4.2/3.4.3): 16 bit at x1 plus one per doubling, 20 with IIR."""
    return 20 if filtered else 16 + int(math.log2(osrs_factor))
