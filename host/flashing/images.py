"""Firmware image validation: refuse what would brick or confuse a board before writing a byte.

Pure functions over bytes; `read_image` is the only one that touches the filesystem.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from host.device.mcu import ESP_CHIP_NAMES, RP2040_FAMILY_ID
from host.errors import ImageError

# ESP application/bootloader image (esptool's bin_image.py, ESP-IDF esp_app_format.h)
ESP_IMAGE_MAGIC = 0xE9
ESP_HEADER_LEN = 8
ESP_EXT_HEADER_LEN = 16
ESP_MAX_SEGMENTS = 16

# UF2 (https://github.com/microsoft/uf2)
UF2_BLOCK_SIZE = 512
UF2_MAGIC_START0 = 0x0A324655
UF2_MAGIC_START1 = 0x9E5D5157
UF2_MAGIC_END = 0x0AB16F30
UF2_FLAG_NOT_MAIN_FLASH = 0x00000001
UF2_FLAG_FAMILY_ID_PRESENT = 0x00002000
UF2_MAX_PAYLOAD = 476
UF2_HEADER = struct.Struct("<8I")  # magic0, magic1, flags, addr, size, block_no, num_blocks, family


@dataclass(frozen=True)
class EspImageInfo:
    chip_id: int
    segments: int
    size: int


@dataclass(frozen=True)
class Uf2Info:
    family_id: int
    blocks: int
    start: int  # lowest target address
    end: int  # one past the highest byte written


def read_image(path: str | Path) -> bytes:
    """Read an image file; ImageError if it is missing, not a file or empty."""
    p = Path(path)
    if not p.exists():
        raise ImageError(f"image {p} does not exist")
    if not p.is_file():
        raise ImageError(f"image {p} is not a regular file")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ImageError(f"cannot read image {p}: {exc.strerror}") from None
    if not data:
        raise ImageError(f"image {p} is empty")
    return data


def _chip_name(chip_id: int) -> str:
    return ESP_CHIP_NAMES.get(chip_id, f"chip id {chip_id}")


def _esptool_chip(chip_id: int) -> str:
    """esptool's name for the board's chip (its image classes share the ESP32 header layout)."""
    name = ESP_CHIP_NAMES.get(chip_id, "ESP32").lower().replace("-", "")
    return name if name.startswith("esp32") else "esp32"


def validate_esp_image(data: bytes, chip_id: int, offset: int, flash_size: int) -> EspImageInfo:
    """Check an ESP image (as written at `offset`) against the board's chip and flash size.

    esptool's `bin_image.LoadFirmwareImage` parses it (header, extended header, every segment); our
    checks before it only say in words what a wrong first byte or segment count means, which
    esptool reports as a bare magic value or an end-of-file.

    Raises ImageError for: too short, wrong magic byte, impossible segment count, a segment running
    past the end of the file, a checksum (or appended SHA-256) that does not match the contents, a
    chip id in the extended header that is not the board's, or an image past the end of flash.
    """
    from esptool.bin_image import LoadFirmwareImage
    from esptool.util import FatalError

    if not data:
        raise ImageError("image is empty")
    if len(data) < ESP_HEADER_LEN + ESP_EXT_HEADER_LEN:
        raise ImageError(f"image is {len(data)} bytes, too short for an ESP image header")
    if data[0] != ESP_IMAGE_MAGIC:
        raise ImageError(f"not an ESP image: first byte is {data[0]:#04x}, expected {ESP_IMAGE_MAGIC:#04x}")
    if not 0 < data[1] <= ESP_MAX_SEGMENTS:
        raise ImageError(f"ESP image header claims {data[1]} segments (1..{ESP_MAX_SEGMENTS} allowed)")
    try:
        image = LoadFirmwareImage(_esptool_chip(chip_id), data)
    except (FatalError, RuntimeError, struct.error, ValueError) as exc:
        why = " ".join(str(exc).split()) or type(exc).__name__
        raise ImageError(f"not a valid ESP image (esptool: {why})") from None
    if image.chip_id != chip_id:
        raise ImageError(
            f"image is built for {_chip_name(image.chip_id)} (chip id {image.chip_id}), "
            f"board is {_chip_name(chip_id)} (chip id {chip_id})"
        )
    if image.checksum != image.calculate_checksum():
        raise ImageError(f"ESP image checksum {image.checksum:#04x} does not match its contents "
                         f"({image.calculate_checksum():#04x}): the file is corrupt")
    if getattr(image, "append_digest", False) and image.stored_digest != image.calc_digest:
        raise ImageError("ESP image's appended SHA-256 does not match its contents: the file is corrupt")
    if offset + len(data) > flash_size:
        raise ImageError(
            f"image of {len(data)} bytes at {offset:#x} does not fit in {flash_size} bytes of flash"
        )
    return EspImageInfo(chip_id=image.chip_id, segments=len(image.segments), size=len(data))


def validate_uf2(data: bytes, family_id: int, flash_base: int, flash_size: int) -> Uf2Info:
    """Check every block of a UF2 file: magics, family, contiguous numbering, addresses in flash.

    Raises ImageError naming the first bad block.
    """
    if not data:
        raise ImageError("UF2 file is empty")
    if len(data) % UF2_BLOCK_SIZE:
        raise ImageError(f"UF2 file is {len(data)} bytes, not a multiple of {UF2_BLOCK_SIZE}-byte blocks")
    total = len(data) // UF2_BLOCK_SIZE
    flash_end = flash_base + flash_size
    lowest, highest = flash_end, flash_base
    num_blocks_seen: int | None = None
    for index in range(total):
        off = index * UF2_BLOCK_SIZE
        magic0, magic1, flags, addr, size, block_no, num_blocks, family = UF2_HEADER.unpack_from(data, off)
        (magic_end,) = struct.unpack_from("<I", data, off + UF2_BLOCK_SIZE - 4)
        where = f"UF2 block {index}"
        if magic0 != UF2_MAGIC_START0 or magic1 != UF2_MAGIC_START1 or magic_end != UF2_MAGIC_END:
            raise ImageError(f"{where}: bad magic, not a UF2 block")
        if not flags & UF2_FLAG_FAMILY_ID_PRESENT:
            raise ImageError(f"{where}: no family ID (flags {flags:#x}); refusing an image of unknown family")
        if family != family_id:
            raise ImageError(f"{where}: family {family:#010x}, board expects {family_id:#010x}")
        if num_blocks_seen is None:
            num_blocks_seen = num_blocks
        elif num_blocks != num_blocks_seen:
            raise ImageError(f"{where}: numBlocks {num_blocks} differs from {num_blocks_seen} in block 0")
        if block_no != index:
            raise ImageError(f"{where}: block number {block_no}, expected {index} (blocks must be contiguous)")
        if not 0 < size <= UF2_MAX_PAYLOAD:
            raise ImageError(f"{where}: payload size {size} out of range 1..{UF2_MAX_PAYLOAD}")
        if flags & UF2_FLAG_NOT_MAIN_FLASH:
            continue
        if addr < flash_base or addr + size > flash_end:
            raise ImageError(
                f"{where}: address {addr:#010x}+{size} outside flash {flash_base:#010x}..{flash_end:#010x}"
            )
        lowest = min(lowest, addr)
        highest = max(highest, addr + size)
    if num_blocks_seen != total:
        raise ImageError(f"UF2 file has {total} blocks but its blocks claim numBlocks {num_blocks_seen}")
    return Uf2Info(family_id=family_id, blocks=total, start=lowest, end=highest)


def build_uf2(payload: bytes, base: int, family_id: int = RP2040_FAMILY_ID, chunk: int = 256) -> bytes:
    """Pack `payload` at `base` into UF2 blocks of `chunk` bytes (used by tests and tooling)."""
    chunks = [payload[i : i + chunk] for i in range(0, len(payload), chunk)] or [b""]
    out = bytearray()
    for n, part in enumerate(chunks):
        block = bytearray(UF2_BLOCK_SIZE)
        UF2_HEADER.pack_into(block, 0, UF2_MAGIC_START0, UF2_MAGIC_START1, UF2_FLAG_FAMILY_ID_PRESENT,
                             base + n * chunk, chunk, n, len(chunks), family_id)
        block[32 : 32 + len(part)] = part
        struct.pack_into("<I", block, UF2_BLOCK_SIZE - 4, UF2_MAGIC_END)
        out += block
    return bytes(out)
