"""Image validation: every refusal is one ImageError line, before any byte is written."""

from __future__ import annotations

import struct

import pytest

from host.errors import ImageError
from host.flashing.images import read_image, validate_esp_image, validate_uf2
from tests.fakes.images import esp_image, uf2_image

FLASH_4MB = 4 * 1024 * 1024
RP2040 = dict(family_id=0xE48BFF56, flash_base=0x10000000, flash_size=2 * 1024 * 1024)


def test_esp_image_good():
    info = validate_esp_image(esp_image(), chip_id=0, offset=0x1000, flash_size=FLASH_4MB)
    assert info.chip_id == 0 and info.segments == 1


@pytest.mark.parametrize("mutate, words", [
    (lambda b: b"\xea" + b[1:], "first byte"),
    (lambda b: b[:12] + struct.pack("<H", 9) + b[14:], "ESP32-S3"),
    (lambda b: b[:1] + b"\x00" + b[2:], "segments"),
    (lambda b: b[:10], "too short"),
])
def test_esp_image_refused(mutate, words):
    with pytest.raises(ImageError) as exc:
        validate_esp_image(mutate(esp_image()), chip_id=0, offset=0x1000, flash_size=FLASH_4MB)
    assert words in str(exc.value) and "\n" not in str(exc.value)


def test_esp_image_too_big_for_flash():
    with pytest.raises(ImageError, match="does not fit"):
        validate_esp_image(esp_image(), chip_id=0, offset=FLASH_4MB - 100, flash_size=FLASH_4MB)


def test_uf2_good():
    info = validate_uf2(uf2_image(), **RP2040)
    assert info.blocks == 12 and info.start == 0x10000000


def _patch_block(data: bytes, block: int, field: int, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into("<I", out, block * 512 + field * 4, value)
    return bytes(out)


@pytest.mark.parametrize("mutate, words", [
    (lambda d: _patch_block(d, 3, 0, 0x12345678), "bad magic"),
    (lambda d: _patch_block(d, 0, 1, 0), "bad magic"),
    (lambda d: d[:5 * 512 + 508] + b"\0\0\0\0" + d[5 * 512 + 512:], "bad magic"),
    (lambda d: _patch_block(d, 0, 7, 0xE48BFF59), "family"),
    (lambda d: _patch_block(d, 0, 2, 0), "no family ID"),
    (lambda d: _patch_block(d, 4, 5, 7), "contiguous"),
    (lambda d: _patch_block(d, 2, 6, 99), "numBlocks"),
    (lambda d: _patch_block(d, 1, 3, 0x20000000), "outside flash"),
    (lambda d: _patch_block(d, 1, 3, 0x101FFF80), "outside flash"),
    (lambda d: d[:-512], "claim numBlocks"),
    (lambda d: d + b"\0" * 10, "multiple"),
])
def test_uf2_refused(mutate, words):
    with pytest.raises(ImageError) as exc:
        validate_uf2(mutate(uf2_image()), **RP2040)
    assert words in str(exc.value) and "\n" not in str(exc.value)


def test_read_image_missing_and_empty(tmp_path):
    with pytest.raises(ImageError, match="does not exist"):
        read_image(tmp_path / "nope.bin")
    (tmp_path / "empty.bin").write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        read_image(tmp_path / "empty.bin")
    with pytest.raises(ImageError, match="not a regular file"):
        read_image(tmp_path)


def test_image_error_is_a_value_error():
    assert issubclass(ImageError, ValueError)
