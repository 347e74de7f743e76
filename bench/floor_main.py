"""The floor: the work every firmware with these drivers must do, and nothing else (main.py).

bench/emulated_cycles_bench.py runs this beside ours and the naive on the same emulated RP2040, at
the same schedule (floor_plan.json: each stream's period and driver settings, the imu's batch).
It does only what no firmware can skip to deliver the same samples through the same drivers on
the same port:

- the bus transactions: the BME280 and SHT31 sample and re-trigger (``read_into`` + ``start``), the
  analog input's ``read_u16`` (the bound method ``fast_read`` hands the sampler) or, when the plan
  gives a0 a ``sample_us``, one count and one copy of a batch from the ADC's DMA ring (the driver
  ours uses, firmware/adcring.py), and the MPU-6050's FIFO read the cheapest way the chip offers
  (one count and one burst of a whole batch, as ours does);
- the samples' raw bytes to the host over the USB CDC, in 256-byte writes (tinyusb's TX FIFO):
  no header, no sequence, no CRC, no framing, so fewer bytes than any checked wire format.

Nothing is checked, timestamped, counted or framed.  No firmware that delivers these samples can
cost less per sample, so naive / floor bounds the ratio any firmware can reach at this schedule,
and ours / floor says what ours adds.  It counts time like the naive (from a sample falling due to
its bytes queued or written; not the polling) and after one second prints the naive's stats line
and ends; with ``reports`` N in the plan it prints one every second, N in all (bench/firmware_bench.py
reads a window of them on the virtual board, as it reads the naive's).
Allocation is not its concern: it is a bound on time, not a firmware.
"""
import json
import sys
import time

import machine
import micropython

from sensors.analog import Analog
from sensors.bme280 import BME280
from sensors.mpu6050 import MPU6050
from sensors.sht31 import SHT31

CHUNK = 256


@micropython.viper
def put(dst, o: int, src, s: int, n: int):
    """dst[o:o+n] = src[s:s+n] without a slice object (nothing to collect in the timed part)."""
    d = ptr8(dst)  # noqa: F821 (viper built-in)
    b = ptr8(src)  # noqa: F821
    i = 0
    while i < n:
        d[o + i] = b[s + i]
        i += 1


def main():
    with open("floor_plan.json") as f:
        plan = json.load(f)
    period, settings, imu_batch = plan["period_us"], plan["settings"], plan["imu_batch"]
    i2c = machine.I2C(0, timeout=50000)
    imu = MPU6050(i2c, **settings["imu"])
    env = BME280(i2c, **settings["env"])
    rh = SHT31(i2c, **settings["rh"])
    adc = machine.ADC(machine.Pin(26))
    a0_batch = plan["a0_batch"]
    if settings["a0"].get("sample_us"):  # the ADC converts on its own clock into a DMA ring
        import rp2
        import uctypes
        from adcring import AdcRing

        ring = plan["a0_ring"]
        adc = AdcRing(adc, ring["channel"], ring["ring_bytes"], rp2.DMA, machine.mem32, uctypes.addressof)
    a0 = Analog(adc, **settings["a0"])
    blocks = bool(settings["a0"].get("sample_us"))
    read_u16 = a0.fast_read()[1]  # the ADC's own read_u16
    a0buf = bytearray(a0_batch * 2)
    a0whole = memoryview(a0buf)
    write = sys.stdout.buffer.write
    out = bytearray(CHUNK + 512)
    burst = bytearray(imu_batch * imu.SAMPLE_SIZE)
    whole = memoryview(burst)
    polled = ((env, bytearray(env.SAMPLE_SIZE)), (rh, bytearray(rh.SAMPLE_SIZE)))  # due k = 1, 2
    env.start()
    rh.start()
    imu.fifo_start()
    if blocks:
        a0.fifo_start()
    now = time.ticks_us()
    p_imu = period["imu"] * imu_batch  # one burst a batch, as ours reads it
    per = [p_imu, period["env"], period["rh"], period["a0"] * (a0_batch if blocks else 1)]
    due = [time.ticks_add(now, p) for p in per]
    n = 0
    samples = 0
    busy = 0
    next_stats = time.ticks_add(time.ticks_ms(), 1000)
    reports = plan.get("reports", 1)
    ticks_us, ticks_diff, ticks_add = time.ticks_us, time.ticks_diff, time.ticks_add
    while True:
        for k in range(4):
            if ticks_diff(ticks_us(), due[k]) < 0:
                continue
            t0 = ticks_us()
            due[k] = ticks_add(due[k], per[k])
            if k == 0:
                have = imu.fifo_count() // imu.SAMPLE_SIZE
                m = have if have < imu_batch else imu_batch
                mv = whole if m == imu_batch else whole[:m * imu.SAMPLE_SIZE]
                imu.fifo_read_into(mv)
                src = burst
                size = m * imu.SAMPLE_SIZE
                samples += m
            elif k < 3:  # the BME280 or the SHT31: read the sample, trigger the next
                drv, src = polled[k - 1]
                drv.read_into(src)
                drv.start()
                size = drv.SAMPLE_SIZE
                samples += 1
            elif blocks:  # a batch from the ADC's ring: one count, one copy
                have = a0.fifo_count() >> 1
                m = have if have < a0_batch else a0_batch
                a0.fifo_read_into(a0whole if m == a0_batch else a0whole[:2 * m])
                src = a0buf
                size = 2 * m
                samples += m
            else:
                v = read_u16()
                out[n] = v >> 8
                out[n + 1] = v & 0xFF
                n += 2
                src = None
                samples += 1
            if src is not None:
                put(out, n, src, 0, size)
                n += size
            while n >= CHUNK:
                write(out, 0, CHUNK)
                put(out, 0, out, CHUNK, n - CHUNK)
                n -= CHUNK
            busy += ticks_diff(ticks_us(), t0)
        if ticks_diff(time.ticks_ms(), next_stats) >= 0:  # each second, as the naive's stats lines
            next_stats = ticks_add(next_stats, 1000)
            # the raw bytes may hold anything, a frame delimiter included: end them before the text
            write(b"\x00\r\n")
            print(json.dumps({"stats": {"samples": samples, "busy_us": busy}}))
            reports -= 1
            if reports <= 0:
                break


main()
