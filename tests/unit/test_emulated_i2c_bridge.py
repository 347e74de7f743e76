"""The emulated RP2040's I2C bridge (host/emulated_rp2040/i2c_bridge.py) takes bytes from a chip as
the master clocks them where a read consumes data: a burst read of the MPU-6050's FIFO pops exactly
the bytes read, so the FIFO count stays a whole number of samples (the bridge read ahead in 32-byte
steps and a 350-byte burst popped 2 bytes of the next sample). No emulator needed: a fake peripheral
drives the bridge's hooks as rp2040py does."""
from __future__ import annotations

from types import SimpleNamespace

from host.emulated_rp2040.i2c_bridge import I2CBridge
from host.sensors import mpu6050 as m
from host.virtual_board.bus import Buses


class FakePeripheral:
    def __init__(self):
        self._stop = False
        self._tx_fifo = SimpleNamespace(empty=True)
        self.abort_source = 0
        self.got: list[int] = []
        self.acks: list[bool] = []

    def complete_start(self): pass
    def complete_stop(self): pass
    def _set_interrupts(self, bits): pass
    def _clear_interrupts(self, bits): pass

    def complete_connect(self, ok):
        self.acks.append(ok)

    def complete_write(self, ok):
        self.acks.append(ok)

    def complete_read(self, value):
        self.got.append(value)


def transfer(p, addr, reg, *, write=b"", read=0):
    """A register write (STOP on its last byte) or a register read (repeated START), as the rp2
    port's writeto / readfrom_mem_into issue them."""
    p.got.clear()
    p.on_start(False)
    p.on_connect(addr, 0)
    data = bytes([reg]) + write
    for i, b in enumerate(data):
        p._stop = bool(write) and i == len(data) - 1
        p.on_write_byte(b)
    p._stop = False
    if read:
        p.on_start(True)
        p.on_connect(addr, 1)
        for _ in range(read):
            p.on_read_byte(True)
    p.on_stop()
    return bytes(p.got)


def test_a_fifo_burst_pops_exactly_the_bytes_read():
    now = [0.0]
    buses = Buses(seed=1, wire_time=False)
    chip = m.MPU6050(0x68, seed=1, clock=lambda: now[0])
    buses.bus(0).attach(chip)
    p = FakePeripheral()
    I2CBridge(p, buses, 0, schedule=lambda delay, cb: None)
    for reg, value in ((m.REG_PWR_MGMT_1, 0x00), (m.REG_CONFIG, 0x01), (m.REG_SMPLRT_DIV, 0x00),
                       (m.REG_FIFO_EN, 0x78 | 0x80), (m.REG_USER_CTRL, m.USER_FIFO_EN)):
        transfer(p, 0x68, reg, write=bytes([value]))
    now[0] += 0.0405  # 40 samples at 1 kHz (accel, temperature, gyro: 14 bytes each)

    def count():
        hi, lo = transfer(p, 0x68, m.REG_FIFO_COUNT_H, read=2)
        return hi << 8 | lo

    before = count()
    assert before % 14 == 0 and before >= 25 * 14
    burst = transfer(p, 0x68, m.REG_FIFO_R_W, read=25 * 14)
    assert len(burst) == 350
    after = count()
    assert after == before - 350, (before, after)  # old bridge: 2 bytes more gone, count % 14 == 12
    # and a register window still reads ahead safely
    assert transfer(p, 0x68, m.REG_WHO_AM_I, read=1) == bytes([m.WHO_AM_I_VALUE])
