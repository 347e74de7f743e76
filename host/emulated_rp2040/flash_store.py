"""The emulated chip's flash, kept on disk between runs of the same board.

A real Pico keeps its whole 2 MiB flash when unplugged, and a UF2 copied in BOOTSEL mode rewrites
only the sectors its blocks cover: the littlefs filesystem behind the firmware survives a firmware
update. The store keeps the flash as one file (`flash.bin`, the board's `flash_size` bytes) and
does exactly that: load the saved flash, then write the UF2's blocks over it.

Saved on every reset, on stop and whenever a periodic check sees a change, always by writing a
temporary file and renaming it, so a killed runner leaves the previous good copy, never half of one.
"""
from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

from host.emulated_rp2040.image import uf2_blocks

FLASH_BASE = 0x1000_0000


class FlashStore:
    """`path`: the flash file; `size`: bytes of flash the board has (board.json flash_size)."""

    def __init__(self, path: str | os.PathLike, size: int):
        self.path = Path(path)
        self.size = size
        self._digest: bytes | None = None
        self._lock = threading.Lock()  # the periodic saver, stop() and BOOTSEL may save at once

    def load(self, flash: bytearray, uf2: bytes | None) -> None:
        """Fill the emulator's `flash` from the saved copy (erased 0xFF when there is none), then
        program `uf2` over it as the boot ROM would."""
        saved = self.path.read_bytes() if self.path.is_file() else b""
        image = bytearray(saved[:self.size].ljust(self.size, b"\xff"))
        if uf2 is not None:
            program(image, uf2)
        flash[:self.size] = image
        self._digest = hashlib.blake2b(image, digest_size=16).digest()

    def save(self, flash: bytearray) -> bool:
        """Write the flash to disk when it changed since the last load or save; True when written."""
        data = bytes(flash[:self.size])
        digest = hashlib.blake2b(data, digest_size=16).digest()
        with self._lock:
            if digest == self._digest:
                return False
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + ".tmp")
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            self._digest = digest
            return True

    def write_uf2(self, uf2: bytes) -> None:
        """Program `uf2` into the stored flash while the board is off (the BOOTSEL drive's side)."""
        saved = self.path.read_bytes() if self.path.is_file() else b""
        image = bytearray(saved[:self.size].ljust(self.size, b"\xff"))
        program(image, uf2)
        self._digest = None
        self.save(image)


def program(image: bytearray, uf2: bytes) -> int:
    """Write the blocks of `uf2` (RP2040 family, else ImageError before any byte) into `image`,
    a copy of flash starting at FLASH_BASE; returns the number of bytes written."""
    from host.errors import ImageError

    blocks = uf2_blocks(uf2)
    for addr, payload in blocks:
        off = addr - FLASH_BASE
        if off < 0 or off + len(payload) > len(image):
            raise ImageError(f"UF2 block at {addr:#010x} is outside the board's {len(image)} bytes of flash")
    for addr, payload in blocks:
        off = addr - FLASH_BASE
        image[off:off + len(payload)] = payload
    return sum(len(p) for _, p in blocks)
