"""Port discovery: VID/PID guesses, --port auto ambiguity, the virtual board pointer."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import pytest

from host.device import ports
from host.flash import main
from host.errors import BoardNotFound


def _port(device, vid, pid, serial="SN1", description="USB Serial"):
    return SimpleNamespace(device=device, vid=vid, pid=pid, serial_number=serial, description=description)


@pytest.fixture
def fake_comports(monkeypatch):
    entries: list = []
    import serial.tools.list_ports

    monkeypatch.setattr(serial.tools.list_ports, "comports", lambda *a, **k: list(entries))
    return entries


@pytest.fixture
def ports_home(tmp_path, monkeypatch):
    home = tmp_path / "ports-home"
    home.mkdir()
    monkeypatch.setenv("PAGERLESS_HOME", str(home))
    return home


@pytest.mark.parametrize("vid, pid, guess, board", [
    (0x303A, 0x1001, "Espressif native USB", None),
    (0x2E8A, 0x0005, "running MicroPython", "rp2040_pico"),
    (0x2E8A, 0x0003, "BOOTSEL", "rp2040_pico"),
    (0x10C4, 0xEA60, "CP210x", "esp32_devkit"),
    (0x1A86, 0x7523, "CH340", "esp32_devkit"),
    (0x0403, 0x6001, "FTDI", "esp32_devkit"),
    (0x1234, 0x5678, "unknown", None),
])
def test_list_guesses_each_vid_pid(fake_comports, ports_home, vid, pid, guess, board):
    fake_comports.append(_port("/dev/ttyX0", vid, pid, serial="ABC123"))
    fake_comports.append(_port("/dev/ttyS0", None, None, serial=None))  # legacy UART: never listed
    (found,) = ports.list_boards()
    assert found.device == "/dev/ttyX0" and found.serial_number == "ABC123"
    assert found.usb_id == f"{vid:04X}:{pid:04X}" and guess in found.guess
    assert (board in found.boards) if board else found.boards == ()


def test_list_cli_prints_table(fake_comports, ports_home, capsys):
    fake_comports.append(_port("/dev/ttyUSB0", 0x10C4, 0xEA60, serial="0001"))
    fake_comports.append(_port("/dev/ttyACM0", 0x2E8A, 0x0005, serial="E66058"))
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "/dev/ttyUSB0" in out and "10C4:EA60" in out and "0001" in out and "CP210x" in out
    assert "2E8A:0005" in out and "E66058" in out


def test_auto_picks_the_one_matching_board(fake_comports, ports_home):
    fake_comports.append(_port("/dev/ttyUSB0", 0x10C4, 0xEA60))
    fake_comports.append(_port("/dev/ttyACM0", 0x2E8A, 0x0005))
    assert ports.resolve_port("auto", "rp2040_pico") == "/dev/ttyACM0"
    assert ports.resolve_port("auto", "esp32_devkit") == "/dev/ttyUSB0"


def test_auto_ambiguity_lists_candidates(fake_comports, ports_home):
    fake_comports.append(_port("/dev/ttyUSB0", 0x10C4, 0xEA60))
    fake_comports.append(_port("/dev/ttyUSB1", 0x1A86, 0x7523))
    with pytest.raises(BoardNotFound) as exc:
        ports.resolve_port("auto", "esp32_devkit")
    msg = str(exc.value)
    assert "2 ports" in msg and "/dev/ttyUSB0" in msg and "/dev/ttyUSB1" in msg and "\n" not in msg


def test_auto_ambiguity_cli_exit_code(fake_comports, ports_home, tmp_path, capsys):
    fake_comports.append(_port("/dev/ttyUSB0", 0x10C4, 0xEA60))
    fake_comports.append(_port("/dev/ttyUSB1", 0x0403, 0x6015))
    rc = main(["deploy", "--board", "esp32_devkit"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "/dev/ttyUSB0" in err and "/dev/ttyUSB1" in err


def test_auto_nothing_found(fake_comports, ports_home):
    fake_comports.append(_port("/dev/ttyUSB0", 0x10C4, 0xEA60))
    with pytest.raises(BoardNotFound, match="no port looks like board 'rp2040_pico'.*ttyUSB0"):
        ports.resolve_port("auto", "rp2040_pico")


def test_explicit_path_passes_through(fake_comports, ports_home):
    assert ports.resolve_port("/dev/ttyACM7", "rp2040_pico") == "/dev/ttyACM7"


def _advertise(home, port, pid):
    os.symlink(port, home / "virtual")
    (home / "virtual.json").write_text(json.dumps(
        {"port": port, "pid": pid, "board_dir": "/tmp/b", "serial": "vb-1"}))


def test_virtual_board_pointer(fake_comports, ports_home, tmp_path):
    pty_path = tmp_path / "pts-standin"
    pty_path.write_text("")
    _advertise(ports_home, str(pty_path), os.getpid())
    assert ports.resolve_port("virtual", None) == str(pty_path)
    assert ports.resolve_port("auto", "virtual") == str(pty_path)
    (vb,) = ports.list_boards()
    assert vb.guess == "pagerless virtual board" and vb.serial_number == "vb-1"
    assert ports.find_by_serial("vb-1").device == str(pty_path)
    assert ports.find_by_serial("nope") is None


def test_stale_virtual_pointer_is_ignored(fake_comports, ports_home, tmp_path):
    pty_path = tmp_path / "pts-standin"
    pty_path.write_text("")
    _advertise(ports_home, str(pty_path), 2**22 + 12345)  # no such process
    assert ports.read_virtual_board() is None
    with pytest.raises(BoardNotFound, match="no virtual board running"):
        ports.resolve_port("virtual", None)


def test_pagerless_home_env(monkeypatch, tmp_path):
    monkeypatch.setenv("PAGERLESS_HOME", str(tmp_path))
    assert ports.pagerless_home() == tmp_path
    monkeypatch.delenv("PAGERLESS_HOME")
    assert ports.pagerless_home().name == ".pagerless"


def test_which_board_a_port_may_be_comes_from_board_definitions(fake_comports, ports_home, monkeypatch, tmp_path):
    """A board.json's usb ids are the one source: a new board is recognised with no table edited."""
    import json

    from host.device import boards

    src = json.loads((boards.BOARDS_DIR / "rp2040_pico" / "board.json").read_text())
    src.update(name="my_node", usb={"vid": 0x1209, "pid": 0x4242, "vendor": "pid.codes test"})
    (tmp_path / "boards" / "my_node").mkdir(parents=True)
    (tmp_path / "boards" / "my_node" / "board.json").write_text(json.dumps(src))
    monkeypatch.setattr(boards, "BOARDS_DIR", tmp_path / "boards")
    fake_comports.append(_port("/dev/ttyX0", 0x1209, 0x4242, serial="N1"))
    (found,) = ports.list_boards()
    assert found.boards == ("my_node",) and found.guess == "unknown USB serial device"


def test_no_virtual_board_hint_is_a_command_to_type(ports_home):
    with pytest.raises(BoardNotFound) as e:
        ports.resolve_port("virtual", None)
    assert "start one with: pagerless-vboard" in str(e.value) and "DIR" not in str(e.value)
