"""BME280 model against datasheet BST-BME280-DS002.

The compensation below is the datasheet's integer reference code (section 8.2), re-typed here rather
than imported, so a mistake in the model's inversion or register packing cannot cancel itself out.
"""

import math

import pytest

from host import sensors
from host.sensors.bme280 import BME280, TYPICAL_CALIBRATION


# What the model's NVM holds: the BMP280 worked example's T/P trims, typical BME280 H trims.
TYPICAL_TRIMS = {
    "dig_T1": 27504, "dig_T2": 26435, "dig_T3": -1000,
    "dig_P1": 36477, "dig_P2": -10685, "dig_P3": 3024, "dig_P4": 2855, "dig_P5": 140, "dig_P6": -7,
    "dig_P7": 15500, "dig_P8": -14600, "dig_P9": 6000,
    "dig_H1": 75, "dig_H2": 362, "dig_H3": 0, "dig_H4": 313, "dig_H5": 50, "dig_H6": 30,
}


class FakeClock:
    def __init__(self, t=1000.0):
        self.t = t

    def __call__(self):
        return self.t

    def advance(self, seconds):
        self.t += seconds


def rd(chip, reg, n):
    chip.write(bytes([reg]))
    return chip.read(n)


# --- datasheet reference code (int32 / int64 versions) -----------------------------------------------

def s16(v):
    return v - 0x10000 if v & 0x8000 else v


def parse_calibration(chip):
    """Datasheet table 16, including the 12-bit dig_H4/dig_H5 sharing 0xE5."""
    a = rd(chip, 0x88, 26)
    b = rd(chip, 0xE1, 7)
    u = [a[i] | a[i + 1] << 8 for i in range(0, 24, 2)]
    cal = {"dig_T1": u[0], "dig_T2": s16(u[1]), "dig_T3": s16(u[2]), "dig_P1": u[3]}
    for i in range(2, 10):
        cal[f"dig_P{i}"] = s16(u[i + 2])
    cal["dig_H1"] = a[25]
    cal["dig_H2"] = s16(b[0] | b[1] << 8)
    cal["dig_H3"] = b[2]
    h4 = (b[3] << 4) | (b[4] & 0x0F)
    h5 = (b[5] << 4) | (b[4] >> 4)
    cal["dig_H4"] = h4 - 0x1000 if h4 & 0x800 else h4
    cal["dig_H5"] = h5 - 0x1000 if h5 & 0x800 else h5
    cal["dig_H6"] = b[6] - 0x100 if b[6] & 0x80 else b[6]
    return cal


def c_div(a, b):
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def comp_t(adc_t, c):
    """-> (T in 0.01 degC, t_fine)"""
    var1 = (((adc_t >> 3) - (c["dig_T1"] << 1)) * c["dig_T2"]) >> 11
    var2 = (((((adc_t >> 4) - c["dig_T1"]) * ((adc_t >> 4) - c["dig_T1"])) >> 12) * c["dig_T3"]) >> 14
    t_fine = var1 + var2
    return (t_fine * 5 + 128) >> 8, t_fine


def comp_p64(adc_p, t_fine, c):
    """-> Pa as Q24.8"""
    var1 = t_fine - 128000
    var2 = var1 * var1 * c["dig_P6"]
    var2 = var2 + ((var1 * c["dig_P5"]) << 17)
    var2 = var2 + (c["dig_P4"] << 35)
    var1 = ((var1 * var1 * c["dig_P3"]) >> 8) + ((var1 * c["dig_P2"]) << 12)
    var1 = (((1 << 47) + var1) * c["dig_P1"]) >> 33
    if var1 == 0:
        return 0
    p = 1048576 - adc_p
    p = c_div(((p << 31) - var2) * 3125, var1)
    var1 = (c["dig_P9"] * (p >> 13) * (p >> 13)) >> 25
    var2 = (c["dig_P8"] * p) >> 19
    return ((p + var1 + var2) >> 8) + (c["dig_P7"] << 4)


def comp_p32(adc_p, t_fine, c):
    """-> Pa (the 32-bit version, unsigned arithmetic emulated)"""
    m32 = 0xFFFFFFFF
    var1 = (t_fine >> 1) - 64000
    var2 = (((var1 >> 2) * (var1 >> 2)) >> 11) * c["dig_P6"]
    var2 = var2 + ((var1 * c["dig_P5"]) << 1)
    var2 = (var2 >> 2) + (c["dig_P4"] << 16)
    var1 = (((c["dig_P3"] * (((var1 >> 2) * (var1 >> 2)) >> 13)) >> 3) + ((c["dig_P2"] * var1) >> 1)) >> 18
    var1 = ((32768 + var1) * c["dig_P1"]) >> 15
    if var1 == 0:
        return 0
    p = (((1048576 - adc_p) - (var2 >> 12)) & m32) * 3125 & m32
    if p < 0x80000000:
        p = ((p << 1) & m32) // var1
    else:
        p = (p // var1) * 2
    var1 = (c["dig_P9"] * ((((p >> 3) * (p >> 3)) & m32) >> 13)) >> 12
    var2 = ((p >> 2) * c["dig_P8"]) >> 13
    return (p + ((var1 + var2 + c["dig_P7"]) >> 4)) & m32


def comp_h(adc_h, t_fine, c):
    """-> %RH as Q22.10"""
    v = t_fine - 76800
    v = (((((adc_h << 14) - (c["dig_H4"] << 20) - (c["dig_H5"] * v)) + 16384) >> 15)
         * (((((((v * c["dig_H6"]) >> 10) * (((v * c["dig_H3"]) >> 11) + 32768)) >> 10) + 2097152)
             * c["dig_H2"] + 8192) >> 14))
    v = v - (((((v >> 15) * (v >> 15)) >> 7) * c["dig_H1"]) >> 4)
    v = 0 if v < 0 else v
    v = 419430400 if v > 419430400 else v
    return v >> 12


def raw_data(chip):
    d = rd(chip, 0xF7, 8)
    adc_p = (d[0] << 12) | (d[1] << 4) | (d[2] >> 4)
    adc_t = (d[3] << 12) | (d[4] << 4) | (d[5] >> 4)
    adc_h = (d[6] << 8) | d[7]
    return adc_t, adc_p, adc_h


P_RESOLUTION_PA = {1: 2.62, 2: 1.31, 4: 0.66, 8: 0.33, 16: 0.16}  # datasheet table 3 (filter off)
P32_SLACK_PA = 5.0  # quantisation of the 32-bit reference itself (var1 ~ dig_P1 has ~15 bits; up to ~4.5 Pa)
OSRS_CODE = {0: 0, 1: 1, 2: 2, 4: 3, 8: 4, 16: 5}


def check_against_truth(chip, osrs_p, filtered=False):
    cal = parse_calibration(chip)
    adc_t, adc_p, adc_h = raw_data(chip)
    truth = chip.truth()
    t_centi, t_fine = comp_t(adc_t, cal)
    assert abs(t_centi / 100 - truth["temperature_c"]) <= 0.01
    p_res = 0.16 if filtered else P_RESOLUTION_PA[osrs_p]
    assert abs(comp_p64(adc_p, t_fine, cal) / 256 - truth["pressure_pa"]) <= p_res
    assert abs(comp_p32(adc_p, t_fine, cal) - truth["pressure_pa"]) <= p_res + P32_SLACK_PA
    assert abs(comp_h(adc_h, t_fine, cal) / 1024 - truth["humidity_rh"]) <= 0.008
    return adc_t, adc_p, adc_h


def t_max_ms(ot, op, oh):
    """Datasheet 9.1, maximum, written out independently of the model."""
    return 1.25 + (2.3 * ot if ot else 0) + (2.3 * op + 0.575 if op else 0) + (2.3 * oh + 0.575 if oh else 0)


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def chip(clock):
    return BME280(0x76, seed=7, clock=clock)


def forced(chip, ot, op, oh):
    chip.write(bytes([0xF2, OSRS_CODE[oh], 0xF4, OSRS_CODE[ot] << 5 | OSRS_CODE[op] << 2 | 0b01]))


# --- identity, calibration, registry ----------------------------------------------------------------

def test_registry_and_default_addresses():
    assert sensors.kind("bme280").chip is BME280
    assert BME280.DEFAULT_ADDRESS == 0x76
    with pytest.raises(ValueError):
        BME280(0x50)
    assert BME280(0x77).address == 0x77


def test_chip_id_and_wrong_id_fault(chip):
    assert rd(chip, 0xD0, 1) == b"\x60"
    chip.set_wrong_id(True)
    assert rd(chip, 0xD0, 1) != b"\x60"
    chip.set_wrong_id(False)
    assert rd(chip, 0xD0, 1) == b"\x60"


def test_calibration_block_parses_to_model_calibration(chip):
    assert rd(chip, 0x88, 26) + rd(chip, 0xE1, 7) == TYPICAL_CALIBRATION  # the model's NVM image
    cal = parse_calibration(chip)
    assert cal == TYPICAL_TRIMS
    assert cal["dig_H4"] == 313 and cal["dig_H5"] == 50  # the nibble-shared pair


def test_reference_code_matches_bmp280_worked_example(chip):
    """Same T/P trimming as the BMP280 datasheet example: adc_T 519888 -> 25.08 C, adc_P 415148 -> 100653 Pa."""
    cal = parse_calibration(chip)
    t_centi, t_fine = comp_t(519888, cal)
    assert t_centi == 2508
    assert abs(comp_p64(415148, t_fine, cal) / 256 - 100653.27) < 0.1
    # The 32-bit version divides by a ~15-bit var1, so it is only good to a few Pa.
    assert abs(comp_p32(415148, t_fine, cal) - 100653) <= P32_SLACK_PA


# --- forced mode -------------------------------------------------------------------------------------

@pytest.mark.parametrize("ot,op,oh", [(1, 1, 1), (2, 16, 4), (16, 2, 8), (4, 4, 1), (8, 8, 16)])
def test_forced_mode_timing_and_values(chip, clock, ot, op, oh):
    assert raw_data(chip) == (0x80000, 0x80000, 0x8000)
    forced(chip, ot, op, oh)
    t_meas = t_max_ms(ot, op, oh) / 1000
    clock.advance(t_meas * 0.999)
    assert rd(chip, 0xF3, 1)[0] & 0x08, "measuring bit set during the conversion"
    assert raw_data(chip) == (0x80000, 0x80000, 0x8000), "data registers update only when done"
    clock.advance(t_meas * 0.002)
    assert rd(chip, 0xF3, 1)[0] == 0
    assert rd(chip, 0xF4, 1)[0] & 3 == 0, "back to sleep after one conversion"
    adc_t, adc_p, _ = check_against_truth(chip, op)
    if ot < 16:  # 16 bit at x1, one more bit per doubling: unused low bits stay zero
        assert adc_t % (1 << (4 - int(math.log2(ot)))) == 0
    if op < 16:
        assert adc_p % (1 << (4 - int(math.log2(op)))) == 0
    t = chip.truth()
    assert 15 <= t["temperature_c"] <= 30 and 95000 <= t["pressure_pa"] <= 105000
    assert 30 <= t["humidity_rh"] <= 70


def test_sleep_keeps_last_values(chip, clock):
    forced(chip, 1, 1, 1)
    clock.advance(0.02)
    first = rd(chip, 0xF7, 8)
    clock.advance(300.0)
    assert rd(chip, 0xF7, 8) == first
    forced(chip, 1, 1, 1)
    clock.advance(0.02)
    assert rd(chip, 0xF7, 8) != first


def test_ctrl_hum_takes_effect_only_after_ctrl_meas_write(chip, clock):
    chip.write(bytes([0xF4, 0b00100101]))  # humidity still skipped (ctrl_hum = 0)
    clock.advance(0.02)
    assert raw_data(chip)[2] == 0x8000
    chip.write(bytes([0xF2, 0x01]))
    assert rd(chip, 0xF2, 1) == b"\x01"
    chip.write(bytes([0xF4, 0b00100101]))
    clock.advance(0.02)
    assert raw_data(chip)[2] != 0x8000


def test_skipped_measurements_and_their_time(chip, clock):
    chip.write(bytes([0xF2, 0x00, 0xF4, 0b00000001]))  # all skipped: 1.25 ms
    clock.advance(0.00124)
    assert rd(chip, 0xF3, 1)[0] & 0x08
    clock.advance(0.00002)
    assert rd(chip, 0xF3, 1)[0] & 0x08 == 0
    assert raw_data(chip) == (0x80000, 0x80000, 0x8000)
    chip.write(bytes([0xF2, 0x01, 0xF4, 0b00100001]))  # T only plus H: P stays skipped
    clock.advance(0.01)
    adc_t, adc_p, adc_h = raw_data(chip)
    assert adc_p == 0x80000 and adc_t != 0x80000 and adc_h != 0x8000
    assert math.isnan(chip.truth()["pressure_pa"])


def test_register_pairs_in_one_write(chip, clock):
    clock.advance(0.003)  # past the power-on NVM copy (status.im_update)
    chip.write(bytes([0xF2, 0x03, 0xF5, 0b10110000, 0xF4, 0b01001000]))  # sleep mode, so config applies
    assert rd(chip, 0xF2, 4) == bytes([0x03, 0x00, 0b01001000, 0b10110000])


# --- normal mode -------------------------------------------------------------------------------------

@pytest.mark.parametrize("ot,op,oh,filt", [(1, 1, 1, 0), (2, 16, 1, 0), (1, 4, 2, 4), (16, 16, 16, 16)])
def test_normal_mode_cycle(chip, clock, ot, op, oh, filt):
    filter_code = {0: 0, 2: 1, 4: 2, 8: 3, 16: 4}[filt]
    chip.write(bytes([0xF5, 0b001 << 5 | filter_code << 2]))  # t_sb 62.5 ms
    chip.write(bytes([0xF2, OSRS_CODE[oh], 0xF4, OSRS_CODE[ot] << 5 | OSRS_CODE[op] << 2 | 0b11]))
    t_meas = t_max_ms(ot, op, oh) / 1000
    period = t_meas + 0.0625
    start = clock.t
    seen = set()
    for n in range(6):
        clock.t = start + n * period + t_meas * 0.5
        assert rd(chip, 0xF3, 1)[0] & 0x08
        clock.t = start + n * period + t_meas * 1.01
        assert rd(chip, 0xF3, 1)[0] & 0x08 == 0
        assert rd(chip, 0xF4, 1)[0] & 3 == 3, "normal mode stays on"
        seen.add(check_against_truth(chip, op, filtered=filt > 0))
    assert len(seen) > 1, "values move between conversions"


def test_normal_mode_after_long_gap_is_cheap_and_correct(chip, clock):
    chip.write(bytes([0xF5, 0b000 << 5 | 4 << 2, 0xF2, 1, 0xF4, 0b00100111]))  # t_sb 0.5 ms, filter 16
    clock.advance(3600.0)  # ~350k conversions
    check_against_truth(chip, 1, filtered=True)


def test_soft_reset_restores_defaults(chip, clock):
    chip.write(bytes([0xF2, 0x05, 0xF5, 0xA0, 0xF4, 0b10110111]))
    clock.advance(1.0)
    assert raw_data(chip) != (0x80000, 0x80000, 0x8000)
    chip.write(bytes([0xE0, 0x12]))  # anything but 0xB6 does nothing
    assert rd(chip, 0xF4, 1)[0] == 0b10110111
    chip.write(bytes([0xE0, 0xB6]))
    assert rd(chip, 0xF3, 1)[0] & 0x01, "im_update while the NVM is copied"
    clock.advance(0.003)
    assert rd(chip, 0xE0, 1) == b"\x00"
    assert rd(chip, 0xF2, 4) == b"\x00\x00\x00\x00"
    assert rd(chip, 0xF7, 8) == bytes([0x80, 0, 0, 0x80, 0, 0, 0x80, 0])
    assert rd(chip, 0xD0, 1) == b"\x60"
    assert parse_calibration(chip)["dig_T1"] == TYPICAL_TRIMS["dig_T1"]
    clock.advance(10.0)
    assert raw_data(chip) == (0x80000, 0x80000, 0x8000), "asleep after reset"


# --- faults, determinism, plausibility ---------------------------------------------------------------

def test_freeze_holds_data_registers(chip, clock):
    chip.write(bytes([0xF2, 1, 0xF4, 0b00100111]))
    clock.advance(1.0)
    chip.freeze(True)
    held = rd(chip, 0xF7, 8)
    for _ in range(5):
        clock.advance(0.5)
        assert rd(chip, 0xF7, 8) == held
    chip.freeze(False)
    clock.advance(0.5)
    assert rd(chip, 0xF7, 8) != held


def script(chip, clock):
    out = []
    chip.write(bytes([0xF2, 1, 0xF4, 0b01010101]))
    for _ in range(3):
        clock.advance(0.05)
        out.append(rd(chip, 0xF7, 8))
        chip.write(bytes([0xF4, 0b01010101]))
    chip.write(bytes([0xF4, 0b00100111]))
    for _ in range(5):
        clock.advance(0.3)
        out.append(rd(chip, 0xF7, 8))
    return out


def test_same_seed_same_bytes_other_seed_other_bytes():
    runs = []
    for seed in (3, 3, 4):
        clock = FakeClock(50.0)
        runs.append(script(BME280(0x76, seed=seed, clock=clock), clock))
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


@pytest.mark.parametrize("seed", range(8))
def test_values_plausible_and_slow(seed):
    clock = FakeClock(0.0)
    chip = BME280(0x76, seed=seed, clock=clock)
    chip.write(bytes([0xF2, 5, 0xF4, 0b10110111]))
    previous = None
    for _ in range(20):
        clock.advance(10.0)
        t = chip.truth()
        assert 15 <= t["temperature_c"] <= 30
        assert 95000 <= t["pressure_pa"] <= 105000
        assert 30 <= t["humidity_rh"] <= 70
        if previous is not None:
            assert abs(t["temperature_c"] - previous) <= 0.03 * 10
        previous = t["temperature_c"]
