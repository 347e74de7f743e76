"""InvenSense MPU-6050 (firmware/sensors/mpu6050.py): g, degC and deg/s from raw codes, and the chip.

Conversion: accel = raw / LSB-per-g and gyro = raw / LSB-per-deg/s at the driver's full scales
(``config()``: accel_fs_g, gyro_fs_dps; product specification tables 6.1/6.2), temperature =
raw / 340 + 36.53 degC (register map 4.18).

The simulated chip follows the register map RM-MPU-6000A-00 as seen over I2C. Free-running: the data
registers hold the newest sample of a clock-derived sample grid (gyro output rate / (1 + SMPLRT_DIV)),
computed only when read. The 1024-byte FIFO (RM 4.7, 4.29-4.31) is modelled: with USER_CTRL FIFO_EN
set, each sample of the grid appends the registers FIFO_EN selects, in register order (accel
0x3B..0x40, temperature 0x41..0x42, gyro x/y/z 0x43..0x48: all of them is the driver's 14-byte
sample); a full FIFO drops its oldest *bytes* (a sample may be cut in two) and sets INT_STATUS
FIFO_OFLOW_INT (bit 4, when INT_ENABLE FIFO_OFLOW_EN is set; cleared by reading INT_STATUS);
reading FIFO_COUNT_H latches the count into FIFO_COUNT_H/L; a burst read from FIFO_R_W pops bytes
and stays on that register, and an empty FIFO returns the last byte read; USER_CTRL FIFO_RESET
empties it when written with FIFO_EN 0. Not modelled: FIFO_MODE (an MPU-9250 bit), the
auxiliary slaves' FIFO data, self-test, cycle mode, DMP and the auxiliary I2C master (those
registers read back what was written, or zero).
"""

from __future__ import annotations

import math
import time

import numpy as np

from host.sensors.chip import Clock, Drift, Environment, I2CChip, NoiseTable
from host.sensors.units import UnitsError, require

WHO_AM_I_VALUE = 0x68  # fixed: the AD0 pin is not reflected (RM 4.32)
WRONG_WHO_AM_I = 0x70  # an MPU-6500 answering instead

REG_SMPLRT_DIV = 0x19
REG_CONFIG = 0x1A
REG_GYRO_CONFIG = 0x1B
REG_ACCEL_CONFIG = 0x1C
REG_FIFO_EN = 0x23
REG_INT_ENABLE = 0x38
REG_INT_STATUS = 0x3A
REG_ACCEL_XOUT_H = 0x3B
REG_USER_CTRL = 0x6A
REG_PWR_MGMT_1 = 0x6B
REG_PWR_MGMT_2 = 0x6C
REG_FIFO_COUNT_H = 0x72
REG_FIFO_COUNT_L = 0x73
REG_FIFO_R_W = 0x74
REG_WHO_AM_I = 0x75

FIFO_SIZE = 1024  # bytes (product spec 7.17)
USER_FIFO_EN = 0x40
USER_FIFO_RESET = 0x04
INT_FIFO_OFLOW = 0x10  # INT_STATUS FIFO_OFLOW_INT, INT_ENABLE FIFO_OFLOW_EN
INT_DATA_RDY = 0x01
# FIFO_EN bits and the data registers each one puts into the FIFO, in register order
_FIFO_SOURCES = ((0x08, 0x3B, 6), (0x80, 0x41, 2), (0x40, 0x43, 2), (0x20, 0x45, 2), (0x10, 0x47, 2))

PWR_MGMT_1_RESET = 0x40
DEVICE_RESET = 0x80
SLEEP = 0x40
TEMP_DIS = 0x08

ACCEL_FS_G = (2, 4, 8, 16)  # AFS_SEL 0..3
ACCEL_LSB_PER_G = (16384.0, 8192.0, 4096.0, 2048.0)
GYRO_FS_DPS = (250, 500, 1000, 2000)  # FS_SEL 0..3
GYRO_LSB_PER_DPS = (131.0, 65.5, 32.8, 16.4)
ACCEL_BANDWIDTH_HZ = (260, 184, 94, 44, 21, 10, 5, 260)  # DLPF_CFG -> accel bandwidth (noise)
STANDARD_GRAVITY = 9.80665

_READ_ONLY = frozenset([REG_INT_STATUS, REG_WHO_AM_I, 0x72, 0x73, *range(0x3B, 0x61)])


CHANNEL_UNITS = (
    ("accel_x_g", "g"), ("accel_y_g", "g"), ("accel_z_g", "g"),
    ("temperature_c", "degC"),
    ("gyro_x_dps", "deg/s"), ("gyro_y_dps", "deg/s"), ("gyro_z_dps", "deg/s"),
)


def convert(rec: np.ndarray, calibration: bytes, config: dict) -> dict[str, np.ndarray]:
    afs = require(config, "accel_fs_g", "mpu6050")
    gfs = require(config, "gyro_fs_dps", "mpu6050")
    if afs not in ACCEL_FS_G:
        raise UnitsError("accel_fs_g must be one of 2, 4, 8, 16, not %r" % (afs,))
    if gfs not in GYRO_FS_DPS:
        raise UnitsError("gyro_fs_dps must be one of 250, 500, 1000, 2000, not %r" % (gfs,))
    a_lsb = ACCEL_LSB_PER_G[ACCEL_FS_G.index(afs)]
    g_lsb = GYRO_LSB_PER_DPS[GYRO_FS_DPS.index(gfs)]
    out = {}
    for axis in "xyz":
        out["accel_%s_g" % axis] = rec["accel_" + axis].astype(np.float64) / a_lsb
    out["temperature_c"] = rec["temperature"].astype(np.float64) / 340.0 + 36.53
    for axis in "xyz":
        out["gyro_%s_dps" % axis] = rec["gyro_" + axis].astype(np.float64) / g_lsb
    return out


# --- the simulated chip --------------------------------------------------------------------------

_CHANNEL = np.arange(7, dtype=np.uint64)
# each FIFO_EN bit's byte columns in a 14-byte sample row (accel, temperature, gyro x, y, z)
_FIFO_COLUMNS = tuple((bit, np.arange(reg - REG_ACCEL_XOUT_H, reg - REG_ACCEL_XOUT_H + n)) for bit, reg, n in _FIFO_SOURCES)
_TRUTH = ("accel_x_mps2", "accel_y_mps2", "accel_z_mps2", "temperature_c", "gyro_x_dps", "gyro_y_dps", "gyro_z_dps")


class MPU6050(I2CChip):
    """MPU-6050 register model: gravity on a slowly wobbling board, gyro bias and noise, die temperature.

    Reads and writes both auto-increment (burst sequences, product spec 9.3).
    """

    KIND = "mpu6050"
    DEFAULT_ADDRESS = 0x68
    ADDRESSES = (0x68, 0x69)

    def __init__(self, address: int = DEFAULT_ADDRESS, seed: int = 0, clock: Clock = time.monotonic,
                 env: Environment | None = None) -> None:
        super().__init__(address, seed, clock, env)
        rng = self._rng("env", 0)
        # Tilt in degrees: a resting board that is nudged now and then (periods of seconds).
        self._roll = Drift(rng, -5.0, 5.0, ((2.0, 7.0), (0.5, 1.3)))
        self._pitch = Drift(rng, -5.0, 5.0, ((2.0, 9.0), (0.5, 1.7)))
        self._yaw = Drift(rng, 0.0, 0.0, ((1.0, 11.0),))
        self._self_heating = rng.uniform(3.0, 7.0)  # the die runs warmer than the air around the board
        self._gyro_bias = tuple(rng.uniform(-2.0, 2.0) for _ in range(3))
        self._accel_bias = tuple(rng.uniform(-0.01, 0.01) for _ in range(3))
        self._samples = 0  # lifetime sample count before the current grid: indexes the noise
        self._noise = NoiseTable(self._rng("noise", 0))  # by (sample, channel): sample * 7 + channel
        self._reset(self._clock())

    def _reset(self, now: float) -> None:
        self._regs = bytearray(128)
        self._regs[REG_PWR_MGMT_1] = PWR_MGMT_1_RESET
        self._ptr = 0
        self._truth = {k: math.nan for k in (
            "accel_x_mps2", "accel_y_mps2", "accel_z_mps2", "temperature_c",
            "gyro_x_dps", "gyro_y_dps", "gyro_z_dps")}
        self._grid_t0 = now
        self._grid_last = 0
        self._data_ready = False
        self._fifo = bytearray()
        self._fifo_last = 0  # the last byte read from FIFO_R_W (what an empty FIFO returns)
        self._fifo_oflow = False

    # --- time --------------------------------------------------------------------------------------

    def _rate(self) -> float:
        dlpf = self._regs[REG_CONFIG] & 7
        gyro_rate = 8000.0 if dlpf in (0, 7) else 1000.0
        return gyro_rate / (1 + self._regs[REG_SMPLRT_DIV])

    def _awake(self) -> bool:
        return not self._regs[REG_PWR_MGMT_1] & SLEEP

    def _advance(self, now: float) -> None:
        if not self._awake():
            return
        rate = self._rate()
        idx = int((now - self._grid_t0) * rate)
        if idx <= self._grid_last:
            return
        first = self._grid_last + 1
        self._grid_last = idx
        per = self._fifo_sample_bytes()
        if not per:
            self._samples_block(np.array([idx]), rate)
            return
        # every sample since the last transaction goes into the FIFO; of a long gap only the
        # samples whose bytes can still be in it are computed (the rest overflowed)
        start = max(first, idx - (FIFO_SIZE // per + 1))
        if start > first:
            self._fifo_overflowed()
        rows = self._samples_block(np.arange(start, idx + 1), rate)
        cols = [c for bit, c in _FIFO_COLUMNS if self._regs[REG_FIFO_EN] & bit]
        fifo = self._fifo
        fifo += rows[:, np.concatenate(cols)].tobytes()
        if len(fifo) > FIFO_SIZE:
            del fifo[:len(fifo) - FIFO_SIZE]  # the oldest bytes are lost (RM 4.31)
            self._fifo_overflowed()

    # --- FIFO --------------------------------------------------------------------------------------

    def _fifo_sample_bytes(self) -> int:
        """Bytes one sample adds to the FIFO (0 while the FIFO is off)."""
        regs = self._regs
        if not regs[REG_USER_CTRL] & USER_FIFO_EN:
            return 0
        return sum(n for bit, _reg, n in _FIFO_SOURCES if regs[REG_FIFO_EN] & bit)

    def _fifo_overflowed(self) -> None:
        if self._regs[REG_INT_ENABLE] & INT_FIFO_OFLOW:
            self._fifo_oflow = True

    def _fifo_pop(self, n: int) -> bytes:
        """n bytes from FIFO_R_W: the FIFO's oldest, then the last byte read again once empty."""
        fifo = self._fifo
        k = min(n, len(fifo))
        out = bytes(fifo[:k])
        del fifo[:k]
        if k:
            self._fifo_last = out[-1]
        return out + bytes([self._fifo_last]) * (n - k)

    def _rebase(self, now: float) -> None:
        """Start a new sample grid at ``now`` (wake-up or rate change), keeping the noise index going."""
        self._samples += self._grid_last + 1
        self._grid_t0 = now
        self._grid_last = 0

    # --- samples -----------------------------------------------------------------------------------

    def _physics(self, t: np.ndarray, k: np.ndarray) -> np.ndarray:
        """(n, 7): acceleration (g), die temperature (C) and angular rate (deg/s) at times ``t``,
        samples ``k`` (lifetime indices: the noise's)."""
        z = self._noise(k.astype(np.uint64)[:, None] * np.uint64(7) + _CHANNEL)
        roll, pitch = np.radians(self._roll.at(t)), np.radians(self._pitch.at(t))
        bw = math.sqrt(ACCEL_BANDWIDTH_HZ[self._regs[REG_CONFIG] & 7])
        sigma_a, sigma_g = 400e-6 * bw, 0.005 * bw  # 400 ug/sqrt(Hz), 0.005 dps/sqrt(Hz)
        bx, by, bz = self._accel_bias
        gbx, gby, gbz = self._gyro_bias
        out = np.empty((len(t), 7))
        out[:, 0] = -np.sin(pitch) + bx + sigma_a * z[:, 0]
        out[:, 1] = np.sin(roll) * np.cos(pitch) + by + sigma_a * z[:, 1]
        out[:, 2] = np.cos(roll) * np.cos(pitch) + bz + sigma_a * z[:, 2]
        out[:, 3] = self.env.temperature.at(t) + self._self_heating + 0.02 * z[:, 3]
        out[:, 4] = self._roll.rate_at(t) + gbx + sigma_g * z[:, 4]
        out[:, 5] = self._pitch.rate_at(t) + gby + sigma_g * z[:, 5]
        out[:, 6] = self._yaw.rate_at(t) + gbz + sigma_g * z[:, 6]
        return out

    def _samples_block(self, idx: np.ndarray, rate: float) -> np.ndarray:
        """Grid samples ``idx`` of the current grid: each one's 14 data-register bytes (n, 14
        uint8), the last left in the data registers and the truth."""
        self._data_ready = True
        regs = self._regs
        now_bytes = np.frombuffer(bytes(regs[REG_ACCEL_XOUT_H:REG_ACCEL_XOUT_H + 14]), np.uint8)
        if self._frozen:
            return np.tile(now_bytes, (len(idx), 1))
        phys = self._physics(self._grid_t0 + idx / rate, self._samples + idx)
        a_lsb = ACCEL_LSB_PER_G[(regs[REG_ACCEL_CONFIG] >> 3) & 3]
        g_lsb = GYRO_LSB_PER_DPS[(regs[REG_GYRO_CONFIG] >> 3) & 3]
        values = phys * np.array((a_lsb, a_lsb, a_lsb, 340.0, g_lsb, g_lsb, g_lsb))
        values[:, 3] -= 36.53 * 340.0
        codes = np.clip(np.rint(values), -32768, 32767).astype(">i2")  # nearest, saturated
        rows = codes.view(np.uint8).reshape(len(idx), 14).copy()
        # A channel in standby (PWR_MGMT_2 STBY_* bits, TEMP_DIS) keeps its last value.
        stby = regs[REG_PWR_MGMT_2]
        live = (not stby & 0x20, not stby & 0x10, not stby & 0x08, not regs[REG_PWR_MGMT_1] & TEMP_DIS,
                not stby & 0x04, not stby & 0x02, not stby & 0x01)
        last = phys[-1]
        physical = (last[0] * STANDARD_GRAVITY, last[1] * STANDARD_GRAVITY, last[2] * STANDARD_GRAVITY,
                    last[3], last[4], last[5], last[6])
        for i in range(7):
            if live[i]:
                self._truth[_TRUTH[i]] = float(physical[i])
            else:
                rows[:, 2 * i:2 * i + 2] = now_bytes[2 * i:2 * i + 2]
        regs[REG_ACCEL_XOUT_H:REG_ACCEL_XOUT_H + 14] = rows[-1].tobytes()
        return rows

    # --- bus ---------------------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if not data:
            return
        now = self._clock()
        self._advance(now)
        reg = data[0]
        for value in data[1:]:
            self._write_reg(reg & 0x7F, value, now)
            if reg & 0x7F != REG_FIFO_R_W:  # burst writes to FIFO_R_W stay on it
                reg += 1
        self._ptr = reg & 0x7F

    def _write_reg(self, reg: int, value: int, now: float) -> None:
        regs = self._regs
        if reg == REG_PWR_MGMT_1:
            if value & DEVICE_RESET:
                self._reset(now)
                return
            was_awake = self._awake()
            regs[reg] = value
            if self._awake() and not was_awake:
                self._rebase(now)
        elif reg in (REG_SMPLRT_DIV, REG_CONFIG):
            regs[reg] = value
            if self._awake():
                self._rebase(now)
        elif reg == REG_USER_CTRL:
            regs[reg] = value & 0x70  # reset bits self-clear
            if value & USER_FIFO_RESET and not value & USER_FIFO_EN:
                self._fifo.clear()  # FIFO_RESET acts while FIFO_EN is 0 (RM 4.29)
            if value & 0x01:  # SIG_COND_RESET clears the sensor registers
                regs[REG_ACCEL_XOUT_H:REG_ACCEL_XOUT_H + 14] = bytes(14)
        elif reg == REG_FIFO_R_W:
            if len(self._fifo) < FIFO_SIZE:
                self._fifo.append(value)
        elif reg not in _READ_ONLY:
            regs[reg] = value

    def read(self, n: int) -> bytes:
        now = self._clock()
        self._advance(now)
        regs = self._regs
        regs[REG_WHO_AM_I] = WRONG_WHO_AM_I if self._wrong_id else WHO_AM_I_VALUE
        ready = self._data_ready and regs[REG_INT_ENABLE] & INT_DATA_RDY
        regs[REG_INT_STATUS] = (INT_DATA_RDY if ready else 0) | (INT_FIFO_OFLOW if self._fifo_oflow else 0)
        start = self._ptr
        if start == REG_FIFO_R_W and n:
            return self._fifo_pop(n)  # a burst read of FIFO_R_W stays on it
        if start == REG_FIFO_COUNT_H:  # reading FIFO_COUNT_H latches both count registers
            regs[REG_FIFO_COUNT_H] = len(self._fifo) >> 8
            regs[REG_FIFO_COUNT_L] = len(self._fifo) & 0xFF
        end = start + n
        if end <= 128:
            out = bytes(regs[start:end])
        else:
            out = bytes(regs[(start + i) & 0x7F] for i in range(n))
        if n and (start <= REG_INT_STATUS < end or end > 128 + REG_INT_STATUS):
            self._data_ready = False  # INT_STATUS clears on read
            self._fifo_oflow = False
        self._ptr = end & 0x7F
        return out

    def read_consumes(self) -> bool:
        return self._ptr == REG_FIFO_R_W  # a burst read of FIFO_R_W pops every byte it clocks

    def truth(self) -> dict[str, float]:
        self._advance(self._clock())
        return dict(self._truth)


CHIP = MPU6050
