"""The CLI teaches itself: --help from both entry points, one-line errors, exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from host.flash import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("argv", [["host/flash.py"], ["-m", "host.flash"]])
def test_help_from_both_entry_points(argv):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, *argv, "--help"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    for words in ("list", "firmware", "deploy", "examples:", "exit codes:", "--port virtual"):
        assert words in proc.stdout
    assert "\x1b[" not in proc.stdout, "no colour when stdout is not a terminal"


@pytest.mark.parametrize("sub", ["list", "firmware", "deploy"])
def test_subcommand_help_has_examples(sub, capsys):
    with pytest.raises(SystemExit) as exc:
        main([sub, "--help"])
    assert exc.value.code == 0
    assert "example" in capsys.readouterr().out


def test_usage_error_is_one_line_exit_2(capsys):
    assert main(["firmware", "--board", "esp32_devkit"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("flash.py: error:") and "Traceback" not in err


def test_unknown_board(capsys, tmp_path):
    (tmp_path / "x.bin").write_bytes(b"\xe9")
    assert main(["firmware", "--board", "nope", "--image", str(tmp_path / "x.bin"), "--port", "/dev/null"]) == 2
    err = capsys.readouterr().err
    assert "unknown board 'nope'" in err and "esp32_devkit" in err


def test_virtual_board_has_nothing_to_flash(capsys, tmp_path):
    (tmp_path / "x.bin").write_bytes(b"\xe9" * 64)
    assert main(["firmware", "--board", "virtual", "--image", str(tmp_path / "x.bin"), "--port", "/dev/null"]) == 2
    assert "use deploy" in capsys.readouterr().err


def test_deploy_without_board_needs_port_virtual(capsys):
    assert main(["deploy", "--port", "/dev/ttyACM0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "deploy needs --board" in err


def test_flash_py_is_only_the_cli():
    """The typed library API lives in host.flashing.api; the entry point and the HIL plugin use it."""
    import ast

    from host.flashing import api

    tree = ast.parse((ROOT / "host" / "flash.py").read_text())
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert not defined & {"list_boards", "flash_firmware", "deploy"}, defined
    for name in ("list_boards", "flash_firmware", "deploy"):
        assert getattr(api, name).__module__ == "host.flashing.api"
    target = (ROOT / "host" / "hil" / "target.py").read_text()
    assert "from host import flash\n" not in target and "host.flashing" in target


def test_help_names_the_console_script_as_typed():
    exe = Path(sys.executable).parent / "pagerless-flash"
    proc = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.startswith("usage: pagerless-flash ")
