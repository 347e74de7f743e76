"""The emulated RP2040's flash store and UF2 checks, without an emulator or a UF2 image."""
from __future__ import annotations

import struct

import pytest

from host.emulated_rp2040.flash_store import FLASH_BASE, FlashStore
from host.emulated_rp2040.image import ENV_VAR, MISSING, RP2040_FAMILY, image_path, require_image, uf2_blocks
from host.errors import ImageError


def uf2(blocks: list[tuple[int, bytes]], family: int = RP2040_FAMILY) -> bytes:
    out = b""
    for i, (addr, payload) in enumerate(blocks):
        head = struct.pack("<8I", 0x0A324655, 0x9E5D5157, 0x2000, addr, len(payload), i, len(blocks), family)
        out += (head + payload).ljust(508, b"\0") + struct.pack("<I", 0x0AB16F30)
    return out


def test_a_uf2_is_programmed_over_the_saved_flash_which_survives(tmp_path):
    store = FlashStore(tmp_path / "flash.bin", 64 * 1024)
    flash = bytearray(16 * 1024 * 1024)
    store.load(flash, uf2([(FLASH_BASE, b"fw-v1")]))
    flash[0x8000:0x8004] = b"LFS!"  # the firmware writes its filesystem
    assert store.save(flash) and not store.save(flash)  # written once, then unchanged
    again = bytearray(16 * 1024 * 1024)
    store.load(again, uf2([(FLASH_BASE, b"fw-v2")]))
    assert again[:5] == b"fw-v2" and again[0x8000:0x8004] == b"LFS!" and again[0x10000] == 0


def test_write_uf2_refuses_another_family_before_touching_the_file(tmp_path):
    store = FlashStore(tmp_path / "flash.bin", 64 * 1024)
    store.write_uf2(uf2([(FLASH_BASE + 256, b"ok")]))
    before = store.path.read_bytes()
    assert before[256:258] == b"ok" and before[0] == 0xFF
    with pytest.raises(ImageError, match="not the RP2040"):
        store.write_uf2(uf2([(FLASH_BASE, b"x")], family=0xE48BFF59))
    with pytest.raises(ImageError, match="outside"):
        store.write_uf2(uf2([(FLASH_BASE + 64 * 1024, b"x")]))
    assert store.path.read_bytes() == before
    with pytest.raises(ImageError, match="not a UF2"):
        uf2_blocks(b"\0" * 100)


def test_without_an_image_the_reason_names_the_variable_and_the_option(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert image_path() is None
    with pytest.raises(ImageError) as info:
        require_image()
    assert ENV_VAR in str(info.value) and "--rp2-image" in MISSING
    f = tmp_path / "fw.uf2"
    f.write_bytes(b"")
    monkeypatch.setenv(ENV_VAR, str(f))
    assert image_path() == f
