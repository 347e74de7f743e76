"""An ESP32 on a DevKitC: what the esp32 profile's board adds around the MicroPython VM.

Host tools reach the chip's UART0 on the board's pty or, with modem lines, as the RFC 2217 URL
the board advertises (`rfc2217` in its registry entry). DTR/RTS drive the auto-reset circuit;
EN low holds the chip in reset (the VM stops); EN high with IO0 low starts the ROM loader on the
port instead of the VM, EN high with IO0 high boots MicroPython again. Either way the ROM prints
its boot line first, as a real ESP32 does at 115200 baud, which is how esptool tells the two apart.
"""
from __future__ import annotations

import threading

from host.virtual_board.esp_rom.auto_reset import AutoReset
from host.virtual_board.esp_rom.loader import RomLoader
from host.virtual_board.esp_rom.registers import Registers, mac_from_identity
from host.virtual_board.esp_rom.spi_flash import SpiFlash
from host.virtual_board.rfc2217_port import Rfc2217Port

FLASH_FILE = "spi_flash.bin"
_ROM = b"ets Jun  8 2016 00:22:57\r\n\r\n"
BANNER_DOWNLOAD = _ROM + b"rst:0x1 (POWERON_RESET),boot:0x3 (DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2))\r\n" \
                         b"waiting for download\r\n"
BANNER_FLASH_BOOT = _ROM + b"rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n"
BANNER_SW_RESET = _ROM + b"rst:0xc (SW_CPU_RESET),boot:0x3 (DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2))\r\n" \
                         b"waiting for download\r\n"


class Esp32Chip:
    """Built by VirtualBoard for the esp32 profile; `board` provides `link` (the PtyBridge), `dir`,
    `serial`, `hold_in_reset()` and `release_reset(cause)`."""

    def __init__(self, board) -> None:
        self.board = board
        self.mac = mac_from_identity(board.serial)
        self.flash = SpiFlash(board.dir / FLASH_FILE)
        self.port = Rfc2217Port(board.link.host_input, self._lines)
        self.url = self.port.url
        self.regs = Registers(self.mac, self.flash.jedec_id, lambda: self.port.baudrate)
        self.circuit = AutoReset(self._hold, self._release)
        self.loader: RomLoader | None = None
        self.last_loader: RomLoader | None = None  # kept after the session ends, for tests
        self.corrupt_block: int | None = None  # fault for the next loader session (see RomLoader)
        self._lock = threading.Lock()

    def start(self) -> "Esp32Chip":
        self.port.start()
        self.board.link.remote = self.port.send
        return self

    def close(self) -> None:
        self.board.link.remote = None
        self.board.link.device_sink = None
        self.port.close()
        self.flash.close()

    @property
    def in_download_mode(self) -> bool:
        return self.loader is not None and self.board.link.device_sink == self._feed

    def status(self) -> dict:
        return {"rfc2217": self.url, "mac": self.mac.hex(":"), "download_mode": self.in_download_mode,
                "dtr": self.circuit.dtr, "rts": self.circuit.rts}

    def enter_download_mode(self) -> None:
        """What holding BOOT while tapping EN does: the ROM loader takes the port (pty or RFC 2217),
        for tools that cannot pulse DTR/RTS (esptool --before no-reset on the pty)."""
        self._hold()
        self._release(True)

    def _lines(self, dtr: bool | None, rts: bool | None) -> None:
        self.circuit.set_lines(dtr, rts)

    def _hold(self) -> None:
        with self._lock:
            self.loader = None
            self.board.hold_in_reset()

    def _release(self, download: bool) -> None:
        with self._lock:
            link = self.board.link
            if download:
                self.loader = self.last_loader = RomLoader(self.flash, self.regs)
                self.loader.corrupt_block = self.corrupt_block
                link.inject_to_host(BANNER_DOWNLOAD)
                link.device_sink = self._feed
                return
            link.inject_to_host(BANNER_FLASH_BOOT)
        self.board.release_reset()

    def _feed(self, data: bytes) -> None:
        loader = self.loader
        if loader is None:
            return
        out = loader.feed(data)
        if out:
            self.board.link.inject_to_host(out)
        if loader.soft_reset:
            with self._lock:
                if self.loader is loader:
                    self.loader = self.last_loader = RomLoader(self.flash, self.regs)
                    self.loader.corrupt_block = self.corrupt_block
                    self.board.link.inject_to_host(BANNER_SW_RESET)
        elif loader.run_app:
            with self._lock:
                self.loader = None
                self.flash.flush()
            self.board.release_reset()
