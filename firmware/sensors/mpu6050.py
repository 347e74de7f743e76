"""InvenSense MPU-6050 6-axis accelerometer + gyroscope (PS-MPU-6000A, RM-MPU-6000A).

The chip runs free (continuous sampling), so ``start()`` is a no-op and ``read_into()`` is one
14-byte burst read of ACCEL_XOUT_H..GYRO_ZOUT_L (0x3B..0x48) straight into the caller's buffer.

Sample layout, ``SAMPLE_FORMAT = ">7h"`` (14 bytes, the chip's own big-endian registers):
accel_x, accel_y, accel_z, temperature, gyro_x, gyro_y, gyro_z as signed 16-bit integers.
The host scales them with ``config()["accel_fs_g"]`` / ``["gyro_fs_dps"]``; temperature in
degrees C is raw / 340 + 36.53.

Settings: ``accel_fs_g`` in 2/4/8/16, ``gyro_fs_dps`` in 250/500/1000/2000, ``dlpf_cfg`` 0..6
(CONFIG register DLPF_CFG; 0 disables the filter and runs the gyro at 8 kHz), ``sample_rate_div``
0..255 (SMPLRT_DIV: sample rate = gyro output rate / (1 + div)), ``fifo`` (default True: the
stream may read its samples from the chip's FIFO, below).

FIFO (RM 4.7, 4.29-4.31): ``fifo_start()`` empties the 1024-byte FIFO and has the chip append
every sample (the same 14 bytes, in register order) at its sample rate; ``fifo_count()`` reads
FIFO_COUNT_H/L (bytes held) and ``fifo_read_into(buf)`` pops ``len(buf)`` bytes from FIFO_R_W in
one transaction, so a whole batch of samples costs one read.  ``FIFO_PERIOD_US`` is the chip's
sample period when the FIFO may be used (>= 1000 us: the accelerometer's 1 kHz), else 0; the stream
uses the FIFO only when its period equals it (stream.py says why).  A full FIFO drops its
oldest bytes, so a count of 1024 or one that is not a multiple of 14 means samples were lost
and the rest may be cut: the stream restarts the FIFO then.  Never read more than the count
says: an empty FIFO repeats its last byte, and a sample written during the read would be split.

Example::

    from machine import I2C, Pin
    from sensors.mpu6050 import MPU6050

    i2c = I2C(0, scl=Pin(5), sda=Pin(4), freq=400000)
    imu = MPU6050(i2c, address=0x68, accel_fs_g=4, gyro_fs_dps=500)
    buf = bytearray(MPU6050.SAMPLE_SIZE)
    imu.start()                  # no-op
    imu.read_into(buf)           # 7 raw big-endian int16
    # host side:
    # host.sensors.units.to_physical("mpu6050", raw_bytes, imu.calibration(), imu.config())

Allocation: ``__init__``, ``config()`` and ``reset()`` allocate; ``start()``, ``read_into()`` and
the ``fifo_*`` methods do not.
"""

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


# Register map (RM-MPU-6000A-00 rev 4.2)
_REG_SMPLRT_DIV = const(0x19)
_REG_CONFIG = const(0x1A)
_REG_GYRO_CONFIG = const(0x1B)
_REG_ACCEL_CONFIG = const(0x1C)
_REG_FIFO_EN = const(0x23)
_REG_INT_ENABLE = const(0x38)
_REG_INT_STATUS = const(0x3A)
_INT_FIFO_OFLOW = const(0x10)  # INT_ENABLE FIFO_OFLOW_EN, INT_STATUS FIFO_OFLOW_INT (cleared by reading)
_REG_ACCEL_XOUT_H = const(0x3B)  # ACCEL_XOUT_H..GYRO_ZOUT_L: 0x3B..0x48
_REG_USER_CTRL = const(0x6A)
_REG_PWR_MGMT_1 = const(0x6B)
_REG_FIFO_COUNT_H = const(0x72)  # FIFO_COUNT_H, FIFO_COUNT_L (reading H latches both)
_REG_FIFO_R_W = const(0x74)
_REG_WHO_AM_I = const(0x75)

_FIFO_EN_ALL = const(0xF8)  # TEMP, XG, YG, ZG, ACCEL: the 14 bytes of SAMPLE_FORMAT
_USER_FIFO_EN = const(0x40)
_USER_FIFO_RESET = const(0x04)  # acts while FIFO_EN is 0, clears itself

_WHO_AM_I = const(0x68)
_PWR_DEVICE_RESET = const(0x80)
_CLKSEL_PLL_XGYRO = const(0x01)  # SLEEP = 0, CYCLE = 0, TEMP_DIS = 0
_RESET_TIMEOUT_MS = const(100)

_ENODEV = const(19)
_ETIMEDOUT = const(110)

_ACCEL_FS_G = (2, 4, 8, 16)  # AFS_SEL 0..3
_GYRO_FS_DPS = (250, 500, 1000, 2000)  # FS_SEL 0..3


class MPU6050:
    KIND = "mpu6050"
    SAMPLE_FORMAT = ">7h"
    SAMPLE_SIZE = const(14)
    CHANNELS = (
        ("accel_x", "raw"),
        ("accel_y", "raw"),
        ("accel_z", "raw"),
        ("temperature", "raw"),
        ("gyro_x", "raw"),
        ("gyro_y", "raw"),
        ("gyro_z", "raw"),
    )
    # The accelerometer output rate is 1 kHz; each instance sets its own from SMPLRT_DIV.
    MIN_PERIOD_US = const(1000)
    FREE_RUNNING = True  # start() does nothing: the sampler need not call it
    DEFAULT_STREAM = ("imu", 5000, 25)  # (name, period_us, batch) without config.json
    FIFO_BYTES = const(1024)

    @staticmethod
    def fifo_period(dlpf_cfg=1, sample_rate_div=0, fifo=True, **_):
        """The chip's sample period in us when these settings let a stream read its FIFO, else 0:
        a stream at exactly this period reads in bursts (firmware/burst.py).  Static, so the heap
        budget (firmware/budget.py) sees from a config which streams load the burst reader."""
        period = (1 + sample_rate_div) * 1000000 // (8000 if dlpf_cfg == 0 else 1000)  # 125 us or 1 ms steps
        return period if fifo and period >= 1000 else 0

    def __init__(self, i2c, address=0x68, accel_fs_g=2, gyro_fs_dps=250, dlpf_cfg=1,
                 sample_rate_div=0, fifo=True):
        if address not in (0x68, 0x69):
            raise ValueError("MPU-6050 address must be 0x68 or 0x69")
        if accel_fs_g not in _ACCEL_FS_G:
            raise ValueError("accel_fs_g must be one of 2, 4, 8, 16")
        if gyro_fs_dps not in _GYRO_FS_DPS:
            raise ValueError("gyro_fs_dps must be one of 250, 500, 1000, 2000")
        if not isinstance(dlpf_cfg, int) or not 0 <= dlpf_cfg <= 6:
            raise ValueError("dlpf_cfg must be 0..6")
        if not isinstance(sample_rate_div, int) or not 0 <= sample_rate_div <= 255:
            raise ValueError("sample_rate_div must be 0..255")

        self._i2c = i2c
        self._read_mem = i2c.readfrom_mem_into  # bound once for read_into
        self._address = address
        self._accel_fs_g = accel_fs_g
        self._gyro_fs_dps = gyro_fs_dps
        self._dlpf_cfg = dlpf_cfg
        self._div = sample_rate_div
        self._afs_sel = _ACCEL_FS_G.index(accel_fs_g)
        self._fs_sel = _GYRO_FS_DPS.index(gyro_fs_dps)
        gyro_rate = 8000 if dlpf_cfg == 0 else 1000
        self._rate_hz = gyro_rate // (1 + sample_rate_div)  # integer part
        self.MIN_PERIOD_US = max(1000, (1 + sample_rate_div) * 1000000 // gyro_rate)
        self.FIFO_PERIOD_US = self.fifo_period(dlpf_cfg, sample_rate_div, fifo)
        self._reg = bytearray(1)
        self._wr = bytearray(2)  # register, value: one buffer per write (see _write)
        self._count = bytearray(2)

        self._check_id()
        self._configure()

    def _check_id(self):
        reg = self._reg
        try:
            self._i2c.readfrom_mem_into(self._address, _REG_WHO_AM_I, reg)
        except OSError:
            raise OSError(_ENODEV, "MPU6050 not found at 0x%02x" % self._address)
        if reg[0] != _WHO_AM_I:
            raise OSError(_ENODEV, "MPU6050 not found at 0x%02x (WHO_AM_I 0x%02x, expected 0x68)"
                          % (self._address, reg[0]))

    def _write(self, reg, value):
        b = self._wr
        b[0] = reg
        b[1] = value
        self._i2c.writeto(self._address, b)  # one buffer: writeto_mem allocates on rp2

    def _configure(self):
        self._write(_REG_PWR_MGMT_1, _CLKSEL_PLL_XGYRO)  # wake up, PLL with X gyro reference
        self._write(_REG_SMPLRT_DIV, self._div)
        self._write(_REG_CONFIG, self._dlpf_cfg)
        self._write(_REG_GYRO_CONFIG, self._fs_sel << 3)
        self._write(_REG_ACCEL_CONFIG, self._afs_sel << 3)

    def calibration(self):
        """The MPU-6050 needs no calibration constants on the host."""
        return b""

    def config(self):
        return {
            "accel_fs_g": self._accel_fs_g,
            "gyro_fs_dps": self._gyro_fs_dps,
            "dlpf_cfg": self._dlpf_cfg,
            "sample_rate_div": self._div,
            "sample_rate_hz": self._rate_hz,
        }

    def start(self):
        """Free-running chip: nothing to start."""

    def read_into(self, buf):
        """Burst-read the 14 data registers into buf (SAMPLE_SIZE bytes, ">7h")."""
        self._read_mem(self._address, _REG_ACCEL_XOUT_H, buf)

    def fast_read(self):
        """read_into as the sampler's viper loop does it (chip.FAST_MEM = 2): fn(addr, reg, buf)."""
        return (2, self._read_mem, self._address, _REG_ACCEL_XOUT_H)

    def fifo_start(self):
        """Empty the FIFO and start filling it with every sample from now on."""
        self._write(_REG_USER_CTRL, _USER_FIFO_RESET)  # FIFO_EN 0: the reset acts
        self._write(_REG_INT_ENABLE, _INT_FIFO_OFLOW)
        self.fifo_overflowed()  # clears a flag an earlier overflow left
        self._write(_REG_FIFO_EN, _FIFO_EN_ALL)
        self._write(_REG_USER_CTRL, _USER_FIFO_EN)

    def fifo_overflowed(self):
        """Whether the FIFO overflowed since the last look (INT_STATUS, which reading clears): a full
        FIFO drops its oldest bytes, so a burst read after that may start inside a sample."""
        r = self._reg
        self._read_mem(self._address, _REG_INT_STATUS, r)
        return r[0] & _INT_FIFO_OFLOW != 0

    def fifo_stop(self):
        self._write(_REG_USER_CTRL, 0)
        self._write(_REG_FIFO_EN, 0)

    def fifo_count(self):
        """Bytes in the FIFO (FIFO_COUNT_H/L, high first)."""
        c = self._count
        self._read_mem(self._address, _REG_FIFO_COUNT_H, c)
        return (c[0] << 8) | c[1]

    def fifo_read_into(self, buf):
        """Pop len(buf) bytes from FIFO_R_W in one burst (never more than fifo_count())."""
        self._read_mem(self._address, _REG_FIFO_R_W, buf)

    def reset(self):
        """DEVICE_RESET, wait (bounded) for the bit to clear, check WHO_AM_I, reconfigure."""
        self._write(_REG_PWR_MGMT_1, _PWR_DEVICE_RESET)
        reg = self._reg
        t0 = ticks_ms()
        while True:
            sleep_ms(1)
            try:
                self._i2c.readfrom_mem_into(self._address, _REG_PWR_MGMT_1, reg)
                if not reg[0] & _PWR_DEVICE_RESET:
                    break
            except OSError:
                pass  # the chip may not answer while it resets
            if ticks_diff(ticks_ms(), t0) > _RESET_TIMEOUT_MS:
                raise OSError(_ETIMEDOUT, "MPU6050 at 0x%02x did not come out of reset" % self._address)
        self._check_id()
        self._configure()


DRIVER = MPU6050
