"""The real, unmodified mpremote CLI drives the virtual board as it drives a board on USB."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.virtual_board
MPREMOTE = [sys.executable, "-m", "mpremote"]


def mpremote(port: str, *args: str, timeout: float = 30) -> str:
    r = subprocess.run([*MPREMOTE, "connect", port, *args], capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"mpremote {' '.join(args)} failed ({r.returncode}): {r.stderr or r.stdout}"
    return r.stdout


def test_exec_scans_the_three_chips(vboard):
    out = mpremote(vboard.port, "exec", "import machine; print(machine.I2C(0).scan())")
    assert out.strip() == "[68, 104, 118]"


def test_fs_copy_in_and_out_and_list(vboard, tmp_path):
    src = tmp_path / "data.bin"
    src.write_bytes(bytes(range(256)) * 40)
    mpremote(vboard.port, "fs", "cp", str(src), ":data.bin")
    assert (vboard.fs / "data.bin").read_bytes() == src.read_bytes()
    listing = mpremote(vboard.port, "fs", "ls")
    assert "10240 data.bin" in listing  # the size, from the board's littlefs volume
    back = tmp_path / "back.bin"
    mpremote(vboard.port, "fs", "cp", ":data.bin", str(back))
    assert back.read_bytes() == src.read_bytes()


def test_run_a_local_script(vboard, tmp_path):
    script = tmp_path / "hello.py"
    script.write_text("import machine\nprint('sum', sum(range(10)), len(machine.unique_id()))\n")
    assert mpremote(vboard.port, "run", str(script)).strip() == "sum 45 8"


def test_soft_reset_reboots_like_a_board(vboard):
    n = len(vboard.boots)
    mpremote(vboard.port, "soft-reset")
    assert len(vboard.boots) > n
    assert vboard.boots[-1].cause == 5
    # the board is usable afterwards, in the same state a real one would be
    assert mpremote(vboard.port, "exec", "print(1 + 1)").strip() == "2"


def test_reset_is_a_hard_reset(vboard):
    n = len(vboard.boots)
    mpremote(vboard.port, "reset")  # mpremote soft-resets on connect, then machine.reset()
    vboard.wait_boot(n + 2)
    assert [b.cause for b in vboard.boots[n:]] == [5, 2]


def test_mpremote_takes_over_a_board_running_main(vboard):
    (vboard.fs / "main.py").write_text("import time\nwhile True:\n    time.sleep_ms(5)\n")
    vboard.power_cycle()
    vboard.wait_boot(2)
    assert mpremote(vboard.port, "exec", "print('took over')").strip() == "took over"


def test_port_virtual_resolves_through_the_registry(vboard, pagerless_home):
    link = Path(pagerless_home) / "virtual"
    assert link.resolve() == Path(vboard.port).resolve()
    assert mpremote(str(link), "exec", "print(3 * 3)").strip() == "9"
