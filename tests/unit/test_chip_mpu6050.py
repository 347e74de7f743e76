"""MPU-6050 model against register map RM-MPU-6000A."""

import math
import struct

import numpy as np
import pytest

from host import sensors
from host.sensors.mpu6050 import MPU6050

G = 9.80665


class FakeClock:
    def __init__(self, t=500.0):
        self.t = t

    def __call__(self):
        return self.t

    def advance(self, seconds):
        self.t += seconds


def rd(chip, reg, n):
    chip.write(bytes([reg]))
    return chip.read(n)


def sample(chip):
    """(ax, ay, az, temp, gx, gy, gz) raw, big-endian int16 from 0x3B."""
    return struct.unpack(">7h", rd(chip, 0x3B, 14))


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def chip(clock):
    c = MPU6050(0x68, seed=11, clock=clock)
    c.write(bytes([0x6B, 0x00]))  # wake
    clock.advance(0.01)
    return c


def test_registry_and_addresses():
    assert sensors.kind("mpu6050").chip is MPU6050
    assert MPU6050.DEFAULT_ADDRESS == 0x68
    assert MPU6050(0x69).address == 0x69
    with pytest.raises(ValueError):
        MPU6050(0x6A)


def test_who_am_i_and_wrong_id(clock):
    for address in (0x68, 0x69):  # AD0 is not reflected in WHO_AM_I
        assert rd(MPU6050(address, clock=clock), 0x75, 1) == b"\x68"
    chip = MPU6050(0x68, clock=clock)
    chip.set_wrong_id(True)
    assert rd(chip, 0x75, 1) != b"\x68"
    chip.set_wrong_id(False)
    assert rd(chip, 0x75, 1) == b"\x68"


def test_power_on_state_is_asleep_with_zero_data(clock):
    chip = MPU6050(0x68, clock=clock)
    assert rd(chip, 0x6B, 1) == b"\x40"
    clock.advance(1.0)
    assert rd(chip, 0x3B, 14) == bytes(14), "SLEEP: no samples"


@pytest.mark.parametrize("afs,lsb_per_g", [(0, 16384), (1, 8192), (2, 4096), (3, 2048)])
def test_accel_full_scale(chip, clock, afs, lsb_per_g):
    chip.write(bytes([0x1C, afs << 3]))
    clock.advance(0.01)
    ax, ay, az, *_ = sample(chip)
    truth = chip.truth()
    for raw, name in ((ax, "accel_x_mps2"), (ay, "accel_y_mps2"), (az, "accel_z_mps2")):
        assert abs(raw / lsb_per_g * G - truth[name]) <= 0.6 / lsb_per_g * G
    assert abs(math.sqrt(ax * ax + ay * ay + az * az) / lsb_per_g - 1.0) < 0.05, "gravity ~ 1 g"
    assert az > 0.9 * lsb_per_g, "board roughly level, Z up"


@pytest.mark.parametrize("fs,lsb_per_dps", [(0, 131.0), (1, 65.5), (2, 32.8), (3, 16.4)])
def test_gyro_full_scale(chip, clock, fs, lsb_per_dps):
    chip.write(bytes([0x1B, fs << 3]))
    clock.advance(0.01)
    *_, gx, gy, gz = sample(chip)
    truth = chip.truth()
    for raw, name in ((gx, "gyro_x_dps"), (gy, "gyro_y_dps"), (gz, "gyro_z_dps")):
        assert abs(raw / lsb_per_dps - truth[name]) <= 0.6 / lsb_per_dps
        assert abs(truth[name]) < 20.0, "a board at rest: small rates"


def test_temperature_formula(chip):
    temp_raw = sample(chip)[3]
    truth = chip.truth()["temperature_c"]
    assert abs(temp_raw / 340 + 36.53 - truth) <= 0.6 / 340
    assert 20 < truth < 40


def test_saturation(chip, clock, monkeypatch):
    monkeypatch.setattr(chip, "_physics", lambda t, k: np.tile((5.0, -5.0, 1.0, 36.53, 400.0, -400.0, 0.0), (len(t), 1)))
    clock.advance(0.01)
    assert sample(chip) == (32767, -32768, 16384, 0, 32767, -32768, 0)
    chip.write(bytes([0x1B, 3 << 3, 3 << 3]))  # burst write auto-increments: GYRO_CONFIG, ACCEL_CONFIG
    clock.advance(0.01)
    assert sample(chip) == (10240, -10240, 2048, 0, 6560, -6560, 0)


def test_sample_rate_divider_and_updates(chip, clock):
    chip.write(bytes([0x1A, 0x01]))  # DLPF on: 1 kHz gyro output rate
    chip.write(bytes([0x19, 99]))  # 10 Hz
    first = sample(chip)
    clock.advance(0.05)
    assert sample(chip) == first, "no new sample before 100 ms"
    clock.advance(0.06)
    assert sample(chip) != first


def test_data_ready_status(chip, clock):
    chip.write(bytes([0x38, 0x01]))
    clock.advance(0.01)
    assert rd(chip, 0x3A, 1) == b"\x01"
    assert rd(chip, 0x3A, 1) == b"\x00", "cleared by reading INT_STATUS"


def test_sleep_bit_blocks_updates(chip, clock):
    clock.advance(0.01)
    chip.write(bytes([0x6B, 0x40]))
    held = rd(chip, 0x3B, 14)
    clock.advance(2.0)
    assert rd(chip, 0x3B, 14) == held
    chip.write(bytes([0x6B, 0x00]))
    clock.advance(0.01)
    assert rd(chip, 0x3B, 14) != held


def test_device_reset(chip, clock):
    chip.write(bytes([0x19, 7, 0x01, 0x18, 0x10]))
    clock.advance(0.01)
    assert sample(chip) != (0,) * 7
    chip.write(bytes([0x6B, 0x80]))
    assert rd(chip, 0x6B, 1) == b"\x40", "DEVICE_RESET self-clears, SLEEP set again"
    assert rd(chip, 0x19, 4) == bytes(4)
    assert rd(chip, 0x3B, 14) == bytes(14)
    clock.advance(1.0)
    assert rd(chip, 0x3B, 14) == bytes(14)


def test_freeze(chip, clock):
    chip.freeze(True)
    held = rd(chip, 0x3B, 14)
    for _ in range(5):
        clock.advance(0.1)
        assert rd(chip, 0x3B, 14) == held
    chip.freeze(False)
    clock.advance(0.1)
    assert rd(chip, 0x3B, 14) != held


def test_wobble_changes_orientation_slowly(chip, clock):
    readings = []
    for _ in range(40):
        clock.advance(0.25)
        sample(chip)
        truth = chip.truth()
        readings.append(truth["accel_x_mps2"])
        assert abs(math.dist((0, 0, 0), [truth[f"accel_{a}_mps2"] for a in "xyz"]) - G) < 0.05 * G
    assert max(readings) - min(readings) > 0.05, "orientation wobbles"


def test_determinism():
    def run(seed):
        clock = FakeClock(10.0)
        chip = MPU6050(0x68, seed=seed, clock=clock)
        chip.write(bytes([0x6B, 0x00, 0x00, 0x00]))
        out = []
        for i in range(20):
            clock.advance(0.0123)
            out.append(rd(chip, 0x3B, 14))
        return out

    assert run(1) == run(1)
    assert run(1) != run(2)


@pytest.mark.parametrize("sel", range(4))
def test_exact_codes_for_each_full_scale(chip, clock, monkeypatch, sel):
    """Datasheet sensitivities exactly (32.8 and 16.4 LSB/dps are not 131/4 and 131/8)."""
    monkeypatch.setattr(chip, "_physics", lambda t, k: np.tile((1.5, -0.25, 0.0, 25.0, 200.0, -7.0, 0.0), (len(t), 1)))
    chip.write(bytes([0x1B, sel << 3, sel << 3]))
    clock.advance(0.01)
    ax, ay, _, temp, gx, gy, _ = sample(chip)
    a_lsb = (16384, 8192, 4096, 2048)[sel]
    g_lsb = (131.0, 65.5, 32.8, 16.4)[sel]
    assert (ax, ay) == (round(1.5 * a_lsb), round(-0.25 * a_lsb))
    assert (gx, gy) == (round(200 * g_lsb), round(-7 * g_lsb))
    assert temp == round((25.0 - 36.53) * 340)


# --- FIFO (RM 4.7 FIFO_EN, 4.29 USER_CTRL, 4.30 FIFO_COUNT, 4.31 FIFO_R_W) ----------------------------

def fifo_on(chip, fifo_en=0xF8):
    chip.write(bytes([0x1A, 0x01]))  # DLPF on: 1 kHz gyro output, sample rate 1 kHz
    chip.write(bytes([0x38, 0x10]))  # FIFO_OFLOW_EN
    chip.write(bytes([0x6A, 0x04]))  # FIFO_RESET with FIFO_EN 0
    chip.write(bytes([0x23, fifo_en]))
    chip.write(bytes([0x6A, 0x40]))  # FIFO_EN


def fifo_count(chip):
    hi, lo = rd(chip, 0x72, 2)
    return hi << 8 | lo


def test_fifo_fills_at_the_sample_rate_in_register_order(chip, clock):
    fifo_on(chip)
    clock.advance(0.0105)
    assert fifo_count(chip) == 10 * 14
    data = rd(chip, 0x74, 10 * 14)  # one burst: stays on FIFO_R_W
    assert data[-14:] == rd(chip, 0x3B, 14)  # the newest sample is the data registers' 14 bytes
    rows = [struct.unpack(">7h", data[i:i + 14]) for i in range(0, 140, 14)]
    assert len(set(rows)) == 10  # each sample its own (noise)
    assert all(abs(math.sqrt(r[0] ** 2 + r[1] ** 2 + r[2] ** 2) / 16384 - 1) < 0.1 for r in rows)
    assert fifo_count(chip) == 0


def test_fifo_en_selects_the_bytes(chip, clock):
    fifo_on(chip, fifo_en=0x08)  # ACCEL only: 6 bytes a sample
    clock.advance(0.0035)
    assert fifo_count(chip) == 3 * 6
    fifo_on(chip, fifo_en=0x80 | 0x10)  # TEMP + ZG
    clock.advance(0.0025)
    assert fifo_count(chip) == 2 * 4


def test_fifo_overflow_drops_the_oldest_bytes_and_flags_it(chip, clock):
    fifo_on(chip)
    rd(chip, 0x3A, 1)  # clear INT_STATUS
    clock.advance(0.0735)  # 73 samples: 1022 bytes, not yet over
    assert fifo_count(chip) == 1022 and not rd(chip, 0x3A, 1)[0] & 0x10
    clock.advance(0.001)  # the 74th: 2 bytes over, the oldest 12 bytes of it are gone
    assert fifo_count(chip) == 1024
    assert rd(chip, 0x3A, 1)[0] & 0x10  # FIFO_OFLOW_INT, cleared by the read
    assert not rd(chip, 0x3A, 1)[0] & 0x10
    data = rd(chip, 0x74, 1024)
    assert data[-14:] == rd(chip, 0x3B, 14)  # the newest sample is whole; the oldest was cut
    clock.advance(10.0)  # a long gap: still full, still flagged
    assert fifo_count(chip) == 1024 and rd(chip, 0x3A, 1)[0] & 0x10


def test_fifo_empty_repeats_the_last_byte_and_count_latches_on_high(chip, clock):
    fifo_on(chip)
    clock.advance(0.0015)
    data = rd(chip, 0x74, 14)
    assert rd(chip, 0x74, 3) == bytes([data[-1]]) * 3
    clock.advance(0.002)
    assert rd(chip, 0x73, 1) == b"\x00"  # FIFO_COUNT_L alone: the count latched by the last H read
    assert fifo_count(chip) == 28


def test_fifo_reset_needs_fifo_en_off(chip, clock):
    fifo_on(chip)
    clock.advance(0.0055)
    chip.write(bytes([0x6A, 0x44]))  # FIFO_RESET with FIFO_EN 1: ignored
    assert fifo_count(chip) == 5 * 14
    chip.write(bytes([0x6A, 0x04]))
    assert fifo_count(chip) == 0
    clock.advance(0.005)
    assert fifo_count(chip) == 0  # FIFO_EN 0: nothing goes in
    chip.write(bytes([0x6B, 0x80]))  # DEVICE_RESET empties it too
    assert fifo_count(chip) == 0


@pytest.mark.parametrize("seed", range(4))
def test_fifo_samples_do_not_depend_on_how_they_are_read(seed):
    """The samples since the last transaction are computed as one block: two chips with the same
    seed read at different random moments hold the same sample bytes for the same grid samples."""
    import random

    rnd = random.Random(seed)
    streams = []
    for pattern in ("often", "rarely"):
        clock = FakeClock()
        chip = MPU6050(0x68, seed=seed, clock=clock)
        chip.write(bytes([0x6B, 0x00]))
        chip.write(bytes([0x1A, 0x01]))  # DLPF on: 1 kHz
        fifo_on(chip)
        got = bytearray()
        end = clock.t + 0.4
        while clock.t < end:
            clock.advance(rnd.uniform(0.0005, 0.004) if pattern == "often" else rnd.uniform(0.02, 0.06))
            n = min(fifo_count(chip), 1000) // 14 * 14
            if n:
                got += rd(chip, 0x74, n)
        streams.append(bytes(got))
    n = min(map(len, streams)) // 14 * 14
    assert n >= 250 * 14, f"seed {seed}: only {n // 14} samples compared"
    assert streams[0][:n] == streams[1][:n], f"seed {seed}: the same grid samples differ by read pattern"
