"""Small, well-formed firmware images for tests (ESP .bin and RP2040 .uf2)."""

from __future__ import annotations

import struct

from host.flashing.images import build_uf2

RP2040_FLASH_BASE = 0x10000000


def esp_image(chip_id: int = 0, payload: bytes = bytes(range(256)) * 20, load_addr: int = 0x40080000) -> bytes:
    """Header (magic 0xE9, 1 segment) + extended header with `chip_id` + one segment + checksum."""
    header = struct.pack("<BBBBI", 0xE9, 1, 2, 0x20, load_addr)
    ext = struct.pack("<BBBBHBHH4xB", 0xEE, 0, 0, 0, chip_id, 0, 0, 0xFFFF, 0)
    body = header + ext + struct.pack("<II", load_addr, len(payload)) + payload
    checksum = 0xEF
    for b in payload:
        checksum ^= b
    return body + b"\0" * (15 - len(body) % 16) + bytes([checksum])


def uf2_image(payload: bytes = bytes(range(256)) * 12, base: int = RP2040_FLASH_BASE,
              family: int = 0xE48BFF56) -> bytes:
    return build_uf2(payload, base, family)
