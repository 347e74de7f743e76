"""The live view as a person sees it: pagerless-monitor in a real terminal (tmux, 160x45) against a
streaming virtual board, its screen captured with `tmux capture-pane`. The key map is in the footer,
the link panel shows its % of line, pressure reads in hPa, and Ctrl-C quits.

Set PAGERLESS_SAVE_SCREEN=PATH to keep the capture (docs/monitor-screen.txt was made so)."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from host.testkit.fwboard import install

pytestmark = [pytest.mark.virtual_board, pytest.mark.slow,
              pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")]
ROOT = Path(__file__).resolve().parents[2]
COLS, ROWS = 160, 45


class Tmux:
    """One detached tmux session on a private server socket (no user's tmux is touched)."""

    def __init__(self, command: list[str], env: dict) -> None:
        self.socket = f"pagerless-test-{uuid.uuid4().hex[:8]}"
        keep = ("PAGERLESS_HOME", "PATH", "PYTHONPATH", "HOME")
        line = "env -i " + " ".join(shlex.quote(f"{k}={env[k]}") for k in keep if k in env) + " TERM=xterm-256color "
        line += " ".join(shlex.quote(c) for c in command) + "; sleep 30"  # keep the pane to read what is left
        self._tmux("new-session", "-d", "-s", "mon", "-x", str(COLS), "-y", str(ROWS), "-c", str(ROOT), line)

    def _tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", *args], capture_output=True,
                              text=True, timeout=20, check=True).stdout

    def capture(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "mon")

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "mon", *keys)

    def pane_command(self) -> str:
        return self._tmux("display-message", "-p", "-t", "mon", "#{pane_current_command}").strip()

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=20)


def _wait_for(tmux: Tmux, test, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = tmux.capture()
        if test(screen):
            return screen
        time.sleep(0.25)
    raise AssertionError(f"screen never showed what was expected:\n{screen}")


def test_live_view_in_a_terminal(vboard, tool_env, tmp_path):
    install(vboard.fs)
    vboard.power_cycle()
    vboard.wait_boot(2)
    tmux = Tmux([sys.executable, "host/monitor.py", "--port", "virtual"], tool_env)
    try:
        every_stream = re.compile(r"rh\s+temperature_c\s+\d+\.\d")  # the slowest stream has a value too
        screen = _wait_for(tmux, lambda s: "hPa" in s and "% of line" in s and every_stream.search(s), 60)
        footer = screen.rstrip().splitlines()[-1]
        for key in ("^c", "quit", "?", "help", "start/stop", "rate", "reboot"):
            assert key in footer, footer
        assert re.search(r"\d+\.\d% of line", screen)
        pressure = re.search(r"(\d+\.\d\d)\s+hPa", screen)
        assert pressure and 300 < float(pressure.group(1)) < 1100, screen
        assert "e+0" not in screen  # no 1.003e+05 Pa
        rows = screen.splitlines()
        assert len(rows) == ROWS and [y for y, r in enumerate(rows) if not r.strip()] == [], screen  # every row used
        if os.environ.get("PAGERLESS_SAVE_SCREEN"):
            Path(os.environ["PAGERLESS_SAVE_SCREEN"]).write_text(
                "\n".join(x.rstrip() for x in screen.rstrip().splitlines()) + "\n")

        tmux.keys("C-c")
        _wait_for(tmux, lambda s: "hPa" not in s, 15)  # the app left the alternate screen
        deadline = time.monotonic() + 15
        while "python" in tmux.pane_command() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "python" not in tmux.pane_command()  # the monitor exited; the shell's sleep holds the pane
    finally:
        tmux.kill()
