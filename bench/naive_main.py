"""A deliberately naive reference firmware for bench/firmware_bench.py (installed as main.py).

Same sensors through the same drivers, but the way a first prototype would do it: read each
sensor as often as its driver allows (MIN_PERIOD_US, polled with ticks_us), turn the raw sample into a tuple, and print one JSON line per
sample.  For its first COUNT_MS it also counts the heap bytes allocated (sum of positive
gc.mem_alloc() steps, ~11 us a call) and the GC runs seen (gc.mem_alloc() going down), then prints
them once ({"alloc": ...}) and stops counting, so the bench's window (after that line) has no
bookkeeping in it.  Every second it prints the samples and the time spent on due samples (from one
falling due to its line printed: not polling, not the counting) since the start.
"""
import gc
import json
import struct
import time

import machine

from sensors.analog import Analog
from sensors.bme280 import BME280
from sensors.mpu6050 import MPU6050
from sensors.sht31 import SHT31

COUNT_MS = 2000


def main():
    i2c = machine.I2C(0, timeout=50000)
    sensors = [
        ("imu", MPU6050(i2c)),
        ("env", BME280(i2c)),
        ("rh", SHT31(i2c)),
        ("a0", Analog(machine.ADC(machine.Pin(26)))),
    ]
    due = {}
    for name, s in sensors:
        s.start()
        due[name] = time.ticks_add(time.ticks_us(), s.MIN_PERIOD_US)
    last_alloc = gc.mem_alloc()
    allocated = 0
    gc_runs = 0
    counted = 0
    samples = 0
    busy_us = 0  # time spent on due samples (read, JSON, print), not polling or counting
    counting = True
    t_start = time.ticks_ms()
    next_stats = time.ticks_add(t_start, 1000)
    while True:
        for name, s in sensors:
            if time.ticks_diff(time.ticks_us(), due[name]) < 0:
                continue
            t_work = time.ticks_us()
            due[name] = time.ticks_add(time.ticks_us(), s.MIN_PERIOD_US)
            buf = bytearray(s.SAMPLE_SIZE)
            try:
                s.read_into(buf)
                s.start()
                values = list(struct.unpack(s.SAMPLE_FORMAT, buf))
            except OSError:
                values = None
            print(json.dumps({"s": name, "t": time.ticks_us(), "v": values, "error": values is None}))
            samples += 1
            busy_us += time.ticks_diff(time.ticks_us(), t_work)
            if counting:
                a = gc.mem_alloc()
                if a < last_alloc:
                    gc_runs += 1
                else:
                    allocated += a - last_alloc
                last_alloc = a
                counted += 1
        if counting and time.ticks_diff(time.ticks_ms(), t_start) >= COUNT_MS:
            counting = False
            print(json.dumps({"alloc": {"samples": counted, "bytes": allocated, "gc_runs": gc_runs,
                                        "ms": time.ticks_diff(time.ticks_ms(), t_start)}}))
        if time.ticks_diff(time.ticks_ms(), next_stats) >= 0:
            next_stats = time.ticks_add(next_stats, 1000)
            print(json.dumps({"stats": {"samples": samples, "busy_us": busy_us}}))

main()
