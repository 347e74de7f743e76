"""`python -m host.virtual_board` as a user runs it: port on the first line, faults from a second
shell, one-line errors, and nothing left behind after SIGTERM or Ctrl-C."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.virtual_board
CLI = [sys.executable, "-m", "host.virtual_board"]


def cli(tool_env, *args, timeout=30):
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, env=tool_env)


def test_help_teaches_the_tool(tool_env):
    r = cli(tool_env, "--help")
    assert r.returncode == 0
    for words in ("--profile", "--link", "--scenario", "fault unplug bme280", "mpremote connect"):
        assert words in r.stdout


@pytest.fixture
def running_board(tool_env, tmp_path):
    p = subprocess.Popen([*CLI, "--dir", str(tmp_path / "b"), "--seed", "4"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=tool_env)
    port = p.stdout.readline().strip()
    yield p, port
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=10)


def test_first_line_is_the_port_and_faults_come_from_another_shell(running_board, tool_env, board_exec):
    p, port = running_board
    assert port.startswith("/dev/pts/")
    assert board_exec(port, "import machine; print(machine.I2C(0).scan())").strip() == "[68, 104, 118]"
    assert cli(tool_env, "fault", "unplug", "bme280").returncode == 0
    assert board_exec(port, "import machine; print(machine.I2C(0).scan())").strip() == "[68, 104]"
    status = json.loads(cli(tool_env, "status").stdout)
    assert status["port"] == port and status["boots"] >= 1
    r = cli(tool_env, "fault", "unplug", "no-such-chip")
    assert r.returncode == 2 and r.stderr.startswith("virtual_board: error:") and "Traceback" not in r.stderr


def test_sigterm_stops_the_runner_and_its_vm(running_board):
    p, port = running_board
    vm = None
    home = os.environ.get("PAGERLESS_HOME")
    entry = json.loads(open(os.path.join(home, "virtual.json")).read())
    assert entry["pid"] == p.pid
    out = subprocess.run(["pgrep", "-f", "micropython_run", "-P", str(p.pid)], capture_output=True, text=True)
    vm = int(out.stdout.split()[0])
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=10) == 0
    time.sleep(0.1)
    with pytest.raises(ProcessLookupError):
        os.kill(vm, 0)
    assert not os.path.exists(os.path.join(home, "virtual.json"))


def test_fault_without_a_running_board_is_a_one_line_error(tool_env):
    r = cli(tool_env, "fault", "reset")
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "no virtual board named 'virtual'" in r.stderr


def test_bad_arguments_are_one_line_errors(tool_env, tmp_path):
    r = cli(tool_env, "--link", "fast", "--dir", str(tmp_path / "x"))
    assert r.returncode == 2 and "--link 'fast'" in r.stderr and "Traceback" not in r.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("[[event]]\nat = 1\naction = 'format_disk'\n")
    r = cli(tool_env, "--scenario", str(bad), "--dir", str(tmp_path / "y"))
    assert r.returncode == 2 and "unknown action 'format_disk'" in r.stderr


@pytest.mark.parametrize("args, words", [
    (["--heap", "lots"], "--heap: 'lots' is not a heap size"),
    (["--heap", "1k"], "between 16k and 1024M"),
    (["fault", "set_nack_rate", "mpu6050", "lots"], "rate must be a number, not \"lots\""),
    (["fault", "set_bus_stuck", "maybe"], "stuck must be true or false"),
    (["fault", "unplug"], "missing a required argument: 'which'"),
    (["--seed", "x"], "--seed"),
])
def test_bad_values_are_refused_before_a_board_starts(tool_env, tmp_path, args, words):
    """No port printed, no VM looping on "Invalid command line arguments", no TypeError from the runner."""
    r = cli(tool_env, "--dir", str(tmp_path / "b"), *args, timeout=20)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and words in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert "TypeError" not in r.stderr and not (tmp_path / "b").exists()


def test_help_names_the_tool_as_typed(tool_env):
    from pathlib import Path

    exe = Path(sys.executable).parent / "pagerless-vboard"
    r = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=30, env=tool_env)
    assert r.returncode == 0 and r.stdout.startswith("usage: pagerless-vboard ")
