"""boot.py completes an app install that a deploy committed but a power cut interrupted."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.virtual_board
FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"


def test_committed_install_finishes_at_boot(vboard, board_exec):
    flash = vboard.fs
    for name in ("boot.py", "install.py"):
        (flash / name).copy_from(FIRMWARE / name)
    (flash / "main.py").write_text("print('OLD')\n")
    (flash / "helper.py").write_text("V = 1\n")
    staging = flash / ".staging"
    (staging / "lib").mkdir(parents=True)
    (staging / "helper.py").write_text("V = 2\n")
    (staging / "lib" / "extra.py").write_text("X = 3\n")
    (staging / "main.py").write_text("import helper\nprint('NEW', helper.V)\n")
    # the power went out after the commit list was written and one file was already moved
    (staging / ".commit").write_text("helper.py\nlib/extra.py\nmain.py")
    (staging / "helper.py").rename(flash / "helper.py")
    vboard.power_cycle()
    vboard.wait_boot(2)
    deadline = time.monotonic() + 5
    while staging.exists() and time.monotonic() < deadline:  # boot.py runs in the new VM
        time.sleep(0.02)
    assert (flash / "main.py").read_text().startswith("import helper")
    assert (flash / "lib" / "extra.py").read_text() == "X = 3\n"
    assert not staging.exists()
    assert board_exec(vboard.port, "import helper; print(helper.V)").strip() == "2"


def test_uncommitted_staging_is_left_alone_and_old_app_boots(vboard, board_exec):
    flash = vboard.fs
    for name in ("boot.py", "install.py"):
        (flash / name).copy_from(FIRMWARE / name)
    (flash / "main.py").write_text("X = 'OLD'\n")
    (flash / ".staging").mkdir()
    (flash / ".staging" / "main.py").write_text("X = 'NEW'\n")
    vboard.power_cycle()
    vboard.wait_boot(2)
    assert board_exec(vboard.port, "print(X)").strip() == "OLD"  # main.py ran: boot is over
    assert (flash / ".staging" / "main.py").exists()
