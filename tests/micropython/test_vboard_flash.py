"""The virtual board's filesystem is a flash volume of its own: nothing the board or mpremote does
reaches the host's files; df, "filesystem full" and persistence behave as on a board."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from host.virtual_board.board import BoardError, VirtualBoard
from host.virtual_board.flash_volume import VOLUMES

pytestmark = [pytest.mark.virtual_board, pytest.mark.timeout(120)]

RP2_BYTES = 1408 * 1024  # MICROPY_HW_FLASH_STORAGE_BYTES of ports/rp2 (Pico)
ESP32_BYTES = 2 * 1024 * 1024  # the "vfs" partition ports/esp32 makes on a 4 MiB module


def mpremote(port: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "mpremote", "connect", port, *args],
                       capture_output=True, text=True, timeout=60)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def boot_with(board, files: dict[str, str]) -> None:
    for name, text in files.items():
        (board.fs / name).parent.mkdir(parents=True, exist_ok=True)
        (board.fs / name).write_text(text)
    n = len(board.boots)
    board.power_cycle()
    board.wait_boot(n + 1)


def test_fs_ls_root_lists_only_the_boards_files(vboard):
    boot_with(vboard, {"main.py": "x = 1\n", "config.json": "{}"})
    listing = mpremote(vboard.port, "fs", "ls", ":/").stdout.split()
    names = {w.rstrip("/") for w in listing if not w.isdigit() and w != "ls" and not w.startswith(":")}
    assert names == {"main.py", "config.json"}


def test_relative_and_absolute_host_paths_do_not_escape(vboard, tmp_path, board_exec):
    src = tmp_path / "payload.txt"
    src.write_text("payload")
    host_target = tmp_path / "written-by-board.txt"
    before = sorted(p.name for p in vboard.dir.parent.iterdir())
    mpremote(vboard.port, "fs", "cp", str(src), ":../x", check=False)
    mpremote(vboard.port, "fs", "cp", str(src), ":../../x", check=False)
    mpremote(vboard.port, "fs", "cp", str(src), ":" + str(host_target), check=False)
    assert not host_target.exists()
    assert sorted(p.name for p in vboard.dir.parent.iterdir()) == before
    assert not (vboard.dir / "x").exists() and not (vboard.dir / "run" / "x").exists()
    out = board_exec(vboard.port, "import os\nprint(os.getcwd(), os.listdir('/'))")
    assert out.split(None, 1)[0] == "/"
    for host_dir in ("/tmp", "/etc", str(tmp_path)):
        probe = f"import os\ntry:\n    os.listdir({host_dir!r})\n    print('LISTED')\nexcept OSError as e:\n    print(e.errno)"
        assert board_exec(vboard.port, probe).strip() == "2"  # ENOENT: no such folder on the board


def test_os_remove_of_a_host_path_leaves_the_host_file(vboard, tmp_path, board_exec):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    code = f"import os\ntry:\n    os.remove({str(victim)!r})\nexcept OSError as e:\n    print(e.errno)"
    assert board_exec(vboard.port, code).strip() == "2"
    assert victim.read_text() == "keep me"


def test_fs_rm_r_root_empties_the_board_and_nothing_else(vboard, tmp_path):
    boot_with(vboard, {"main.py": "x = 1\n", "lib/util.py": "y = 2\n"})
    sentinel = tmp_path / "sentinel.txt"
    sentinel.write_text("host file")
    board_files = sorted(p.name for p in vboard.dir.rglob("*"))
    mpremote(vboard.port, "fs", "rm", "-r", ":/", check=False)
    assert sentinel.read_text() == "host file"
    assert sorted(p.name for p in vboard.dir.rglob("*")) == board_files  # the board folder as it was
    assert list(vboard.fs.iterdir()) == []


@pytest.mark.parametrize("profile,size", [("rp2040", RP2_BYTES), ("esp32", ESP32_BYTES)])
def test_df_and_statvfs_show_the_volume(vboard_factory, board_exec, profile, size):
    b = vboard_factory(profile=profile)
    st = board_exec(b.port, "import os\nprint(*os.statvfs('/'))").split()
    assert int(st[0]) * int(st[2]) == size and int(st[0]) == 4096
    df = mpremote(b.port, "df").stdout
    assert str(size) in df, df
    assert VOLUMES[profile].size == size == b.volume.usage()[0]


def test_writing_past_the_volume_raises_enospc_and_space_comes_back(vboard, board_exec):
    code = ("import os\nbuf = bytes(4096)\nn = 0\nf = open('big', 'wb')\ntry:\n"
            "    while True:\n        f.write(buf)\n        n += 1\n"
            "except OSError as e:\n    print(e.errno, n)\n"
            "full = os.statvfs('/')[3]\nf.close()\nos.remove('big')\nprint(full, os.statvfs('/')[3])")
    first, second = board_exec(vboard.port, code, timeout=60).strip().splitlines()
    errno_, blocks = map(int, first.split())
    assert errno_ == 28  # ENOSPC, as littlefs on a board
    assert 0.9 * RP2_BYTES < blocks * 4096 <= RP2_BYTES
    free_when_full, free_after = map(int, second.split())
    assert free_when_full <= 2 and free_after > 340


def test_files_survive_power_cycles_and_a_new_runner(vboard_factory, board_exec):
    b = vboard_factory()
    board_exec(b.port, "f = open('note.txt', 'w')\nf.write('kept')\nf.close()\nimport os\nos.mkdir('lib')")
    b.power_cycle()
    b.wait_boot(2)
    assert board_exec(b.port, "print(open('note.txt').read())").strip() == "kept"
    b.stop()
    again = VirtualBoard(b.dir, name="again", link_rate="unlimited", register=False).start()
    try:
        assert board_exec(again.port, "import os\nprint(open('note.txt').read(), os.listdir())").strip() \
            == "kept ['lib', 'note.txt']"
    finally:
        again.stop()


def test_host_writes_reach_the_board_at_its_next_boot(vboard, board_exec):
    board_exec(vboard.port, "with open('board.txt', 'w') as f:\n    f.write('from board')")
    (vboard.fs / "host.txt").write_text("from host")
    assert (vboard.fs / "board.txt").read_text() == "from board"  # the host sees the board's writes
    assert (vboard.fs / "host.txt").read_text() == "from host"
    ls = "import os\nprint(sorted(os.listdir()))"
    assert board_exec(vboard.port, ls).strip() == "['board.txt']"  # not under the running VM's feet
    vboard.reset()
    vboard.wait_boot(2)
    assert board_exec(vboard.port, ls).strip() == "['board.txt', 'host.txt']"


def test_file_reads_allocate_nothing_in_the_block_device(vboard, board_exec):
    (vboard.fs / "data.bin").write_bytes(bytes(range(256)) * 64)
    vboard.power_cycle()
    vboard.wait_boot(2)
    code = ("import micropython\nbuf = bytearray(512)\nf = open('data.bin', 'rb')\nn = 0\n"
            "micropython.heap_lock()\ntry:\n    while f.readinto(buf):\n        n += 1\n"
            "finally:\n    micropython.heap_unlock()\nf.close()\nprint(n, buf[511])")
    assert board_exec(vboard.port, code).strip() == "32 255"


def test_an_old_flash_folder_moves_into_the_volume(vboard_factory, tmp_path, board_exec):
    old = tmp_path / "board-old-0" / "flash"
    (old / "lib").mkdir(parents=True)
    (old / "main.py").write_text("print('old app')\n")
    (old / "lib" / "util.py").write_text("V = 3\n")
    b = vboard_factory(name="old")
    assert b.dir == old.parent
    assert board_exec(b.port, "import util\nprint(util.V, open('main.py').read().strip())").strip() \
        == "3 print('old app')"
    assert not old.exists() and (old.parent / "flash.migrated" / "main.py").exists()


def test_a_volume_of_another_profile_is_refused(vboard_factory):
    b = vboard_factory(profile="rp2040")
    b.stop()
    with pytest.raises(BoardError, match="profile"):
        VirtualBoard(b.dir, profile="esp32", register=False).start()


def test_esp32_first_boot_sets_the_volume_up_as_inisetup_does(vboard_factory, board_exec):
    b = vboard_factory(profile="esp32")
    assert board_exec(b.port, "import os\nprint(os.listdir())").strip() == "['boot.py']"
    assert (b.fs / "boot.py").read_text().startswith("# This file is executed on every boot")
    assert os.path.getsize(b.volume.image) == ESP32_BYTES


def test_the_unix_ports_ways_out_to_the_host_are_gone(vboard, board_exec):
    """No board has os.system/putenv/unsetenv; `uos` is the same module, not the unix built-in."""
    out = board_exec(vboard.port, "import os, uos; print([hasattr(m, n) for m in (os, uos) for n in "
                             "('system', 'putenv', 'unsetenv')], os is uos)")
    assert out.strip() == "[False, False, False, False, False, False] True"


def test_ctrl_c_while_the_board_boots_never_leaves_it_on_the_hosts_filesystem(vboard, board_exec):
    """mpremote opens with Ctrl-C; one that lands while the shims load must not stop the flash
    volume being mounted (the REPL would then write into the runner's folder)."""
    import serial

    for i in range(6):
        n = len(vboard.boots)
        vboard.power_cycle()
        with serial.Serial(vboard.port, timeout=0) as s:
            vboard.wait_boot(n + 1)
            for _ in range(40):  # spaced so the bridge passes each one on (it merges bursts)
                s.write(b"\x03")
                time.sleep(0.012)
        board_exec(vboard.port, f"with open('mark{i}.txt', 'w') as f:\n    f.write('{i}')")
        assert (vboard.fs / f"mark{i}.txt").read_text() == str(i)
    assert not list(vboard.dir.rglob("mark*.txt")), "a board file landed on the host"
