"""The ESP32's serial download protocol: the ROM loader, and the flasher stub once esptool runs it.

Requests are SLIP packets `00 op len:u16 chk:u32 data`; replies `01 op len:u16 val:u32 data
status`, where the ROM's status is 4 bytes and the stub's 2 (esptool reads the first two). The
ROM answers SYNC eight times with a non-zero value, runs no chip erase and reads flash 64 bytes
at a time (READ_FLASH_SLOW); code loaded into RAM and started with MEM_END is taken to be
esptool's flasher stub (nothing runs it here: the stub's behaviour is modelled), which greets
with `OHAI` and adds ERASE_FLASH, ERASE_REGION and the streamed READ_FLASH with its MD5 trailer.

`feed(bytes)` returns the bytes to send back; I/O and timing live in chip.py.
"""
from __future__ import annotations

import struct
import zlib
from typing import Callable

from host.virtual_board.esp_rom import slip
from host.virtual_board.esp_rom.registers import Registers
from host.virtual_board.esp_rom.spi_flash import FlashRangeError, SpiFlash

(FLASH_BEGIN, FLASH_DATA, FLASH_END, MEM_BEGIN, MEM_END, MEM_DATA, SYNC, WRITE_REG, READ_REG,
 SPI_SET_PARAMS, SPI_ATTACH, READ_FLASH_SLOW, CHANGE_BAUDRATE, FLASH_DEFL_BEGIN, FLASH_DEFL_DATA,
 FLASH_DEFL_END, SPI_FLASH_MD5) = (0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0D,
                                   0x0E, 0x0F, 0x10, 0x11, 0x12, 0x13)
ERASE_FLASH, ERASE_REGION, READ_FLASH, RUN_USER_CODE = 0xD0, 0xD1, 0xD2, 0xD3
CHECKSUM_MAGIC = 0xEF
SYNC_VALUE = 0x20120707  # any non-zero value says "ROM"; this one is what the ESP32 ROM sends

# ROM error codes (second status byte) and the stub's
ROM_INVALID_MSG, ROM_FAILED, ROM_BAD_CRC, ROM_FLASH_WRITE, ROM_FLASH_READ, ROM_DEFLATE = 5, 6, 7, 8, 9, 0xB
STUB_BAD_DATA_LEN, STUB_BAD_CHECKSUM, STUB_INVALID_COMMAND, STUB_INFLATE, STUB_TOO_MUCH = 0xC0, 0xC1, 0xC3, 0xC7, 0xC9


class LoaderError(Exception):
    """A request the loader refuses; `code` is the status byte it sends."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class RomLoader:
    """One download-mode session (it starts again at every reset into download mode)."""

    def __init__(self, flash: SpiFlash, regs: Registers) -> None:
        self.flash = flash
        self.regs = regs
        self.stub = False
        self.commands: list[int] = []  # every opcode received, in order
        self.corrupt_block: int | None = None  # fault: FLASH_DATA block N is stored with a flipped byte
        self.baud_changes: list[int] = []
        self.run_app = False  # ROM FLASH_END "run user code" or RUN_USER_CODE: the app starts
        self.soft_reset = False  # FLASH_END "reboot": the CPU resets into the ROM, still in download mode
        self._decoder = slip.SlipDecoder()
        self._write: tuple[int, int] | None = None  # (offset, block size) of FLASH_BEGIN
        self._inflate: tuple[zlib._Decompress, int, int] | None = None  # decompressor, offset, size
        self._inflated = 0

    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        for packet in self._decoder.feed(data):
            if len(packet) < 8 or packet[0] != 0:
                continue  # READ_FLASH's 4-byte acknowledgements, line noise
            op, length, chk = struct.unpack_from("<xBHI", packet)
            body = packet[8:8 + length]
            self.commands.append(op)
            out += self._dispatch(op, body, chk)
        return bytes(out)

    # -- replies -------------------------------------------------------------------------------
    def _reply(self, op: int, data: bytes = b"", val: int = 0, error: int = 0) -> bytes:
        status = bytes((1 if error else 0, error)) + (b"" if self.stub else b"\0\0")
        payload = data + status
        return slip.encode(struct.pack("<BBHI", 1, op, len(payload), val) + payload)

    def _dispatch(self, op: int, body: bytes, chk: int) -> bytes:
        handler = _HANDLERS.get(op)
        if handler is None or (op in _STUB_ONLY and not self.stub):
            return self._reply(op, error=ROM_INVALID_MSG if not self.stub else STUB_INVALID_COMMAND)
        try:
            return handler(self, op, body, chk)
        except LoaderError as exc:
            return self._reply(op, error=exc.code)
        except (struct.error, FlashRangeError):
            return self._reply(op, error=ROM_FAILED if not self.stub else STUB_BAD_DATA_LEN)

    # -- commands ------------------------------------------------------------------------------
    def _sync(self, op: int, body: bytes, chk: int) -> bytes:
        """Eight replies, as esptool reads them; the stub's carry 0, which is how esptool knows
        it is already running (`--before no-reset` after `--after no-reset`)."""
        return self._reply(op, val=0 if self.stub else SYNC_VALUE) * 8

    def _read_reg(self, op: int, body: bytes, chk: int) -> bytes:
        return self._reply(op, val=self.regs.read(struct.unpack_from("<I", body)[0]))

    def _write_reg(self, op: int, body: bytes, chk: int) -> bytes:
        for i in range(0, len(body) - 15, 16):
            addr, value, mask, _delay_us = struct.unpack_from("<IIII", body, i)
            self.regs.write(addr, value, mask)
        return self._reply(op)

    def _ok(self, op: int, body: bytes, chk: int) -> bytes:
        return self._reply(op)

    def _change_baud(self, op: int, body: bytes, chk: int) -> bytes:
        baud, _old = struct.unpack_from("<II", body)
        self.baud_changes.append(baud)
        return self._reply(op)

    def _checked(self, body: bytes, chk: int) -> tuple[int, bytes]:
        size, seq = struct.unpack_from("<II", body)
        data = body[16:16 + size]
        if len(data) != size:
            raise LoaderError(ROM_FAILED if not self.stub else STUB_BAD_DATA_LEN)
        checksum = CHECKSUM_MAGIC
        for b in data:
            checksum ^= b
        if checksum != chk & 0xFF:
            raise LoaderError(ROM_BAD_CRC if not self.stub else STUB_BAD_CHECKSUM)
        return seq, data

    def _flash_begin(self, op: int, body: bytes, chk: int) -> bytes:
        size, _blocks, block_size, offset = struct.unpack_from("<IIII", body)
        self.flash.erase(offset, size)
        self._write, self._inflate = (offset, block_size), None
        return self._reply(op)

    def _flash_data(self, op: int, body: bytes, chk: int) -> bytes:
        seq, data = self._checked(body, chk)
        if self._write is None:
            raise LoaderError(ROM_FAILED)
        if seq == self.corrupt_block and data:
            data = bytearray(data)
            data[len(data) // 2] ^= 0x5A  # flaky flash: acknowledged, stored wrong
        offset, block_size = self._write
        self.flash.program(offset + seq * block_size, bytes(data))
        return self._reply(op)

    def _flash_end(self, op: int, body: bytes, chk: int) -> bytes:
        """0 reboots (a CPU reset: the ROM starts again in download mode, the strapping pins being
        latched at power-on; esptool's way out of the stub), 1 makes the ROM run the app from flash
        and the stub carry on."""
        run_user_code = struct.unpack_from("<I", body)[0] if len(body) >= 4 else 1
        self._write = self._inflate = None
        self.flash.flush()
        if not run_user_code:
            self.soft_reset = True
        elif not self.stub:
            self.run_app = True
        return self._reply(op)

    def _defl_begin(self, op: int, body: bytes, chk: int) -> bytes:
        size, _blocks, _block_size, offset = struct.unpack_from("<IIII", body)
        self.flash.erase(offset, size)
        self._inflate, self._write, self._inflated = (zlib.decompressobj(), offset, size), None, 0
        return self._reply(op)

    def _defl_data(self, op: int, body: bytes, chk: int) -> bytes:
        seq, data = self._checked(body, chk)
        if self._inflate is None:
            raise LoaderError(ROM_FAILED)
        inflater, offset, size = self._inflate
        try:
            plain = inflater.decompress(data)
        except zlib.error:
            raise LoaderError(ROM_DEFLATE if not self.stub else STUB_INFLATE) from None
        if self.stub and self._inflated + len(plain) > size:
            raise LoaderError(STUB_TOO_MUCH)
        if seq == self.corrupt_block and plain:
            plain = bytearray(plain)
            plain[len(plain) // 2] ^= 0x5A
        self.flash.program(offset + self._inflated, bytes(plain))
        self._inflated += len(plain)
        return self._reply(op)

    def _md5(self, op: int, body: bytes, chk: int) -> bytes:
        addr, size = struct.unpack_from("<II", body)
        digest = self.flash.md5(addr, size)
        return self._reply(op, digest if self.stub else digest.hex().encode())

    def _read_slow(self, op: int, body: bytes, chk: int) -> bytes:
        offset, length = struct.unpack_from("<II", body)
        if length > 64:
            raise LoaderError(ROM_FLASH_READ)
        return self._reply(op, self.flash.read(offset, length).ljust(64, b"\xff"))

    def _read_flash(self, op: int, body: bytes, chk: int) -> bytes:
        """Stub READ_FLASH: the reply, the data in packet_size packets, then its MD5. The stub keeps
        at most max_inflight packets unacknowledged; the transport's buffers do that here."""
        offset, length, packet_size, _max_inflight = struct.unpack_from("<IIII", body)
        data = self.flash.read(offset, length)
        out = bytearray(self._reply(op))
        for i in range(0, length, max(1, packet_size)):
            out += slip.encode(data[i:i + packet_size])
        out += slip.encode(self.flash.md5(offset, length))
        return bytes(out)

    def _erase_flash(self, op: int, body: bytes, chk: int) -> bytes:
        self.flash.erase_all()
        return self._reply(op)

    def _erase_region(self, op: int, body: bytes, chk: int) -> bytes:
        offset, size = struct.unpack_from("<II", body)
        if offset % 0x1000 or size % 0x1000:
            raise LoaderError(STUB_BAD_DATA_LEN)
        self.flash.erase(offset, size)
        return self._reply(op)

    def _mem_data(self, op: int, body: bytes, chk: int) -> bytes:
        self._checked(body, chk)  # the RAM image itself is not kept: see the module docstring
        return self._reply(op)

    def _mem_end(self, op: int, body: bytes, chk: int) -> bytes:
        no_entry, entry = struct.unpack_from("<II", body)
        reply = self._reply(op)
        if no_entry or not entry:
            return reply
        self.stub = True  # see the module docstring: RAM code that is started is the stub
        return reply + slip.encode(b"OHAI")

    def _run_user_code(self, op: int, body: bytes, chk: int) -> bytes:
        self.run_app = True
        return b""


_HANDLERS: dict[int, Callable[..., bytes]] = {
    SYNC: RomLoader._sync, READ_REG: RomLoader._read_reg, WRITE_REG: RomLoader._write_reg,
    SPI_SET_PARAMS: RomLoader._ok, SPI_ATTACH: RomLoader._ok, CHANGE_BAUDRATE: RomLoader._change_baud,
    FLASH_BEGIN: RomLoader._flash_begin, FLASH_DATA: RomLoader._flash_data, FLASH_END: RomLoader._flash_end,
    FLASH_DEFL_BEGIN: RomLoader._defl_begin, FLASH_DEFL_DATA: RomLoader._defl_data,
    FLASH_DEFL_END: RomLoader._flash_end, SPI_FLASH_MD5: RomLoader._md5, READ_FLASH_SLOW: RomLoader._read_slow,
    MEM_BEGIN: RomLoader._ok, MEM_DATA: RomLoader._mem_data, MEM_END: RomLoader._mem_end,
    READ_FLASH: RomLoader._read_flash, ERASE_FLASH: RomLoader._erase_flash, ERASE_REGION: RomLoader._erase_region,
    RUN_USER_CODE: RomLoader._run_user_code,
}
_STUB_ONLY = {READ_FLASH, ERASE_FLASH, ERASE_REGION, RUN_USER_CODE}
