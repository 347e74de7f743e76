"""MicroPython code that measures the virtual board from the inside, shared by the tests and
bench/ (one definition of what "an I2C transaction through the shim" costs)."""

#: 14-byte MPU-6050 burst reads under heap_lock(); `% n` reads; prints "OK <microseconds>".
#: The bound method is taken once, outside the loop: taking one allocates.
I2C_READ_LOOP = """
import machine, micropython, time
i2c = machine.I2C(0)
buf = bytearray(14)
i2c.writeto_mem(0x68, 0x6B, b'\\x01')
def loop(n, r=i2c.readfrom_mem_into):  # bound once: taking a bound method allocates
    for _ in range(n):
        r(0x68, 0x3B, buf)
loop(10)
t = time.ticks_us()
micropython.heap_lock()
try:
    loop(%d)
finally:
    micropython.heap_unlock()
dt = time.ticks_diff(time.ticks_us(), t)
print('OK', dt)
"""
