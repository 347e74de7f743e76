"""A port another program holds: every tool says "port is busy", names the holder, one line, exit 2."""
from __future__ import annotations

import os
import pty
import subprocess
import sys
import tty
from pathlib import Path

import pytest

from host import flash, monitor
from host.device import holders
from tests.fakes.images import esp_image, uf2_image

ROOT = Path(__file__).resolve().parents[2]
HOLD = ("import sys, time\nfrom host.device.link import open_serial\n"
        "port = open_serial(sys.argv[1], 115200)\nprint('holding', flush=True)\ntime.sleep(60)\n")

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="names holders through /proc")


@pytest.fixture
def held_pty():
    """A pty slave held open and locked (as a monitor holds it) by a child process."""
    master, slave = pty.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    os.close(slave)  # only the child has the device open
    child = subprocess.Popen([sys.executable, "-c", HOLD, path], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                             env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        assert child.stdout.readline().strip() == "holding"
        yield path, child.pid
    finally:
        child.kill()
        child.wait(10)
        os.close(master)


def _one_busy_line(err: str, path: str, pid: int) -> None:
    assert err.count("\n") == 1, err
    assert f"{path}: port is busy (another monitor or program has it open)" in err
    assert f"(pid {pid})" in err and "python" in err
    assert "failed to access" not in err and "Traceback" not in err


def test_holders_found_by_inode(held_pty) -> None:
    path, pid = held_pty
    assert [h.pid for h in holders.port_holders(path)] == [pid]
    assert holders.probe_busy(path) == holders.busy_message(path)


def test_monitor_names_the_holder(held_pty, capsys) -> None:
    path, pid = held_pty
    assert monitor.main(["--port", path, "--format", "jsonl", "--duration", "0.1"]) == 2
    _one_busy_line(capsys.readouterr().err, path, pid)


def test_flash_deploy_names_the_holder(held_pty, capsys) -> None:
    path, pid = held_pty
    assert flash.main(["deploy", "--board", "virtual", "--port", path, "--source"]) == 2
    _one_busy_line(capsys.readouterr().err, path, pid)


def test_flash_uf2_names_the_holder(held_pty, tmp_path: Path, capsys) -> None:
    path, pid = held_pty
    image = tmp_path / "fw.uf2"
    image.write_bytes(uf2_image())
    assert flash.main(["firmware", "--board", "rp2040_pico", "--image", str(image), "--port", path,
                       "--mount-root", str(tmp_path), "--timeout", "1"]) == 2
    _one_busy_line(capsys.readouterr().err, path, pid)


def test_flash_esptool_names_the_holder(held_pty, tmp_path: Path, capsys) -> None:
    path, pid = held_pty
    image = tmp_path / "fw.bin"
    image.write_bytes(esp_image())
    assert flash.main(["firmware", "--board", "esp32_devkit", "--image", str(image), "--port", path]) == 2
    _one_busy_line(capsys.readouterr().err, path, pid)


def test_free_port_is_not_busy() -> None:
    master, slave = pty.openpty()
    try:
        assert holders.probe_busy(os.ttyname(slave)) is None
    finally:
        os.close(slave)
        os.close(master)
