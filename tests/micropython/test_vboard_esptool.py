"""The esptool CLI, unmodified and as a subprocess, against a virtual board on the esp32 profile.

Two ways in, as on a real DevKitC: the RFC 2217 URL the board advertises, where esptool resets the
chip into the ROM loader with DTR/RTS and its final RTS pulse boots MicroPython again; and the
plain pty (no modem lines) after "holding BOOT while tapping EN", with `--before no-reset`.
Over RFC 2217 every esptool command costs ~0.2 s (pyserial's client renegotiates the port at each
timeout change), so the slow path is used where the reset is the point.
"""
from __future__ import annotations

import subprocess
import sys

import pytest

from host.virtual_board.board import VirtualBoard
from tests.conftest import run_on_board
from tests.fakes.images import esp_image

pytestmark = [pytest.mark.virtual_board, pytest.mark.slow]


@pytest.fixture
def esp32(vboard_factory):
    board = vboard_factory(profile="esp32")
    board.wait_boot(1)
    return board


def esptool(port: str, *args: str, env=None) -> str:
    r = subprocess.run([sys.executable, "-m", "esptool", "--port", port, *args],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, f"esptool {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}"
    return r.stdout


def in_download_mode(board, *args: str, env=None) -> str:
    """esptool on the pty of a board put into download mode by hand, leaving it there."""
    if not board.esp32.in_download_mode:
        board.esp32.enter_download_mode()
    return esptool(board.port, "--before", "no-reset", "--after", "no-reset", *args, env=env)


def test_esptool_resets_into_the_rom_and_identifies_an_esp32(esp32, tool_env):
    out = esptool(esp32.esp32.url, "chip-id", env=tool_env)
    assert "Detecting chip type... ESP32" in out and "Crystal frequency:  40MHz" in out
    assert f"MAC:                {esp32.unique_id.hex(':')}" in out
    assert esp32.wait_boot(2, timeout=5).cause == 1, "esptool's RTS pulse booted MicroPython again"
    assert not esp32.esp32.in_download_mode
    printed = run_on_board(esp32.port, "import machine; print(machine.unique_id().hex())")
    assert printed.strip() == esp32.unique_id.hex(), "machine.unique_id() is the MAC the ROM reports"


def test_esptool_read_mac_flash_id_erase_from_download_mode(esp32, tool_env):
    assert f"MAC:                {esp32.unique_id.hex(':')}" in in_download_mode(esp32, "read-mac", env=tool_env)
    out = in_download_mode(esp32, "flash-id", env=tool_env)
    assert "Manufacturer: ef" in out and "Device: 4016" in out and "Detected flash size: 4MB" in out
    esp32.esp32.flash.fill(0x5A)
    in_download_mode(esp32, "erase-flash", env=tool_env)
    assert esp32.esp32.flash.read(0, esp32.esp32.flash.size) == b"\xff" * esp32.esp32.flash.size
    assert len(esp32.boots) == 1, "MicroPython stayed stopped while the ROM loader had the port"


def test_esptool_write_flash_then_the_image_persists(esp32, tool_env, tmp_path):
    image = esp_image(payload=bytes(range(256)) * 200)
    (tmp_path / "img.bin").write_bytes(image)
    out = esptool(esp32.esp32.url, "write-flash", "0x1000", str(tmp_path / "img.bin"), env=tool_env)
    assert "Hash of data verified." in out
    assert esp32.wait_boot(2, timeout=5).cause == 1
    assert run_on_board(esp32.port, "print(1 + 1)").strip() == "2", "MicroPython runs again"

    esp32.power_cycle()
    esp32.wait_boot(3)
    esp32.stop()  # the runner goes away; a new one on the same folder has the same flash and MAC
    again = VirtualBoard(esp32.dir, profile="esp32", register=False, link_rate="unlimited").start()
    try:
        assert again.unique_id == esp32.unique_id
        out = in_download_mode(again, "verify-flash", "0x1000", str(tmp_path / "img.bin"), env=tool_env)
        assert "Verification successful" in out
        in_download_mode(again, "read-flash", "0x1000", str(len(image)), str(tmp_path / "back.bin"), env=tool_env)
        assert (tmp_path / "back.bin").read_bytes() == image
    finally:
        again.stop()
