"""Deploy to the virtual board: first deploy, no-change deploy, and cut-off deploys."""

from __future__ import annotations

from pathlib import Path

import pytest

from host.flashing.deploy import deploy_tree
from host.flash import main
from tests.fakes.deploy_trees import DeployCutOff, app_tree, board_files, cut_at, each_file_old_or_new

pytestmark = [pytest.mark.virtual_board, pytest.mark.timeout(60)]


def test_deploy_first_then_nothing_to_copy(vboard, board_exec):
    tree = app_tree(1)
    first = deploy_tree(vboard.port, tree)
    assert sorted(first.copied) == sorted(tree)
    assert board_files(vboard.fs) == tree
    second = deploy_tree(vboard.port, tree)
    assert second.copied == [] and len(second.unchanged) == len(tree)
    assert "VERSION = 1" in board_exec(vboard.port, "print(open('main.py').read())")


def test_cli_deploy_of_the_real_app(vboard, capsys):
    assert main(["-q", "deploy", "--board", "virtual", "--port", "virtual"]) == 0
    files = board_files(vboard.fs)
    assert "main.py" not in files or files["main.py"].startswith(b"")  # main.py stays .py when present
    assert "board.json" in files and not any(p.endswith(".py") and p not in ("main.py", "boot.py") for p in files)
    assert main(["-q", "deploy", "--board", "virtual", "--port", "virtual"]) == 0


@pytest.mark.fault_injection
def test_deploy_cut_half_way_boots_old_or_new(vboard, board_exec):
    old, new = app_tree(1), app_tree(2)
    deploy_tree(vboard.port, old)
    with pytest.raises(DeployCutOff):
        deploy_tree(vboard.port, new, hook=cut_at("chunk", "lib/blob.bin", occurrence=2))
    assert board_files(vboard.fs) == old
    with pytest.raises(DeployCutOff):
        deploy_tree(vboard.port, new, hook=cut_at("committed"))
    assert each_file_old_or_new(vboard.fs, old, new)
    assert "VERSION = 1" in board_exec(vboard.port, "print(open('main.py').read())")
    result = deploy_tree(vboard.port, new)
    assert result.rolled_forward and board_files(vboard.fs) == new


def test_deploy_port_virtual_needs_no_board_name(vboard, tool_env):
    """The command a newcomer types: `python host/flash.py deploy --port virtual`."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "host/flash.py", "deploy", "--port", "virtual"], capture_output=True,
                       text=True, timeout=120, env=tool_env, cwd=str(Path(__file__).resolve().parents[2]))
    assert r.returncode == 0, r.stderr
    assert (vboard.fs / "main.py").exists() and (vboard.fs / "board.json").exists()
