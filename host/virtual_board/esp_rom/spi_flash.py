"""The board's SPI NOR flash: a file in the board's folder, mapped into memory.

NOR rules: erase sets a 4 KiB sector to 0xFF, programming can only clear bits (a write ANDs into
what is there), so writing without erasing first gives what real flash gives. The file survives
the runner, a power cycle and a new runner on the same folder.
"""
from __future__ import annotations

import hashlib
import mmap
import os
from pathlib import Path

SECTOR = 0x1000
SIZE_4MB = 4 * 1024 * 1024
JEDEC_W25Q32 = 0x1640EF  # RDID bytes EF 40 16 as esptool reads them: Winbond, 4 MB


class FlashRangeError(ValueError):
    """An address range outside the chip."""


class SpiFlash:
    def __init__(self, path: str | Path, size: int = SIZE_4MB, jedec_id: int = JEDEC_W25Q32) -> None:
        self.path = Path(path)
        self.size = size
        self.jedec_id = jedec_id
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not self.path.exists() or self.path.stat().st_size != size
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if fresh:
                os.ftruncate(fd, 0)
                os.write(fd, b"\xff" * size)  # a new chip comes erased
            self._map = mmap.mmap(fd, size)
        finally:
            os.close(fd)

    def close(self) -> None:
        if not self._map.closed:
            self._map.flush()
            self._map.close()

    def _check(self, offset: int, length: int) -> None:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise FlashRangeError(f"{offset:#x}+{length:#x} is outside the {self.size:#x}-byte flash")

    def read(self, offset: int, length: int) -> bytes:
        self._check(offset, length)
        return self._map[offset:offset + length]

    def erase(self, offset: int, length: int) -> None:
        """Erase every sector the range touches (the chip erases whole sectors)."""
        start = offset - offset % SECTOR
        end = min(self.size, -(-(offset + length) // SECTOR) * SECTOR)
        self._check(start, end - start)
        self._map[start:end] = b"\xff" * (end - start)

    def erase_all(self) -> None:
        self.fill(0xFF)

    def fill(self, value: int) -> None:
        """Every byte set to `value`: a chip holding some old content, for tests."""
        self._map[:] = bytes((value,)) * self.size

    def program(self, offset: int, data: bytes) -> None:
        self._check(offset, len(data))
        old = self._map[offset:offset + len(data)]
        merged = (int.from_bytes(old, "little") & int.from_bytes(data, "little")).to_bytes(len(data), "little")
        self._map[offset:offset + len(data)] = merged

    def md5(self, offset: int, length: int) -> bytes:
        self._check(offset, length)
        return hashlib.md5(self._map[offset:offset + length]).digest()

    def flush(self) -> None:
        self._map.flush()
