"""A fake I2C bus and register-level chip fakes that run on MicroPython and CPython.

The bus has machine.I2C's four transfer methods and routes them by address; an absent address
raises OSError(19) (ENODEV), as machine.I2C does on a NACK. Nothing on the transfer path allocates
(index copies, pre-built exceptions), so drivers can be exercised under micropython.heap_lock().
Set ``bus.log = []`` to record transactions (that allocates: CPython tests only).

Chip contents are test fixtures derived from the datasheets, not simulations.
"""

_ENODEV = 19


def sht_crc8(data, start, n):
    crc = 0xFF
    for i in range(start, start + n):
        crc ^= data[i]
        for _ in range(8):
            if crc & 0x80:
                crc = ((crc << 1) ^ 0x31) & 0xFF
            else:
                crc = (crc << 1) & 0xFF
    return crc


class RegisterChip:
    """A chip with an 8-bit register pointer (BME280, MPU-6050)."""

    def __init__(self, regs=None):
        self.regs = bytearray(256)
        if regs:
            for reg in regs:
                self.regs[reg] = regs[reg]
        self.ptr = 0
        self.on_write = None  # optional callable(chip, reg, value), called per written byte

    def write(self, buf):
        n = len(buf)
        if n == 0:
            return
        self.ptr = buf[0]
        for i in range(1, n):
            self.store(self.ptr, buf[i])
            self.ptr = (self.ptr + 1) & 0xFF

    def store(self, reg, value):
        self.regs[reg] = value
        if self.on_write is not None:
            self.on_write(self, reg, value)

    def write_mem(self, reg, buf):
        for i in range(len(buf)):
            self.store((reg + i) & 0xFF, buf[i])

    def read_mem_into(self, reg, buf):
        regs = self.regs
        for i in range(len(buf)):
            buf[i] = regs[(reg + i) & 0xFF]

    def read_into(self, buf):
        self.read_mem_into(self.ptr, buf)
        self.ptr = (self.ptr + len(buf)) & 0xFF


class SHT31Chip:
    """SHT31 command interface: status register, single-shot measurement, soft reset."""

    def __init__(self, t_raw=0x6666, h_raw=0x8000, status=0x8010):
        self.out = bytearray(6)
        self.n_out = 0  # bytes available to read; 0 means the chip NACKs a read
        self.t_raw = t_raw
        self.h_raw = h_raw
        self.status = status
        self.corrupt = False  # flip a bit of the temperature CRC on the next measurement
        self.last_cmd = -1
        self.nack = OSError(_ENODEV)

    def write(self, buf):
        if len(buf) != 2:
            raise self.nack
        cmd = (buf[0] << 8) | buf[1]
        self.last_cmd = cmd
        out = self.out
        if cmd == 0xF32D:
            out[0] = self.status >> 8
            out[1] = self.status & 0xFF
            out[2] = sht_crc8(out, 0, 2)
            self.n_out = 3
        elif cmd == 0x2400 or cmd == 0x240B or cmd == 0x2416:
            out[0] = self.t_raw >> 8
            out[1] = self.t_raw & 0xFF
            out[2] = sht_crc8(out, 0, 2)
            out[3] = self.h_raw >> 8
            out[4] = self.h_raw & 0xFF
            out[5] = sht_crc8(out, 3, 2)
            if self.corrupt:
                out[2] ^= 0x01
            self.n_out = 6
        elif cmd == 0x30A2:
            self.n_out = 0
        else:
            raise self.nack

    def read_into(self, buf):
        n = len(buf)
        if self.n_out == 0 or n > self.n_out:
            raise self.nack
        out = self.out
        for i in range(n):
            buf[i] = out[i]
        self.n_out = 0


class FakeI2C:
    def __init__(self):
        self.chips = {}
        self.log = None
        self.nack = OSError(_ENODEV)

    def attach(self, address, chip):
        self.chips[address] = chip
        return chip

    def _chip(self, addr):
        chip = self.chips.get(addr)
        if chip is None:
            raise self.nack
        return chip

    def readfrom_mem_into(self, addr, memaddr, buf):
        chip = self._chip(addr)
        chip.read_mem_into(memaddr, buf)
        if self.log is not None:
            self.log.append(("readfrom_mem_into", addr, memaddr, len(buf)))

    def writeto_mem(self, addr, memaddr, buf):
        chip = self._chip(addr)
        if self.log is not None:
            self.log.append(("writeto_mem", addr, memaddr, bytes(buf)))
        chip.write_mem(memaddr, buf)

    def writeto(self, addr, buf, stop=True):
        chip = self._chip(addr)
        if self.log is not None:
            self.log.append(("writeto", addr, bytes(buf)))
        chip.write(buf)
        return len(buf)

    def readfrom_into(self, addr, buf, stop=True):
        chip = self._chip(addr)
        chip.read_into(buf)
        if self.log is not None:
            self.log.append(("readfrom_into", addr, len(buf)))


class FakeADC:
    def __init__(self, value=0x8000):
        self.value = value

    def read_u16(self):
        return self.value
