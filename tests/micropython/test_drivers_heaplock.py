"""Every driver's hot path (start() + read_into()) runs allocation-free under the real MicroPython VM.

The script below runs in the unix port with MICROPYPATH = firmware/ + tests/micropython/ (fakebus.py,
whose transfer methods allocate nothing). For each driver it does 10,000 start()+read_into() under
micropython.heap_lock(), changing the fake chip's registers every iteration and checking the bytes
that arrive, then checks the error paths (SHT31 CRC -> OSError(EIO), BME280 forced-mode timeout ->
OSError(ETIMEDOUT)) also raise under the lock. It prints "HEAPLOCK-OK <kind> <n>" per driver.
The MPU-6050's FIFO path (fifo_start, fifo_count, a 25-sample fifo_read_into) runs the same way
against a fake FIFO (kind "mpu6050-fifo").
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
N = 10000

SCRIPT = r"""
import micropython
import struct
from fakebus import FakeI2C, RegisterChip, SHT31Chip, FakeADC
from sensors.bme280 import BME280
from sensors.mpu6050 import MPU6050
from sensors.sht31 import SHT31
from sensors.analog import Analog

N = %d


def bme_chip():
    chip = RegisterChip({0xD0: 0x60})
    for i in range(26):
        chip.regs[0x88 + i] = i + 1
    return chip


def loop_bme(dev, chip, buf):
    regs = chip.regs
    bad = 0
    micropython.heap_lock()
    try:
        for i in range(N):
            regs[0xF7] = i & 0xFF          # press_msb
            regs[0xFA] = (i >> 8) & 0xFF   # temp_msb
            regs[0xFE] = i & 0x7F          # hum_lsb
            dev.start()
            dev.read_into(buf)
            if buf[1] != (i & 0xFF) >> 4 or buf[5] != ((i >> 8) & 0xFF) >> 4 or buf[9] != i & 0x7F:
                bad += 1
    finally:
        micropython.heap_unlock()
    return bad


def loop_mpu(dev, chip, buf):
    regs = chip.regs
    bad = 0
    micropython.heap_lock()
    try:
        for i in range(N):
            regs[0x3B] = i & 0x7F
            regs[0x48] = i & 0xFF
            dev.start()
            dev.read_into(buf)
            if buf[0] != i & 0x7F or buf[13] != i & 0xFF:
                bad += 1
    finally:
        micropython.heap_unlock()
    return bad


class FifoChip(RegisterChip):
    # FIFO_COUNT_H/L hold a count; FIFO_R_W returns bytes numbered from `head` (few locals each:
    # a bytecode frame over 11 words would go to the heap)
    def __init__(self):
        RegisterChip.__init__(self, {0x75: 0x68})
        self.head = 0

    def read_mem_into(self, reg, buf):
        if reg == 0x74:
            self.pop(buf)
        else:
            RegisterChip.read_mem_into(self, reg, buf)

    def pop(self, buf):
        h = self.head
        for i in range(len(buf)):
            buf[i] = (h + i) & 0xFF
        self.head = h + len(buf)


def loop_mpu_fifo(dev, chip, buf):
    regs = chip.regs
    bad = 0
    micropython.heap_lock()
    try:
        for i in range(N):
            regs[0x72] = 0x01
            regs[0x73] = i & 0xFF
            if i & 63 == 0:
                dev.fifo_start()
            h = chip.head
            if dev.fifo_count() != 0x100 | (i & 0xFF):
                bad += 1
            dev.fifo_read_into(buf)
            if buf[0] != h & 0xFF or buf[349] != (h + 349) & 0xFF:
                bad += 1
    finally:
        micropython.heap_unlock()
    return bad


def loop_sht(dev, chip, buf):
    bad = 0
    micropython.heap_lock()
    try:
        for i in range(N):
            chip.t_raw = i
            chip.h_raw = 0xFFFF - i
            dev.start()
            dev.read_into(buf)
            if (buf[0] << 8) | buf[1] != i or (buf[2] << 8) | buf[3] != 0xFFFF - i:
                bad += 1
    finally:
        micropython.heap_unlock()
    return bad


def loop_adc(dev, adc, buf):
    bad = 0
    micropython.heap_lock()
    try:
        for i in range(N):
            adc.value = (i * 7) & 0xFFFF
            dev.start()
            dev.read_into(buf)
            if (buf[0] << 8) | buf[1] != (i * 7) & 0xFFFF:
                bad += 1
    finally:
        micropython.heap_unlock()
    return bad


def sht_crc_error(dev, chip, buf):
    chip.corrupt = True
    errno = -1
    micropython.heap_lock()
    try:
        dev.start()
        dev.read_into(buf)
    except OSError as e:
        errno = e.errno
    finally:
        micropython.heap_unlock()
    chip.corrupt = False
    return errno


def bme_timeout(dev, chip, buf):
    chip.regs[0xF3] = 0x08  # measuring, forever
    errno = -1
    micropython.heap_lock()
    try:
        dev.start()
        dev.read_into(buf)
    except OSError as e:
        errno = e.errno
    finally:
        micropython.heap_unlock()
    chip.regs[0xF3] = 0
    return errno


def report(kind, bad):
    if bad:
        print("HEAPLOCK-BADDATA", kind, bad)
    else:
        print("HEAPLOCK-OK", kind, N)


def main():
    bus = FakeI2C()
    bme = bus.attach(0x76, bme_chip())
    bme_f = bus.attach(0x77, bme_chip())
    mpu = bus.attach(0x68, RegisterChip({0x75: 0x68}))
    sht = bus.attach(0x44, SHT31Chip())
    adc = FakeADC()

    d = BME280(bus, 0x76, pressure_oversampling=16, iir_filter=16)
    report("bme280", loop_bme(d, bme, bytearray(BME280.SAMPLE_SIZE)))
    df = BME280(bus, 0x77, mode="forced")
    report("bme280-forced", loop_bme(df, bme_f, bytearray(BME280.SAMPLE_SIZE)))
    d = MPU6050(bus, 0x68, accel_fs_g=16, gyro_fs_dps=2000)
    report("mpu6050", loop_mpu(d, mpu, bytearray(MPU6050.SAMPLE_SIZE)))
    fifo = bus.attach(0x69, FifoChip())
    d = MPU6050(bus, 0x69)
    report("mpu6050-fifo", loop_mpu_fifo(d, fifo, bytearray(25 * MPU6050.SAMPLE_SIZE)))
    ds = SHT31(bus, 0x44, repeatability="low")
    report("sht31", loop_sht(ds, sht, bytearray(SHT31.SAMPLE_SIZE)))
    d = Analog(adc, vref_mv=3300)
    report("analog", loop_adc(d, adc, memoryview(bytearray(Analog.SAMPLE_SIZE))))

    print("HEAPLOCK-ERRNO sht31-crc", sht_crc_error(ds, sht, bytearray(4)))
    print("HEAPLOCK-ERRNO bme280-timeout", bme_timeout(df, bme_f, bytearray(10)))
    print("HEAPLOCK-DONE")


main()
""" % N


def _micropython():
    exe = Path(sys.executable).with_name("micropython")
    if exe.exists():
        return str(exe)
    found = shutil.which("micropython")
    assert found, "the MicroPython unix port (`micropython`) is not installed in the venv or on PATH"
    return found


@pytest.mark.micropython
def test_drivers_heaplock_hot_path_allocates_nothing(tmp_path):
    script = tmp_path / "heaplock_drivers.py"
    script.write_text(SCRIPT)
    env = dict(os.environ)
    env["MICROPYPATH"] = os.pathsep.join([str(ROOT / "firmware"), str(ROOT / "tests" / "micropython")])
    proc = subprocess.run([_micropython(), "-X", "heapsize=112k", str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    out = proc.stdout + proc.stderr
    print(out)
    assert proc.returncode == 0, "MicroPython run failed (MemoryError = allocation under heap_lock):\n" + out
    for kind in ("bme280", "bme280-forced", "mpu6050", "mpu6050-fifo", "sht31", "analog"):
        assert "HEAPLOCK-OK %s %d" % (kind, N) in out.splitlines(), out
    assert "HEAPLOCK-ERRNO sht31-crc 5" in out, out
    assert "HEAPLOCK-ERRNO bme280-timeout 110" in out, out
    assert out.rstrip().endswith("HEAPLOCK-DONE"), out
