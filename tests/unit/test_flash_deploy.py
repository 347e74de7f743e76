"""Deploy against the plain MicroPython unix port on a pty (no virtual-board features needed)."""

from __future__ import annotations

import json

import pytest

from host import flash
from host.flashing import api
from host.flashing.deploy import deploy_tree
from host.flashing.deploy_config import ConfigError
from host.flashing.deploy_tree import build_tree
from host.device.boards import load_board
from host.errors import VerificationError
from tests.fakes.deploy_trees import DeployCutOff, app_tree, board_files, cut_at, each_file_old_or_new
from tests.fakes.unix_board import UnixPortBoard

pytestmark = [pytest.mark.micropython, pytest.mark.timeout(60)]


@pytest.fixture
def unix_board(tmp_path):
    board = UnixPortBoard(tmp_path / "flash").start()
    yield board
    board.stop()


def test_first_deploy_copies_everything_then_nothing(unix_board):
    tree = app_tree(1)
    first = deploy_tree(unix_board.port, tree)
    assert sorted(first.copied) == sorted(tree) and first.unchanged == []
    assert board_files(unix_board.flash_dir) == tree
    assert not (unix_board.flash_dir / ".staging").exists()
    second = deploy_tree(unix_board.port, tree)
    assert second.copied == [] and sorted(second.unchanged) == sorted(tree)


def test_only_changed_files_are_copied(unix_board):
    deploy_tree(unix_board.port, app_tree(1))
    tree = dict(app_tree(1), **{"lib/util.py": b"def version():\n    return 99\n"})
    result = deploy_tree(unix_board.port, tree)
    assert result.copied == ["lib/util.py"]
    assert board_files(unix_board.flash_dir) == tree


def test_cut_during_copy_keeps_old_app(unix_board):
    old, new = app_tree(1), app_tree(2)
    deploy_tree(unix_board.port, old)
    with pytest.raises(DeployCutOff):
        deploy_tree(unix_board.port, new, hook=cut_at("chunk", "lib/blob.bin", occurrence=2))
    assert board_files(unix_board.flash_dir) == old, "nothing installed from a half-copied deploy"
    result = deploy_tree(unix_board.port, new)
    assert board_files(unix_board.flash_dir) == new and not result.rolled_forward


def test_cut_after_commit_rolls_forward(unix_board):
    old, new = app_tree(1), app_tree(2)
    deploy_tree(unix_board.port, old)
    with pytest.raises(DeployCutOff):
        deploy_tree(unix_board.port, new, hook=cut_at("committed"))
    assert each_file_old_or_new(unix_board.flash_dir, old, new)
    assert board_files(unix_board.flash_dir)["main.py"] == old["main.py"]
    result = deploy_tree(unix_board.port, new)
    assert result.rolled_forward and result.copied == []
    assert board_files(unix_board.flash_dir) == new


def test_stale_twin_is_removed(unix_board):
    deploy_tree(unix_board.port, {"main.py": b"", "lib/util.py": b"x = 1\n"})
    result = deploy_tree(unix_board.port, {"main.py": b"", "lib/util.mpy": b"M\x06"})
    assert result.removed == ["lib/util.py"]
    assert set(board_files(unix_board.flash_dir)) == {"main.py", "lib/util.mpy"}


def test_staged_mismatch_installs_nothing(unix_board, monkeypatch):
    from host.flashing import deploy as deploy_mod

    old = app_tree(1)
    deploy_tree(unix_board.port, old)
    real_stage = deploy_mod.Deployer.stage

    def corrupting_stage(self, files):
        real_stage(self, files)
        self._run("f=open(S+'/main.py','ab')\nf.write(b'#')\nf.close()\n")

    monkeypatch.setattr(deploy_mod.Deployer, "stage", corrupting_stage)
    with pytest.raises(VerificationError):
        deploy_tree(unix_board.port, app_tree(2))
    assert board_files(unix_board.flash_dir) == old


def test_build_tree_compiles_for_board_arch(tmp_path, pagerless_home):
    fw = tmp_path / "fw"
    (fw / "sensors").mkdir(parents=True)
    (fw / "main.py").write_text("import wire\n")
    (fw / "boot.py").write_text("")
    (fw / "wire.py").write_text("X = 1\n")
    (fw / "sensors" / "a.py").write_text("Y = 2\n")
    cfg = tmp_path / "cfg.json"
    cfg.write_text('{"streams": [{"sensor": "sht31", "period_us": 100000}]}')
    tree = build_tree(load_board("esp32_devkit"), firmware_dir=fw, config=cfg)
    assert set(tree) == {"main.py", "boot.py", "wire.mpy", "sensors/a.mpy", "board.json", "config.json"}
    assert tree["wire.mpy"][:1] == b"M"
    src = build_tree(load_board("esp32_devkit"), firmware_dir=fw, source=True)
    assert "wire.py" in src and "config.json" not in src


def _imu_streams(n, batch=10):
    return [{"name": f"imu{i}", "sensor": "mpu6050", "period_us": 5000, "batch": batch} for i in range(n)]


# What the board would not run as written: refused at deploy, one line naming the file, exit 2
BAD_CONFIGS = {
    "malformed": ("rp2040_pico", b'{"broken": ', "not valid JSON"),
    "list": ("rp2040_pico", b"[1, 2, 3]", "top level is not an object"),
    "wrong_type": ("rp2040_pico", b'{"ring_bytes": "8192"}', "ring_bytes must be an int"),
    "wrong_stream_type": ("rp2040_pico", b'{"streams": [{"sensor": "mpu6050", "period_us": "fast"}]}',
                          "period_us"),
    "unwired_kind": ("rp2040_pico", b'{"streams": [{"sensor": "tmp102", "period_us": 100000}]}', "not wired"),
    # 16 IMU streams of 200 samples: ~450 KB on the 64-bit VM, over the rp2040 profile's 376k
    "over_budget": ("virtual", json.dumps({"streams": _imu_streams(16, 200)}).encode(),
                    "does not fit board virtual's heap"),
    "over_budget_pico": ("rp2040_pico", json.dumps({"streams": _imu_streams(16, 512)}).encode(),
                         "does not fit board rp2040_pico's heap"),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_cli_deploy_refuses_a_config_the_board_would_not_run(unix_board, tmp_path, capsys, case):
    board, data, words = BAD_CONFIGS[case]
    cfg = tmp_path / f"{case}.json"
    cfg.write_bytes(data)
    before = board_files(unix_board.flash_dir)
    code = flash.main(["-q", "deploy", "--board", board, "--port", unix_board.port, "--config", str(cfg)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and str(cfg) in err[0] and words in err[0], err
    assert board_files(unix_board.flash_dir) == before, "nothing installed"


def test_library_deploy_refuses_it_too_before_touching_the_port(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text('{"broken": ')
    with pytest.raises(ConfigError, match="not valid JSON"):
        api.deploy(load_board("virtual"), port="/dev/no-such-port", config=cfg)


@pytest.mark.parametrize("board", ["virtual", "rp2040_pico", "esp32_devkit"])
def test_deploy_accepts_the_shipped_and_hil_configs(board):
    from host.flashing.deploy_config import check_config
    from host.paths import ROOT

    for rel in ("firmware/config.json", "tests/hil/app_config.json"):
        cfg = check_config(load_board(board), (ROOT / rel).read_bytes(), rel)
        assert len(cfg["streams"]) == 4


def test_a_heap_that_grows_is_not_budgeted_at_deploy():
    """ESP32's split heap grows into the IDF heap: board.json says so (heap_grows), so the fixed-pool
    budget that refuses the same config for a board with a fixed heap does not apply there."""
    from host.flashing.deploy_config import check_config

    data = json.dumps({"streams": _imu_streams(6, 100)}).encode()
    with pytest.raises(ConfigError, match="does not fit"):
        check_config(load_board("esp32_devkit"), data, "c.json", heap="112k")
    assert load_board("esp32_devkit").heap_grows and not load_board("rp2040_pico").heap_grows
    assert len(check_config(load_board("esp32_devkit"), data, "c.json")["streams"]) == 6


def test_a_lock_held_for_a_moment_is_waited_out_not_called_busy(unix_board):
    """A port's flock can outlive its owner's close for a moment (a process forked meanwhile holds
    the fd until it execs): the deploy waits it out instead of reporting a busy port."""
    import threading

    import serial

    held = serial.Serial(unix_board.port, exclusive=True)
    threading.Timer(0.4, held.close).start()
    result = deploy_tree(unix_board.port, app_tree(1))
    assert board_files(unix_board.flash_dir) == app_tree(1) and result.copied
