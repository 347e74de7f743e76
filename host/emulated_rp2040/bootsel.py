"""BOOTSEL mode for the emulated RP2040: the RPI-RP2 drive the emulator does not have.

On a Pico, `machine.bootloader()` calls the boot ROM's `reset_usb_boot()`, which arms a watchdog
reboot with SCRATCH4 = 0xb007c0d3 and SCRATCH7 = an entry point inside the ROM; the ROM then
comes up as a USB mass-storage drive (label RPI-RP2, INFO_UF2.TXT, INDEX.HTM). Copying a .uf2 onto
it programs every block whose family is the RP2040's (blocks of any other family are ignored),
and once the last block lands the ROM reboots into the new image: the drive vanishes and the
board re-enumerates as a serial port.

The emulator runs the ROM but models no mass-storage device, so this module plays that part. The
runner's watchdog hook asks `is_usb_boot_request()`; when it says yes, `BootselDrive.enter()`
holds the chip in reset (RUN low, as nothing of the firmware runs in BOOTSEL), cuts the serial
link (the CDC port goes away as it does on USB) and shows the drive as a folder under
`$PAGERLESS_HOME/drives/<board name>`, which `host/flashing/uf2.py` searches like /media/$USER.
A watcher thread takes each complete .uf2 copied there; `on_image(uf2)` (the runner) programs
and reboots the chip.
"""
from __future__ import annotations

import struct
import threading
import time
from pathlib import Path
from typing import Callable

from host.emulated_rp2040.image import RP2040_FAMILY

USB_BOOT_MAGIC = 0xB007C0D3
ROM_END = 0x4000
LABEL = "RPI-RP2"
INFO_UF2 = f"UF2 Bootloader v3.0\nModel: Raspberry Pi RP2\nBoard-ID: {LABEL}\n"
INDEX_HTM = ("<html><head><meta http-equiv=\"refresh\" content=\"0;URL='https://raspberrypi.com/device/"
             "RP2?version=E0C9125B0D9B'\"/></head><body>Redirecting to <a href='https://raspberrypi.com/"
             "device/RP2?version=E0C9125B0D9B'>raspberrypi.com</a></body></html>\n")
_POLL_S = 0.05
_UF2_MAGIC = (0x0A324655, 0x9E5D5157)
_FLAG_FAMILY = 0x00002000


def is_usb_boot_request(scratch: list[int]) -> bool:
    """The watchdog's scratch registers after the ROM's `reset_usb_boot()` (checked against v1.28's
    `machine.bootloader()`: SCRATCH4 the magic, SCRATCH5 its check word, SCRATCH7 a ROM address)."""
    magic, check, pc = scratch[4], scratch[5], scratch[7]
    return magic == USB_BOOT_MAGIC and check == (pc ^ -USB_BOOT_MAGIC) & 0xFFFFFFFF and 0 < pc < ROM_END


def own_blocks(data: bytes) -> bytes | None:
    """The RP2040-family blocks of a complete UF2 file (the ROM skips every other family), or None
    while the file is not complete yet (fewer blocks than its headers announce)."""
    if len(data) < 512 or len(data) % 512:
        return None
    total = struct.unpack_from("<I", data, 24)[0]
    if len(data) // 512 < total:
        return None
    keep = bytearray()
    for off in range(0, len(data), 512):
        m0, m1, flags, _addr, _size, _no, _count, fam = struct.unpack_from("<8I", data, off)
        if (m0, m1) == _UF2_MAGIC and flags & _FLAG_FAMILY and fam == RP2040_FAMILY:
            keep += data[off:off + 512]
    return bytes(keep)


class BootselDrive:
    """The RPI-RP2 drive of one board: `folder` appears on `show()` and goes on `hide()`."""

    def __init__(self, folder: str | Path, on_image: Callable[[bytes], None]):
        self.folder = Path(folder)
        self.on_image = on_image
        self.ignored: list[str] = []  # files copied that held no RP2040 block
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def shown(self) -> bool:
        return self._thread is not None

    def show(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for old in self.folder.iterdir():
            old.unlink()
        (self.folder / "INDEX.HTM").write_text(INDEX_HTM)
        (self.folder / "INFO_UF2.TXT").write_text(INFO_UF2)
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, name="erp2040-bootsel", daemon=True)
        self._thread.start()

    def hide(self) -> None:
        """The drive unmounts (the ROM rebooted, or the board stopped)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2)
        if self.folder.is_dir():
            for p in self.folder.iterdir():
                p.unlink()
            self.folder.rmdir()

    def _watch(self) -> None:
        while not self._stop.wait(_POLL_S):
            for path in sorted(self.folder.glob("*")):
                if path.suffix.lower() != ".uf2" or path.name in self.ignored:
                    continue
                try:
                    data = path.read_bytes()
                except OSError:
                    continue
                blocks = own_blocks(data)
                if blocks is None:
                    continue
                if not blocks:
                    self.ignored.append(path.name)
                    continue
                time.sleep(_POLL_S)  # let the writer close the file, as the ROM acks the last block
                self._stop.set()
                self.on_image(blocks)
                return
