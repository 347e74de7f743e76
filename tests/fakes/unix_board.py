"""The MicroPython unix port as a minimal board on a pseudo-terminal (no simulated sensors).

Two ptys bridged by a thread: the VM's stdio is a raw pty (OPOST off), the user opens `port`.
When the VM exits (Ctrl-D in the REPL exits the unix port) the bridge prints
`MPY: soft reboot` and starts a fresh VM in the same folder, as a board's soft reset would.
Used to test deploys before/without the project's virtual board.
"""

from __future__ import annotations

import os
import pty
import select
import shutil
import subprocess
import sys
import threading
import tty
from pathlib import Path


def _micropython() -> str:
    local = Path(sys.executable).with_name("micropython")
    return str(local) if local.exists() else (shutil.which("micropython") or "micropython")


class UnixPortBoard:
    def __init__(self, flash_dir: Path, heap: str = "192k") -> None:
        self.flash_dir = Path(flash_dir)
        self.flash_dir.mkdir(parents=True, exist_ok=True)
        self.heap = heap
        self.boots = 0
        self._user_master, self._user_slave = pty.openpty()
        tty.setraw(self._user_slave)
        tty.setraw(self._user_master)
        self.port = os.ttyname(self._user_slave)
        self._stop_r, self._stop_w = os.pipe()
        self._proc: subprocess.Popen[bytes] | None = None
        self._vm_master = -1
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._bridge, name="unix-board", daemon=True)

    def _spawn(self) -> None:
        master, slave = pty.openpty()
        tty.setraw(slave)  # no echo, no ICANON, no ISIG, no OPOST
        self._proc = subprocess.Popen([_micropython(), "-X", f"heapsize={self.heap}"], stdin=slave, stdout=slave,
                                      stderr=slave, cwd=self.flash_dir, close_fds=True, start_new_session=True)
        os.close(slave)
        self._vm_master = master
        self.boots += 1

    def start(self) -> "UnixPortBoard":
        self._spawn()
        self._thread.start()
        return self

    def stop(self) -> None:
        os.write(self._stop_w, b"x")
        self._thread.join(timeout=3)
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=3)
        for fd in (self._vm_master, self._user_master, self._user_slave, self._stop_r, self._stop_w):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> "UnixPortBoard":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _bridge(self) -> None:
        while True:
            ready, _, _ = select.select([self._user_master, self._vm_master, self._stop_r], [], [], 0.5)
            if self._stop_r in ready:
                return
            if self._user_master in ready:
                try:
                    data = os.read(self._user_master, 65536)
                except OSError:
                    return
                try:
                    os.write(self._vm_master, data)
                except OSError:
                    pass
            if self._vm_master in ready:
                try:
                    data = os.read(self._vm_master, 65536)
                except OSError:
                    data = b""
                if data:
                    os.write(self._user_master, data)
                else:
                    self._reboot()
            elif self._proc is not None and self._proc.poll() is not None:
                self._reboot()

    def _reboot(self) -> None:
        if self._proc is not None:
            try:
                self._proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        try:
            os.close(self._vm_master)
        except OSError:
            pass
        os.write(self._user_master, b"MPY: soft reboot\r\n")
        self._spawn()
