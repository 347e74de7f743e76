"""The ESP32 registers esptool reads and writes in download mode, and the eFuses behind them.

What esptool learns from them: the chip (magic word at 0x40001000), its description and revision
(eFuse words 3 and 5, APB_CTL_DATE: an ESP32-D0WD-V3 rev 3.1), the MAC (eFuse words 1 and 2, with
the CRC-8 the eFuse block carries), the crystal (UART divider x the line's baud: 40 MHz; the ROM's
RTC calibration x the 8 MHz clock's eFuse: 40 MHz too, so esptool's baud workaround is exact), and
the flash's JEDEC id, read by driving the SPI controller's user command registers.
"""
from __future__ import annotations

import zlib
from typing import Callable

CHIP_DETECT_MAGIC_REG = 0x40001000
ESP32_MAGIC = 0x00F01D83
EFUSE_RD_BASE = 0x3FF5A000
APB_CTL_DATE = 0x3FF6607C
UART_CLKDIV_REG = 0x3FF40014
RTCCALICFG1 = 0x3FF5F06C
SPI_BASE = 0x3FF42000
SPI_CMD_USR = 1 << 18
SPI_USR2, SPI_W0 = SPI_BASE + 0x24, SPI_BASE + 0x80
APB_HZ = 40_000_000  # the ROM runs the APB bus from the 40 MHz crystal
ESPRESSIF_OUI = bytes.fromhex("240ac4")
_RDID, _RDSR, _RDSR2 = 0x9F, 0x05, 0x35


def mac_from_identity(identity: str) -> bytes:
    """The board's 6-byte base MAC: Espressif's OUI and three bytes of its stable identity, so a
    board keeps its MAC across runs (machine.unique_id() on the esp32 profile returns it too)."""
    return ESPRESSIF_OUI + zlib.crc32(identity.encode()).to_bytes(4, "big")[1:]


def efuse_mac_crc8(mac: bytes) -> int:
    """CRC-8 (reflected polynomial 0x8C, as ESP-IDF's esp_crc8) stored beside the MAC."""
    crc = 0
    for b in mac:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8C if crc & 1 else crc >> 1
    return crc


def efuse_words(mac: bytes) -> list[int]:
    words = [0] * 32
    words[1] = int.from_bytes(mac[2:6], "big")
    words[2] = efuse_mac_crc8(mac) << 16 | mac[0] << 8 | mac[1]
    words[3] = 1 << 9 | 1 << 15  # package D0WD, revision bit 0
    words[4] = 100  # CK8M calibration: with RTCCALICFG1 below the ROM computes exactly 40 MHz
    words[5] = 1 << 20 | 1 << 24  # revision bit 1, minor revision 1
    return words


class Registers:
    """Reads and masked writes by address; unknown addresses read 0 and keep what is written."""

    def __init__(self, mac: bytes, jedec_id: int, uart_baud: Callable[[], int]) -> None:
        self.jedec_id = jedec_id
        self._uart_baud = uart_baud
        self._regs: dict[int, int] = {CHIP_DETECT_MAGIC_REG: ESP32_MAGIC, APB_CTL_DATE: 1 << 31,
                                      RTCCALICFG1: 1024 << 7}
        for i, word in enumerate(efuse_words(mac)):
            self._regs[EFUSE_RD_BASE + 4 * i] = word

    def read(self, addr: int) -> int:
        if addr == UART_CLKDIV_REG:
            return round(APB_HZ / self._uart_baud()) & 0xFFFFF
        return self._regs.get(addr, 0)

    def write(self, addr: int, value: int, mask: int = 0xFFFFFFFF) -> None:
        self._regs[addr] = (self._regs.get(addr, 0) & ~mask | value & mask) & 0xFFFFFFFF
        if addr == SPI_BASE and self._regs[addr] & SPI_CMD_USR:
            self._spi_user_command(self._regs.get(SPI_USR2, 0) & 0xFF)
            self._regs[addr] &= ~SPI_CMD_USR  # the controller is done at once

    def _spi_user_command(self, command: int) -> None:
        if command == _RDID:
            self._regs[SPI_W0] = self.jedec_id
        elif command in (_RDSR, _RDSR2):
            self._regs[SPI_W0] = 0  # not busy, no protection bits
