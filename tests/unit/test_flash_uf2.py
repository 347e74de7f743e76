"""The UF2 path end to end: fake MicroPython REPL -> bootloader -> virtual RPI-RP2 drive -> reboot."""

from __future__ import annotations

import json
import shutil

import pytest

from host.device import boards as board_def
from host.flash import main
from host.errors import BoardNotFound, ImageError
from host.device.mcu import RP2040_FAMILY_ID
from host.flashing.uf2 import enter_bootloader_via_mpremote, flash_uf2
from tests.fakes.images import uf2_image
from tests.fakes.rp2_drive import FakeMicroPythonBoard, FakeRp2Drive

PAYLOAD = bytes(range(256)) * 30


@pytest.fixture
def rp2_board_json(tmp_path, monkeypatch):
    """boards/ copied with the RP2040 UF2 family id forced to the real one (0xE48BFF56)."""
    boards = tmp_path / "boards"
    shutil.copytree(board_def.BOARDS_DIR, boards)
    path = boards / "rp2040_pico" / "board.json"
    board = json.loads(path.read_text())
    board["flash"]["family_id"] = RP2040_FAMILY_ID
    path.write_text(json.dumps(board))
    monkeypatch.setattr(board_def, "BOARDS_DIR", boards)
    return board_def.load_board("rp2040_pico")


def test_rp2040_board_json_has_the_rp2040_family():
    assert board_def.load_board("rp2040_pico").flash.family_id == RP2040_FAMILY_ID


@pytest.fixture
def rp2_rig(tmp_path):
    mounts = tmp_path / "media"
    mounts.mkdir()
    state: dict[str, str] = {}
    drive = FakeRp2Drive(mounts, on_reboot=lambda: state.setdefault("back", "/dev/ttyACM-back"))
    board = FakeMicroPythonBoard(on_bootloader=drive.appear).start()
    yield drive, board, mounts, state
    board.stop()
    drive.stop()


def test_uf2_reboots_into_bootloader_copies_and_waits_for_board(rp2_rig, rp2_board_json):
    drive, board, mounts, state = rp2_rig
    result = flash_uf2(rp2_board_json, uf2_image(PAYLOAD), port=board.port, mount_roots=[mounts],
                       find_port_after=lambda: state.get("back"), drive_timeout=5, reboot_timeout=5)
    assert board.commands == [b"import machine\nmachine.bootloader()"]
    assert bytes(drive.flash[: len(PAYLOAD)]) == PAYLOAD
    assert drive.rejected == [] and drive.reboots == 1 and not drive.path.exists()
    assert result.port_after == "/dev/ttyACM-back" and result.blocks == len(PAYLOAD) // 256


def test_uf2_cli_with_drive_already_mounted(rp2_rig, rp2_board_json, tmp_path):
    drive, _board, mounts, _state = rp2_rig
    drive.appear()
    (tmp_path / "fw.uf2").write_bytes(uf2_image(PAYLOAD))
    rc = main(["-q", "firmware", "--board", "rp2040_pico", "--image", str(tmp_path / "fw.uf2"),
               "--mount-root", str(mounts), "--timeout", "5"])
    assert rc == 0
    assert bytes(drive.flash[: len(PAYLOAD)]) == PAYLOAD and drive.reboots == 1


@pytest.mark.parametrize("mutate, words", [
    (lambda d: d[:512] + b"\0" * 4 + d[516:], "bad magic"),
    (lambda d: uf2_image(PAYLOAD, family=0xE48BFF59), "family"),
    (lambda d: uf2_image(PAYLOAD, base=0x20000000), "outside flash"),
    (lambda d: d[:512] + d[1024:1536] + d[512:1024] + d[1536:], "contiguous"),
    (lambda d: b"", "empty"),
])
def test_uf2_bad_image_nothing_written(rp2_rig, rp2_board_json, tmp_path, capsys, mutate, words):
    drive, board, mounts, _state = rp2_rig
    drive.appear()
    (tmp_path / "fw.uf2").write_bytes(mutate(uf2_image(PAYLOAD)))
    rc = main(["-q", "firmware", "--board", "rp2040_pico", "--image", str(tmp_path / "fw.uf2"),
               "--port", board.port, "--mount-root", str(mounts), "--timeout", "1"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and words in err
    assert drive.written_files() == [] and board.commands == [] and drive.reboots == 0


def test_uf2_without_micropython_explains_bootsel(tmp_path, rp2_board_json):
    with pytest.raises(BoardNotFound, match="BOOTSEL"):
        flash_uf2(rp2_board_json, uf2_image(PAYLOAD), port=None, mount_roots=[tmp_path])


def test_uf2_silent_port_explains_bootsel(tmp_path, rp2_board_json):
    board = FakeMicroPythonBoard()
    board.in_bootloader = True  # answers nothing, like a board running no MicroPython
    board.start()
    try:
        from host.errors import DeviceError
        with pytest.raises(DeviceError, match="BOOTSEL"):
            flash_uf2(rp2_board_json, uf2_image(PAYLOAD), port=board.port, mount_roots=[tmp_path],
                      enter_bootloader=lambda p: enter_bootloader_via_mpremote(p, timeout=0.5))
    finally:
        board.stop()


def test_uf2_drive_never_appears_is_bounded(rp2_board_json, tmp_path):
    board = FakeMicroPythonBoard(on_bootloader=lambda: None).start()
    try:
        with pytest.raises(BoardNotFound, match="did not appear"):
            flash_uf2(rp2_board_json, uf2_image(PAYLOAD), port=board.port, mount_roots=[tmp_path],
                      drive_timeout=0.3)
    finally:
        board.stop()


def test_uf2_family_typo_in_board_json_is_caught(tmp_path, monkeypatch):
    boards = tmp_path / "boards"
    shutil.copytree(board_def.BOARDS_DIR, boards)
    path = boards / "rp2040_pico" / "board.json"
    board = json.loads(path.read_text())
    board["flash"]["family_id"] = 0xE43BFF56
    path.write_text(json.dumps(board))
    monkeypatch.setattr(board_def, "BOARDS_DIR", boards)
    with pytest.raises(ValueError, match="0xe48bff56"):
        board_def.load_board("rp2040_pico")
    assert not isinstance(ImageError("x"), BoardNotFound)
