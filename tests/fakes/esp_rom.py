"""A virtual ESP32 ROM bootloader (download mode) on a pseudo-terminal.

Speaks enough of the ROM loader's SLIP protocol that unmodified esptool, with the stub disabled
and no reset (before="no-reset"), connects, detects an ESP32, attaches the flash, writes it and
verifies it by MD5. The flash is a `bytearray` the test inspects.

Commands: SYNC, READ_REG, WRITE_REG (a small register file; a write of SPI_USR to the SPI command
register "executes" RDID/SFDP), SPI_SET_PARAMS, SPI_ATTACH, FLASH_BEGIN (erases), FLASH_DATA
(checks the XOR checksum), FLASH_END, SPI_FLASH_MD5 (32 hex ASCII bytes, as the ESP32 ROM does),
CHANGE_BAUDRATE. Anything else gets the ROM's "invalid message" status.

Fault: `corrupt_block=N` flips one byte of FLASH_DATA block N *after* its checksum passed, as
flaky flash would, so the transfer is acknowledged but the MD5 check afterwards fails.
"""

from __future__ import annotations

import hashlib
import os
import pty
import select
import struct
import threading
import tty

SLIP_END, SLIP_ESC, SLIP_ESC_END, SLIP_ESC_ESC = 0xC0, 0xDB, 0xDC, 0xDD

OP_FLASH_BEGIN, OP_FLASH_DATA, OP_FLASH_END = 0x02, 0x03, 0x04
OP_SYNC, OP_WRITE_REG, OP_READ_REG = 0x08, 0x09, 0x0A
OP_SPI_SET_PARAMS, OP_SPI_ATTACH, OP_CHANGE_BAUDRATE, OP_SPI_FLASH_MD5 = 0x0B, 0x0D, 0x0F, 0x13

CHIP_DETECT_MAGIC_REG_ADDR = 0x40001000
ESP32_MAGIC = 0x00F01D83
SPI_REG_BASE = 0x3FF42000  # ESP32 SPI0/1 controller
SPI_CMD_USR = 1 << 18
SPI_USR2_OFFS, SPI_W0_OFFS = 0x24, 0x80
SPIFLASH_RDID = 0x9F
FLASH_ID_4MB = 0x1640EF  # Winbond W25Q32: vendor 0xEF, type 0x40, capacity 0x16 (4 MB)
ESP_CHECKSUM_MAGIC = 0xEF

STATUS_OK = b"\x00\x00\x00\x00"  # ESP32 ROM: status, error, two reserved bytes
STATUS_INVALID = b"\x01\x05\x00\x00"  # ROM_INVALID_RECV_MSG
STATUS_BAD_CHECKSUM = b"\x01\x07\x00\x00"
STATUS_BAD_DATA_LEN = b"\x01\x08\x00\x00"


def slip_encode(packet: bytes) -> bytes:
    body = packet.replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc")
    return b"\xc0" + body + b"\xc0"


class SlipDecoder:
    """Incremental SLIP decoder: feed bytes, get complete packets."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._in_packet = False
        self._escape = False

    def feed(self, data: bytes) -> list[bytes]:
        packets = []
        for b in data:
            if not self._in_packet:
                if b == SLIP_END:
                    self._in_packet = True
                    self._buf.clear()
                continue
            if self._escape:
                self._escape = False
                self._buf.append({SLIP_ESC_END: SLIP_END, SLIP_ESC_ESC: SLIP_ESC}.get(b, b))
            elif b == SLIP_ESC:
                self._escape = True
            elif b == SLIP_END:
                if self._buf:
                    packets.append(bytes(self._buf))
                    self._buf.clear()
                # an END right after END starts a new packet (the empty packet is skipped)
            else:
                self._buf.append(b)
        return packets


class FakeEspRom:
    """The ROM loader of an ESP32 in download mode, served on a pty from a thread."""

    def __init__(self, flash_size: int = 4 * 1024 * 1024, corrupt_block: int | None = None,
                 fill: int = 0xFF) -> None:
        self.flash = bytearray([fill]) * flash_size
        self.corrupt_block = corrupt_block
        self.regs: dict[int, int] = {CHIP_DETECT_MAGIC_REG_ADDR: ESP32_MAGIC}
        self.commands: list[int] = []  # every opcode received, in order (tests assert on it)
        self.baud_changes: list[int] = []
        self._flash_offset = 0
        self._block_size = 0
        self._master, self._slave = pty.openpty()
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._serve, name="fake-esp-rom", daemon=True)

    # lifecycle -------------------------------------------------------------------------------
    def start(self) -> "FakeEspRom":
        self._thread.start()
        return self

    def stop(self) -> None:
        os.write(self._stop_w, b"x")
        self._thread.join(timeout=2)
        for fd in (self._master, self._slave, self._stop_r, self._stop_w):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> "FakeEspRom":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def flash_writes(self) -> int:
        return self.commands.count(OP_FLASH_DATA)

    # serving ---------------------------------------------------------------------------------
    def _serve(self) -> None:
        decoder = SlipDecoder()
        while True:
            ready, _, _ = select.select([self._master, self._stop_r], [], [])
            if self._stop_r in ready:
                return
            try:
                data = os.read(self._master, 65536)
            except OSError:
                return  # slave side gone
            for packet in decoder.feed(data):
                for reply in self._handle(packet):
                    os.write(self._master, slip_encode(reply))

    def _reply(self, op: int, body: bytes = b"", val: int = 0, status: bytes = STATUS_OK) -> bytes:
        payload = body + status
        return struct.pack("<BBHI", 1, op, len(payload), val) + payload

    def _handle(self, packet: bytes) -> list[bytes]:
        if len(packet) < 8 or packet[0] != 0:
            return []
        _, op, length, chk = struct.unpack_from("<BBHI", packet)
        data = packet[8 : 8 + length]
        self.commands.append(op)
        if op == OP_SYNC:
            # the ROM answers a SYNC several times; a non-zero value says "ROM, not stub"
            return [self._reply(op, val=0x20120707) for _ in range(8)]
        if op == OP_READ_REG:
            (addr,) = struct.unpack_from("<I", data)
            return [self._reply(op, val=self.regs.get(addr, 0))]
        if op == OP_WRITE_REG:
            for i in range(0, len(data) - 15, 16):
                addr, value, mask, _delay = struct.unpack_from("<IIII", data, i)
                self._write_reg(addr, value, mask)
            return [self._reply(op)]
        if op in (OP_SPI_SET_PARAMS, OP_SPI_ATTACH):
            return [self._reply(op)]
        if op == OP_CHANGE_BAUDRATE:
            self.baud_changes.append(struct.unpack_from("<I", data)[0])
            return [self._reply(op)]
        if op == OP_FLASH_BEGIN:
            erase_size, _blocks, block_size, offset = struct.unpack_from("<IIII", data)
            if offset + erase_size > len(self.flash):
                return [self._reply(op, status=STATUS_BAD_DATA_LEN)]
            self.flash[offset : offset + erase_size] = b"\xff" * erase_size
            self._flash_offset, self._block_size = offset, block_size
            return [self._reply(op)]
        if op == OP_FLASH_DATA:
            size, seq, _, _ = struct.unpack_from("<IIII", data)
            block = bytearray(data[16 : 16 + size])
            if len(block) != size:
                return [self._reply(op, status=STATUS_BAD_DATA_LEN)]
            checksum = ESP_CHECKSUM_MAGIC
            for b in block:
                checksum ^= b
            if checksum != chk:
                return [self._reply(op, status=STATUS_BAD_CHECKSUM)]
            if seq == self.corrupt_block:
                block[size // 2] ^= 0x5A  # flaky flash: acknowledged, stored wrong
            start = self._flash_offset + seq * self._block_size
            if start + size > len(self.flash):
                return [self._reply(op, status=STATUS_BAD_DATA_LEN)]
            self.flash[start : start + size] = block
            return [self._reply(op)]
        if op == OP_FLASH_END:
            return [self._reply(op)]
        if op == OP_SPI_FLASH_MD5:
            addr, size, _, _ = struct.unpack_from("<IIII", data)
            digest = hashlib.md5(self.flash[addr : addr + size]).hexdigest().encode()
            return [self._reply(op, body=digest)]
        return [self._reply(op, status=STATUS_INVALID)]

    def _write_reg(self, addr: int, value: int, mask: int) -> None:
        old = self.regs.get(addr, 0)
        self.regs[addr] = (old & ~mask) | (value & mask)
        if addr == SPI_REG_BASE and self.regs[addr] & SPI_CMD_USR:
            command = self.regs.get(SPI_REG_BASE + SPI_USR2_OFFS, 0) & 0xFF
            if command == SPIFLASH_RDID:
                self.regs[SPI_REG_BASE + SPI_W0_OFFS] = FLASH_ID_4MB
            self.regs[addr] &= ~SPI_CMD_USR  # the "hardware" finished the transaction
