"""No process outlives its board: the VM dies with its runner however the runner ends, and a VM
started from a short-lived thread does not die with that thread (host/virtual_board/vmproc.py)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.virtual_board


def children(pid: int) -> set[int]:
    out: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out |= {int(c) for c in (task / "children").read_text().split()}
        except OSError:
            pass
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_gone(pid: int, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not alive(pid):
            return True
        time.sleep(0.02)
    return False


def test_sigkill_of_the_runner_leaves_no_vm(tool_env, tmp_path):
    runner = subprocess.Popen([sys.executable, "-m", "host.virtual_board", "--dir", str(tmp_path / "b"),
                               "--name", "lifetime"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True, env=tool_env)
    vms: set[int] = set()
    try:
        assert runner.stdout.readline().strip().startswith("/dev/")
        end = time.monotonic() + 10
        while not vms and time.monotonic() < end:
            vms = children(runner.pid)
            time.sleep(0.05)
        assert vms, "the runner started no VM"
        runner.send_signal(signal.SIGKILL)
        runner.wait(timeout=10)
        left = [pid for pid in vms if not wait_gone(pid)]
        assert not left, f"VM processes {left} outlived their runner"
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
        for pid in vms:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_vm_started_from_a_passing_thread_outlives_that_thread(vboard):
    boots = len(vboard.boots)
    t = threading.Thread(target=vboard.release_reset)  # as the esp32 auto-reset's RFC 2217 thread does
    t.start()
    t.join()
    pid = vboard.wait_boot(boots + 1).pid
    time.sleep(0.5)
    assert alive(pid) and vboard.pid == pid
    vboard.stop()
    assert wait_gone(pid)
