"""Fixtures shared by every test folder: a fresh virtual board per test, registered under a
private PAGERLESS_HOME so `--port virtual` in a subprocess finds it and never a user's board."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from host.virtual_board.board import VirtualBoard

ROOT = Path(__file__).resolve().parents[1]


def pytest_addoption(parser):
    parser.addoption("--rp2-image", default=None, metavar="UF2",
                     help="MicroPython RP2040 UF2 for the emulated-RP2040 tests (default: $PAGERLESS_RP2_UF2)")
    parser.addoption("--seed", type=int, default=None, metavar="N",
                     help="replay one seed of the seeded fault tests (test_ledger_faults, the soak's ledger runs)")


@pytest.fixture
def pagerless_home(tmp_path, monkeypatch):
    home = tmp_path / "pagerless-home"
    home.mkdir()
    monkeypatch.setenv("PAGERLESS_HOME", str(home))
    return home


@pytest.fixture
def vboard_factory(tmp_path, pagerless_home):
    """Make boards with custom options; all are stopped at teardown."""
    boards = []

    def make(name="virtual", **kw):
        kw.setdefault("link_rate", "unlimited")
        b = VirtualBoard(tmp_path / f"board-{name}-{len(boards)}", name=name, **kw)
        boards.append(b)
        return b.start()

    yield make
    for b in boards:
        b.stop()


@pytest.fixture
def vboard(vboard_factory):
    """A powered-on virtual board with an empty flash filesystem (`.port`, `.fs`)."""
    return vboard_factory()


@pytest.fixture
def tool_env(pagerless_home) -> dict:
    """Environment for tools run as subprocesses: the venv's bin first, the repo importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return env


def run_on_board(port: str, code: str, timeout: float = 10.0) -> str:
    """Run code through the raw REPL with mpremote's own transport; return what it printed.
    A device-side exception fails the test with the device's traceback."""
    from mpremote.transport_serial import SerialTransport

    t = SerialTransport(port, baudrate=115200)
    try:
        t.enter_raw_repl(soft_reset=False)
        out, err = t.exec_raw(code, timeout=timeout)
        t.exit_raw_repl()
    finally:
        t.close()
    if err:
        raise AssertionError(f"device raised:\n{err.decode(errors='replace')}")
    return out.decode(errors="replace")


@pytest.fixture
def board_exec():
    return run_on_board
