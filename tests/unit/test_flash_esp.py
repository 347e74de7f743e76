"""The esptool path end to end: unmodified esptool against the virtual ESP32 ROM loader."""

from __future__ import annotations

import struct

import pytest

from host.flash import main
from tests.fakes.esp_rom import OP_FLASH_DATA, FakeEspRom
from tests.fakes.images import esp_image

OFFSET = 0x1000  # boards/esp32_devkit/board.json flash.offset


@pytest.fixture
def esp_rom():
    rom = FakeEspRom(fill=0xA5).start()
    yield rom
    rom.stop()


def _flash(rom, image_path, *extra):
    return main(["-q", "firmware", "--board", "esp32_devkit", "--image", str(image_path), "--port", rom.port,
                 "--no-stub", "--baud", "115200", *extra])


def test_esp_flash_writes_image_at_board_offset(esp_rom, tmp_path):
    image = esp_image(payload=bytes(range(256)) * 40)
    (tmp_path / "fw.bin").write_bytes(image)
    assert _flash(esp_rom, tmp_path / "fw.bin") == 0
    assert bytes(esp_rom.flash[OFFSET : OFFSET + len(image)]) == image
    assert esp_rom.flash[0] == 0xA5, "nothing below the offset is touched without --erase"


def test_esp_flash_with_erase_and_baud_change(esp_rom, tmp_path):
    image = esp_image()
    (tmp_path / "fw.bin").write_bytes(image)
    rc = main(["-q", "firmware", "--board", "esp32_devkit", "--image", str(tmp_path / "fw.bin"),
               "--port", esp_rom.port, "--no-stub", "--baud", "230400", "--erase"])
    assert rc == 0
    assert bytes(esp_rom.flash[OFFSET : OFFSET + len(image)]) == image
    assert esp_rom.flash[0] == 0xFF and esp_rom.flash[-1] == 0xFF, "--erase cleared the whole chip"
    assert esp_rom.baud_changes, "the transfer baud was negotiated with the ROM"


def test_esp_corrupted_transfer_fails_verification(tmp_path, capsys):
    image = esp_image(payload=bytes(range(256)) * 20)
    (tmp_path / "fw.bin").write_bytes(image)
    with FakeEspRom(corrupt_block=1) as rom:
        assert _flash(rom, tmp_path / "fw.bin") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("flash.py: error: flash MD5")


@pytest.mark.parametrize("make, words", [
    (lambda: b"\x00" + esp_image()[1:], "not an ESP image"),
    (lambda: esp_image(chip_id=9), "ESP32-S3"),
    (lambda: esp_image(chip_id=5), "ESP32-C3"),
    (lambda: b"", "empty"),
])
def test_esp_bad_image_refused_before_connecting(esp_rom, tmp_path, capsys, make, words):
    (tmp_path / "fw.bin").write_bytes(make())
    assert _flash(esp_rom, tmp_path / "fw.bin") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err and "Traceback" not in err
    assert esp_rom.commands == [], "nothing was sent to the board"
    assert set(esp_rom.flash) == {0xA5}


def test_esp_missing_image(esp_rom, tmp_path, capsys):
    assert _flash(esp_rom, tmp_path / "missing.bin") == 2
    assert "does not exist" in capsys.readouterr().err
    assert esp_rom.commands == []


def test_esp_uf2_file_for_esp_board_refused(esp_rom, tmp_path, capsys):
    (tmp_path / "fw.uf2").write_bytes(esp_image())
    assert _flash(esp_rom, tmp_path / "fw.uf2") == 2
    assert "takes .bin" in capsys.readouterr().err
    assert esp_rom.commands == []


def test_esp_no_bootloader_on_port_is_one_line_error(tmp_path, capsys):
    (tmp_path / "fw.bin").write_bytes(esp_image())
    rc = main(["-q", "firmware", "--board", "esp32_devkit", "--image", str(tmp_path / "fw.bin"),
               "--port", str(tmp_path / "no-such-tty"), "--no-stub"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and err.startswith("flash.py: error:")


def test_esp_image_header_chip_id_offset_is_12():
    assert struct.unpack_from("<H", esp_image(chip_id=9), 12)[0] == 9
    assert OP_FLASH_DATA == 0x03
