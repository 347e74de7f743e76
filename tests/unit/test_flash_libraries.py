"""Maintained libraries where they do the job: esptool parses ESP images, psutil lists the mounted
drives the RPI-RP2 search looks at, rich formats sizes."""
from __future__ import annotations

import hashlib
from collections import namedtuple
from pathlib import Path

import psutil
import pytest

from host.errors import ImageError
from host.flashing.images import validate_esp_image
from host.flashing.uf2 import default_mount_roots, find_rp2_drive
from host.monitoring.panels import fmt_bytes
from tests.fakes.images import esp_image

FLASH_4MB = 4 * 1024 * 1024


def _check(data: bytes):
    return validate_esp_image(data, chip_id=0, offset=0x1000, flash_size=FLASH_4MB)


def test_esp_image_segment_past_the_end_of_the_file() -> None:
    with pytest.raises(ImageError, match="not a valid ESP image .esptool: End of file reading segment"):
        _check(esp_image()[:200])


def test_esp_image_checksum_is_checked() -> None:
    bad = bytearray(esp_image())
    bad[40] ^= 0x55  # a payload byte
    with pytest.raises(ImageError, match="checksum .* does not match its contents"):
        _check(bytes(bad))


def test_esp_image_appended_sha256_is_checked() -> None:
    image = bytearray(esp_image())
    image[23] = 1  # extended header: append_digest
    good = bytes(image) + hashlib.sha256(image).digest()
    assert _check(good).segments == 1
    with pytest.raises(ImageError, match="SHA-256"):
        _check(good[:-1] + bytes([good[-1] ^ 1]))


def test_rp2_drive_found_among_the_mounted_drives(tmp_path: Path, monkeypatch) -> None:
    drive = tmp_path / "mnt" / "RPI-RP2"
    drive.mkdir(parents=True)
    (drive / "INFO_UF2.TXT").write_text("UF2 Bootloader v3.0\nModel: Raspberry Pi RP2\nBoard-ID: RPI-RP2\n")
    Part = namedtuple("Part", "device mountpoint fstype opts")
    monkeypatch.setattr(psutil, "disk_partitions",
                        lambda all=False: [Part("/dev/sda1", "/", "ext4", "rw"),
                                           Part("/dev/sdb1", str(drive), "vfat", "rw")])
    roots = default_mount_roots()
    assert drive in roots and roots[-1].name == "drives"  # the emulated board's folder stays last
    assert find_rp2_drive(roots) == drive


def test_sizes_are_formatted_by_rich() -> None:
    assert [fmt_bytes(n) for n in (0, 999, 3850, 22591, 1.5e6)] == \
        ["0 bytes", "999 bytes", "3.9 kB", "22.6 kB", "1.5 MB"]
