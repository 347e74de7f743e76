"""host/sensors/units.py and each kind's conversion against the datasheets' formulas and worked examples."""
import struct

import numpy as np
import pytest

from firmware.sensors.analog import Analog
from firmware.sensors.bme280 import BME280
from firmware.sensors.mpu6050 import MPU6050
from firmware.sensors.sht31 import SHT31
from host.sensors import bme280, units

# BMP280 datasheet 3.12 worked example (the BME280 uses the same T/P trims and formulas)
T_P_TRIMS = (27504, 26435, -1000, 36477, -10685, 3024, 2855, 140, -7, 15500, -14600, 6000)
H_TRIMS = {"dig_H1": 75, "dig_H2": 362, "dig_H3": 0, "dig_H4": 313, "dig_H5": 50, "dig_H6": 30}
CAL = (struct.pack("<HhhHhhhhhhhh", *T_P_TRIMS) + bytes([0x00, 75])
       + struct.pack("<hB", 362, 0) + bytes([313 >> 4, (313 & 0xF) | ((50 & 0xF) << 4), 50 >> 4, 30]))
ADC_T, ADC_P = 519888, 415148


def _c_div(a, b):  # C integer division truncates toward zero
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def datasheet_int(adc_t, adc_p, adc_h, c):
    """BME280 datasheet 4.2.3 integer compensation (int32 T/H, int64 P), written out scalar."""
    var1 = (((adc_t >> 3) - (c["dig_T1"] << 1)) * c["dig_T2"]) >> 11
    var2 = (((((adc_t >> 4) - c["dig_T1"]) * ((adc_t >> 4) - c["dig_T1"])) >> 12) * c["dig_T3"]) >> 14
    t_fine = var1 + var2
    t = (t_fine * 5 + 128) >> 8
    var1 = t_fine - 128000
    var2 = var1 * var1 * c["dig_P6"]
    var2 = var2 + ((var1 * c["dig_P5"]) << 17)
    var2 = var2 + (c["dig_P4"] << 35)
    var1 = ((var1 * var1 * c["dig_P3"]) >> 8) + ((var1 * c["dig_P2"]) << 12)
    var1 = (((1 << 47) + var1) * c["dig_P1"]) >> 33
    p = 1048576 - adc_p
    p = _c_div(((p << 31) - var2) * 3125, var1)
    var1 = (c["dig_P9"] * (p >> 13) * (p >> 13)) >> 25
    var2 = (c["dig_P8"] * p) >> 19
    p = ((p + var1 + var2) >> 8) + (c["dig_P7"] << 4)
    v = t_fine - 76800
    v = (((((adc_h << 14) - (c["dig_H4"] << 20) - (c["dig_H5"] * v)) + 16384) >> 15)
         * (((((((v * c["dig_H6"]) >> 10) * (((v * c["dig_H3"]) >> 11) + 32768)) >> 10) + 2097152)
             * c["dig_H2"] + 8192) >> 14))
    v = v - (((((v >> 15) * (v >> 15)) >> 7) * c["dig_H1"]) >> 4)
    v = min(max(v, 0), 419430400)
    return t / 100, p / 256, (v >> 12) / 1024, t_fine


def raw_bme(adc_p, adc_t, adc_h):
    return struct.pack(BME280.SAMPLE_FORMAT, adc_p, adc_t, adc_h)


def test_units_bme280_calibration_parse():
    cal = bme280.parse_calibration(CAL)
    names = ["dig_T1", "dig_T2", "dig_T3"] + ["dig_P%d" % i for i in range(1, 10)]
    assert [cal[n] for n in names] == list(T_P_TRIMS)
    assert {k: cal[k] for k in H_TRIMS} == H_TRIMS


def test_units_bme280_negative_h4_h5():
    cal = bytearray(CAL)
    cal[26 + 3:26 + 7] = bytes([0xFE, 0x3A, 0xFF, 0x9C])  # 0xE4..0xE7: H4, H5 signed 12-bit
    c = bme280.parse_calibration(bytes(cal))
    assert c["dig_H4"] == -2 * 16 | 0xA == -22
    assert c["dig_H5"] == -1 * 16 | 0x3 == -13
    assert c["dig_H6"] == -100


def test_units_bme280_datasheet_example():
    out = units.to_physical("bme280", raw_bme(ADC_P, ADC_T, 30000), CAL, {})
    assert out["temperature_c"][0] == pytest.approx(25.08, abs=0.005)  # datasheet: 25.08 degC
    # datasheet: 100653.27 Pa, computed there with the untruncated t_fine (128422.2869)
    assert out["pressure_pa"][0] == pytest.approx(100653.27, abs=0.05)
    t, p, h, t_fine = datasheet_int(ADC_T, ADC_P, 30000, bme280.parse_calibration(CAL))
    assert t_fine == 128422 and t == 25.08 and p == pytest.approx(100653.27, abs=0.05)
    assert out["humidity_rh"][0] == pytest.approx(h, abs=0.01)


def test_units_bme280_double_matches_integer_formulas_over_range():
    rng = np.random.default_rng(1)
    n = 300
    adc_t = rng.integers(400000, 600000, n)
    adc_p = rng.integers(250000, 500000, n)
    adc_h = rng.integers(15000, 45000, n)
    data = b"".join(raw_bme(int(p), int(t), int(h)) for p, t, h in zip(adc_p, adc_t, adc_h))
    out = units.to_physical("bme280", data, CAL, {})
    c = bme280.parse_calibration(CAL)
    ref = np.array([datasheet_int(int(t), int(p), int(h), c)[:3] for p, t, h in zip(adc_p, adc_t, adc_h)])
    np.testing.assert_allclose(out["temperature_c"], ref[:, 0], atol=0.011)
    np.testing.assert_allclose(out["pressure_pa"], ref[:, 1], atol=0.5)
    np.testing.assert_allclose(out["humidity_rh"], ref[:, 2], atol=0.01)


def test_units_bme280_skipped_and_clamped():
    data = raw_bme(0x80000, ADC_T, 0x8000) + raw_bme(ADC_P, 0x80000, 30000) + raw_bme(ADC_P, ADC_T, 65535)
    out = units.to_physical("bme280", data, CAL)
    assert np.isnan(out["pressure_pa"][0]) and np.isnan(out["humidity_rh"][0])
    assert out["temperature_c"][0] == pytest.approx(25.08, abs=0.005)
    assert all(np.isnan(out[k][1]) for k in out)
    assert out["humidity_rh"][2] == 100.0


def test_units_bme280_bad_calibration():
    with pytest.raises(ValueError, match="33 bytes"):
        units.to_physical("bme280", raw_bme(ADC_P, ADC_T, 0), CAL[:26])


@pytest.mark.parametrize("fs,lsb", [(2, 16384), (4, 8192), (8, 4096), (16, 2048)])
def test_units_mpu6050_accel_full_scales(fs, lsb):
    data = struct.pack(">7h", lsb, -lsb, lsb // 2, 0, 0, 0, 0)
    out = units.to_physical("mpu6050", data, b"", {"accel_fs_g": fs, "gyro_fs_dps": 250})
    assert out["accel_x_g"][0] == 1.0 and out["accel_y_g"][0] == -1.0
    assert out["accel_z_g"][0] == 0.5
    assert out["accel_x_g"].dtype == np.float64


@pytest.mark.parametrize("fs,lsb", [(250, 131.0), (500, 65.5), (1000, 32.8), (2000, 16.4)])
def test_units_mpu6050_gyro_full_scales(fs, lsb):
    raw = int(round(lsb * 10))  # 10 deg/s
    data = struct.pack(">7h", 0, 0, 0, 0, raw, -raw, 0)
    out = units.to_physical("mpu6050", data, b"", {"accel_fs_g": 2, "gyro_fs_dps": fs})
    assert out["gyro_x_dps"][0] == pytest.approx(10.0, abs=1e-9 + 0.5 / lsb)
    assert out["gyro_y_dps"][0] == pytest.approx(-10.0, abs=1e-9 + 0.5 / lsb)
    assert out["gyro_z_dps"][0] == 0.0


def test_units_mpu6050_temperature_and_extremes():
    data = struct.pack(">7h", 32767, -32768, 0, 0, 0, 0, 0) + struct.pack(">7h", 0, 0, 0, -521, 0, 0, 0)
    out = units.to_physical("mpu6050", data, b"", {"accel_fs_g": 16, "gyro_fs_dps": 2000})
    assert out["accel_x_g"][0] == pytest.approx(16 * 32767 / 32768)
    assert out["accel_y_g"][0] == -16.0
    assert out["temperature_c"][0] == 36.53
    assert out["temperature_c"][1] == pytest.approx(-521 / 340 + 36.53)


def test_units_mpu6050_needs_full_scale():
    with pytest.raises(ValueError, match="accel_fs_g"):
        units.to_physical("mpu6050", bytes(14), b"", {"gyro_fs_dps": 250})
    with pytest.raises(ValueError):
        units.to_physical("mpu6050", bytes(14), b"", {"accel_fs_g": 3, "gyro_fs_dps": 250})


def test_units_sht31_formulas():
    data = struct.pack(">HHHHHH", 0, 0, 0xFFFF, 0xFFFF, 0x6666, 0x8000)
    out = units.to_physical("sht31", data, b"", {"repeatability": "high"})
    np.testing.assert_allclose(out["temperature_c"], [-45.0, 130.0, 25.0])
    np.testing.assert_allclose(out["humidity_rh"], [0.0, 100.0, 100 * 0x8000 / 65535])


def test_units_analog_voltage():
    data = struct.pack(">3H", 0, 0xFFFF, 0x8000)
    out = units.to_physical("analog", data, b"", {"vref_mv": 3300})
    np.testing.assert_allclose(out["voltage_v"], [0.0, 3.3, 3.3 * 0x8000 / 65535])


def test_units_missing_mask_gives_nan():
    data = struct.pack(">4H", 100, 200, 300, 400)
    out = units.to_physical("analog", data, b"", {"vref_mv": 1000}, missing=[False, True, False, True])
    assert np.isnan(out["voltage_v"][[1, 3]]).all()
    assert out["voltage_v"][0] == pytest.approx(100 / 65535)
    with pytest.raises(ValueError):
        units.to_physical("analog", data, b"", {"vref_mv": 1000}, missing=[True])


def test_units_input_forms_agree():
    data = struct.pack(">7h", 1, 2, 3, 4, 5, 6, 7) * 3
    cfg = {"accel_fs_g": 4, "gyro_fs_dps": 500}
    a = units.to_physical("mpu6050", data, b"", cfg)
    b = units.to_physical("mpu6050", np.frombuffer(data, np.uint8).reshape(3, 14), b"", cfg)
    c = units.to_physical("mpu6050", units.decode("mpu6050", memoryview(data)), b"", cfg)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
        np.testing.assert_array_equal(a[k], c[k])
    with pytest.raises(ValueError, match="whole number"):
        units.decode("mpu6050", data[:-1])


@pytest.mark.parametrize("drv", [BME280, MPU6050, SHT31, Analog])
def test_units_dtype_matches_driver_format(drv):
    dt = units.sample_dtype(drv.KIND)
    assert dt.itemsize == struct.calcsize(drv.SAMPLE_FORMAT)
    assert dt.names == tuple(name for name, _ in drv.CHANNELS)
    values = tuple(range(1, len(dt.names) + 1))
    rec = units.decode(drv.KIND, struct.pack(drv.SAMPLE_FORMAT, *values))
    assert tuple(int(rec[0][n]) for n in dt.names) == values
    names = [n for n, _ in units.channel_units(drv.KIND)]
    out = units.to_physical(drv.KIND, b"", CAL if drv is BME280 else b"",
                            {"accel_fs_g": 2, "gyro_fs_dps": 250, "vref_mv": 3300})
    assert list(out) == names and all(len(v) == 0 for v in out.values())


def test_units_dtype_from_format():
    dt = units.dtype_from_format("<2Hb", ["a", "b", "c"])
    assert dt == np.dtype([("a", "<u2"), ("b", "<u2"), ("c", "i1")])
    with pytest.raises(ValueError):
        units.dtype_from_format("HH", ["a", "b"])  # native alignment is not a wire format
    with pytest.raises(ValueError):
        units.dtype_from_format(">HH", ["a"])


def test_units_unknown_kind():
    with pytest.raises(ValueError, match="unknown sensor kind"):
        units.channel_units("bmp180")
