"""The esptool path end to end: unmodified esptool (as a library, through host/flashing/esp.py)
against the virtual ESP32's ROM loader (host/virtual_board/esp_rom), over its RFC 2217 port
(DTR/RTS reset, `--port virtual`) or its pty with the board put in download mode by hand."""

from __future__ import annotations

import struct

import pytest

from host.flash import main
from tests.fakes.images import esp_image

OFFSET = 0x1000  # boards/esp32_devkit/board.json flash.offset


@pytest.fixture
def esp32(vboard_factory):
    """A virtual board on the esp32 profile whose flash is all 0xA5 (an old image, not erased)."""
    board = vboard_factory(profile="esp32")
    board.wait_boot(1)
    board.esp32.flash.fill(0xA5)
    return board


def _flash(port, image_path, *extra):
    return main(["-q", "firmware", "--board", "esp32_devkit", "--image", str(image_path), "--port", port, *extra])


@pytest.mark.slow
def test_esp_flash_writes_image_at_board_offset_and_boots_micropython(esp32, tmp_path):
    image = esp_image(payload=bytes(range(256)) * 40)
    (tmp_path / "fw.bin").write_bytes(image)
    assert _flash("virtual", tmp_path / "fw.bin") == 0
    flash = esp32.esp32.flash
    assert flash.read(OFFSET, len(image)) == image
    assert flash.read(0, 1) == b"\xa5", "nothing below the offset is touched without --erase"
    assert esp32.wait_boot(2, timeout=5).cause == 1, "the RTS pulse after verifying rebooted MicroPython"
    assert not esp32.esp32.in_download_mode


def test_esp_flash_with_erase_and_baud_change_from_download_mode(esp32, tmp_path):
    """A board without auto-reset (the pty has no DTR/RTS): BOOT held while tapping EN first."""
    image = esp_image()
    (tmp_path / "fw.bin").write_bytes(image)
    esp32.esp32.enter_download_mode()
    assert _flash(esp32.port, tmp_path / "fw.bin", "--no-stub", "--baud", "230400", "--erase") == 0
    flash = esp32.esp32.flash
    assert flash.read(OFFSET, len(image)) == image
    assert flash.read(0, 1) == b"\xff" and flash.read(flash.size - 1, 1) == b"\xff", "--erase cleared the chip"
    assert esp32.esp32.last_loader.baud_changes == [230400], "the transfer baud was negotiated with the ROM"


def test_esp_corrupted_transfer_fails_verification(esp32, tmp_path, capsys):
    image = esp_image(payload=bytes(range(256)) * 20)
    (tmp_path / "fw.bin").write_bytes(image)
    esp32.esp32.corrupt_block = 0  # flaky flash: the block is acknowledged, stored wrong
    esp32.esp32.enter_download_mode()
    assert _flash(esp32.port, tmp_path / "fw.bin", "--no-stub", "--baud", "115200") == 1
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("flash.py: error:")]
    assert len(errors) == 1 and errors[0].startswith("flash.py: error: flash MD5") and "Traceback" not in err


@pytest.mark.parametrize("make, words", [
    (lambda: b"\x00" + esp_image()[1:], "not an ESP image"),
    (lambda: esp_image(chip_id=9), "ESP32-S3"),
    (lambda: esp_image(chip_id=5), "ESP32-C3"),
    (lambda: b"", "empty"),
])
def test_esp_bad_image_refused_before_connecting(esp32, tmp_path, capsys, make, words):
    (tmp_path / "fw.bin").write_bytes(make())
    assert _flash("virtual", tmp_path / "fw.bin") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err and "Traceback" not in err
    assert esp32.esp32.last_loader is None, "nothing was sent to the board (it never left MicroPython)"
    assert esp32.esp32.flash.read(0, esp32.esp32.flash.size) == b"\xa5" * esp32.esp32.flash.size
    assert len(esp32.boots) == 1


def test_esp_missing_image(esp32, tmp_path, capsys):
    assert _flash("virtual", tmp_path / "missing.bin") == 2
    assert "does not exist" in capsys.readouterr().err
    assert esp32.esp32.last_loader is None


def test_esp_uf2_file_for_esp_board_refused(esp32, tmp_path, capsys):
    (tmp_path / "fw.uf2").write_bytes(esp_image())
    assert _flash("virtual", tmp_path / "fw.uf2") == 2
    assert "takes .bin" in capsys.readouterr().err
    assert esp32.esp32.last_loader is None


def test_esp_no_bootloader_on_port_is_one_line_error(tmp_path, capsys):
    (tmp_path / "fw.bin").write_bytes(esp_image())
    rc = main(["-q", "firmware", "--board", "esp32_devkit", "--image", str(tmp_path / "fw.bin"),
               "--port", str(tmp_path / "no-such-tty"), "--no-stub"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and err.startswith("flash.py: error:")


def test_esp_image_header_chip_id_offset_is_12():
    assert struct.unpack_from("<H", esp_image(chip_id=9), 12)[0] == 9
