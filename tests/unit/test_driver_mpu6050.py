"""MPU-6050 driver against a recording fake bus (register map RM-MPU-6000A)."""
import importlib.util
import struct
from pathlib import Path

import pytest

from firmware.sensors.mpu6050 import MPU6050

_spec = importlib.util.spec_from_file_location(
    "pagerless_fakebus", Path(__file__).resolve().parents[1] / "micropython" / "fakebus.py")
fakebus = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fakebus)

SAMPLE = (16384, -8192, 2048, -521, 131, -262, 32767)


def make_chip(who_am_i=0x68):
    chip = fakebus.RegisterChip({0x75: who_am_i, 0x6B: 0x40})  # PWR_MGMT_1 reset value: SLEEP

    def on_write(c, reg, value):
        if reg == 0x6B and value & 0x80:  # DEVICE_RESET: registers back to defaults, bit self-clears
            c.regs[0x6B] = 0x40

    chip.on_write = on_write
    chip.regs[0x3B:0x49] = struct.pack(">7h", *SAMPLE)
    return chip


@pytest.fixture
def bus():
    b = fakebus.FakeI2C()
    b.attach(0x68, make_chip())
    b.log = []
    return b


def writes(bus):
    """Register writes as (register, data): a write of [register, data...] in one buffer (how the
    driver writes, as writeto_mem allocates on rp2) or writeto_mem."""
    return [(e[2][0], e[2][1:]) if e[0] == "writeto" else (e[2], e[3])
            for e in bus.log if e[0] == "writeto_mem" or (e[0] == "writeto" and len(e[2]) > 1)]


class SimulatedChipBus:
    """The host's MPU-6050 model on a bus as the virtual board's: readfrom_mem = write(reg) then
    read(n); time is t[0] (seconds), advanced by the test."""

    def __init__(self, t):
        from host.sensors.mpu6050 import MPU6050 as Chip

        self.chip = Chip(0x68, seed=3, clock=lambda: t[0])

    def readfrom_mem_into(self, addr, reg, buf):
        self.chip.write(bytes([reg]))
        buf[:] = self.chip.read(len(buf))

    def writeto(self, addr, buf, stop=True):
        self.chip.write(bytes(buf))
        return len(buf)


def test_driver_mpu6050_class_attributes():
    assert MPU6050.KIND == "mpu6050"
    assert MPU6050.SAMPLE_FORMAT == ">7h"
    assert struct.calcsize(MPU6050.SAMPLE_FORMAT) == MPU6050.SAMPLE_SIZE == 14
    assert len(MPU6050.CHANNELS) == 7 and MPU6050.CHANNELS[3] == ("temperature", "raw")


def test_driver_mpu6050_init_writes_defaults(bus):
    dev = MPU6050(bus)
    assert bus.log[0] == ("readfrom_mem_into", 0x68, 0x75, 1)
    assert writes(bus) == [
        (0x6B, b"\x01"),  # wake, CLKSEL = PLL with X gyro
        (0x19, b"\x00"),  # SMPLRT_DIV
        (0x1A, b"\x01"),  # DLPF_CFG 1
        (0x1B, b"\x00"),  # FS_SEL 0 (250 dps)
        (0x1C, b"\x00"),  # AFS_SEL 0 (2 g)
    ]
    assert dev.calibration() == b""
    assert dev.config() == {"accel_fs_g": 2, "gyro_fs_dps": 250, "dlpf_cfg": 1,
                            "sample_rate_div": 0, "sample_rate_hz": 1000}
    assert dev.MIN_PERIOD_US == 1000


@pytest.mark.parametrize("afs,afs_sel", [(2, 0), (4, 1), (8, 2), (16, 3)])
@pytest.mark.parametrize("gfs,fs_sel", [(250, 0), (500, 1), (1000, 2), (2000, 3)])
def test_driver_mpu6050_full_scale_registers(bus, afs, afs_sel, gfs, fs_sel):
    dev = MPU6050(bus, accel_fs_g=afs, gyro_fs_dps=gfs)
    w = dict(writes(bus))
    assert w[0x1C] == bytes([afs_sel << 3]) and w[0x1B] == bytes([fs_sel << 3])
    assert bus.chips[0x68].regs[0x1C] == afs_sel << 3
    assert dev.config()["accel_fs_g"] == afs and dev.config()["gyro_fs_dps"] == gfs


def test_driver_mpu6050_rate_settings(bus):
    dev = MPU6050(bus, dlpf_cfg=0, sample_rate_div=79)  # 8 kHz / 80 = 100 Hz
    assert dict(writes(bus))[0x19] == bytes([79])
    assert dev.config()["sample_rate_hz"] == 100
    assert dev.MIN_PERIOD_US == 10000


def test_driver_mpu6050_read_into_is_one_burst(bus):
    dev = MPU6050(bus)
    buf = bytearray(MPU6050.SAMPLE_SIZE)
    bus.log.clear()
    dev.start()
    dev.read_into(memoryview(buf))
    assert bus.log == [("readfrom_mem_into", 0x68, 0x3B, 14)]
    assert dev.FREE_RUNNING is True  # start() made no transfer: the sampler may skip it
    assert struct.unpack(">7h", buf) == SAMPLE


def test_driver_mpu6050_wrong_id():
    b = fakebus.FakeI2C()
    b.attach(0x69, make_chip(who_am_i=0x70))  # an MPU-6500
    with pytest.raises(OSError, match="MPU6050 not found at 0x69"):
        MPU6050(b, address=0x69)


def test_driver_mpu6050_absent():
    with pytest.raises(OSError, match="0x68") as e:
        MPU6050(fakebus.FakeI2C())
    assert e.value.errno == 19


@pytest.mark.parametrize("kwargs", [
    {"address": 0x50}, {"accel_fs_g": 3}, {"gyro_fs_dps": 245}, {"dlpf_cfg": 7},
    {"sample_rate_div": 256}, {"sample_rate_div": -1},
])
def test_driver_mpu6050_bad_settings_touch_nothing(bus, kwargs):
    with pytest.raises(ValueError):
        MPU6050(bus, **kwargs)
    assert bus.log == []


def test_driver_mpu6050_reset(bus):
    dev = MPU6050(bus, accel_fs_g=8)
    bus.log.clear()
    dev.reset()
    w = writes(bus)
    assert w[0] == (0x6B, b"\x80")
    assert w[1:] == [(0x6B, b"\x01"), (0x19, b"\x00"), (0x1A, b"\x01"), (0x1B, b"\x00"), (0x1C, b"\x10")]
    assert bus.chips[0x68].regs[0x6B] == 0x01


def test_driver_mpu6050_read_bus_error(bus):
    dev = MPU6050(bus)
    del bus.chips[0x68]
    with pytest.raises(OSError):
        dev.read_into(bytearray(14))


def test_driver_mpu6050_fifo_period_is_the_sample_period_from_1_khz_down(bus):
    assert MPU6050(bus).FIFO_PERIOD_US == 1000  # 1 kHz / (1 + 0)
    assert MPU6050(bus, sample_rate_div=4).FIFO_PERIOD_US == 5000
    assert MPU6050(bus, dlpf_cfg=0, sample_rate_div=7).FIFO_PERIOD_US == 1000  # 8 kHz / 8
    assert MPU6050(bus, dlpf_cfg=0).FIFO_PERIOD_US == 0  # 125 us: below the 1 kHz accel rate
    assert MPU6050(bus, dlpf_cfg=0, sample_rate_div=10).FIFO_PERIOD_US == 1375  # 8 kHz / 11
    assert MPU6050(bus, fifo=False).FIFO_PERIOD_US == 0


def test_driver_mpu6050_fifo_calls(bus):
    dev = MPU6050(bus)
    bus.log.clear()
    dev.fifo_start()
    # reset, overflow flag on (INT_ENABLE FIFO_OFLOW_EN) and cleared by a read of INT_STATUS, start
    assert writes(bus) == [(0x6A, b"\x04"), (0x38, b"\x10"), (0x23, b"\xf8"), (0x6A, b"\x40")]
    assert ("readfrom_mem_into", 0x68, 0x3A, 1) in bus.log
    chip = bus.chips[0x68]
    chip.regs[0x72], chip.regs[0x73] = 0x01, 0x5E
    bus.log.clear()
    assert dev.fifo_count() == 350
    buf = bytearray(350)
    dev.fifo_read_into(buf)
    assert bus.log == [("readfrom_mem_into", 0x68, 0x72, 2), ("readfrom_mem_into", 0x68, 0x74, 350)]
    bus.log.clear()
    dev.fifo_stop()
    assert writes(bus) == [(0x6A, b"\x00"), (0x23, b"\x00")]


def test_driver_mpu6050_sees_an_overflow_after_its_count():
    """A FIFO that overflows between the count and the burst read (a loop late by a whole FIFO)
    has dropped its oldest bytes: the read may start inside a sample, and the driver says so."""
    t = [100.0]
    dev = MPU6050(SimulatedChipBus(t))
    dev.fifo_start()
    t[0] += 0.0255
    assert dev.fifo_count() == 25 * 14 and not dev.fifo_overflowed()
    t[0] += 0.2  # 200 more samples: past the 1024-byte FIFO
    dev.fifo_read_into(bytearray(25 * 14))
    assert dev.fifo_overflowed() and not dev.fifo_overflowed()  # reading INT_STATUS clears it


def test_driver_mpu6050_fifo_on_the_simulated_chip():
    """The driver's FIFO calls against the host's chip model: a batch of samples in one read."""
    t = [100.0]
    dev = MPU6050(SimulatedChipBus(t))
    dev.fifo_start()
    t[0] += 0.0255
    n = dev.fifo_count()
    assert n == 25 * 14
    buf = bytearray(n)
    dev.fifo_read_into(buf)
    last = bytearray(14)
    dev.read_into(last)
    assert buf[-14:] == last and dev.fifo_count() == 0
