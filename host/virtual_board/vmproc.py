"""The VM process dies with its runner, however the runner ends.

A board's VM is a child process of the runner; a runner killed with SIGKILL (or crashing) runs no
clean-up, and the VM would go on orphaned. Linux's PR_SET_PDEATHSIG makes the kernel send the
child SIGKILL when its parent goes away. The kernel ties it to the parent *thread* that forked the
child, not to the process, so every VM is started from one thread that lives as long as the board
(`Spawner`): a VM started from a short-lived thread (an RFC 2217 client's, a reset request's) would
otherwise be killed when that thread ends.
"""
from __future__ import annotations

import ctypes
import os
import queue
import signal
import threading
from collections.abc import Callable
from typing import TypeVar

PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)
T = TypeVar("T")


def vm_preexec(runner_pid: int) -> None:
    """Run in the child between fork and exec: SIGINT ignored (see vm_launch.py), SIGKILL when the
    forking thread's process ends, and an immediate exit if the runner already died before the
    death signal was armed (the child was then re-parented and would never get it)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != runner_pid:
        os._exit(1)


class Spawner:
    """Runs process-starting calls on one long-lived thread and hands back their results."""

    def __init__(self, name: str = "vboard-spawner") -> None:
        self._jobs: queue.Queue = queue.Queue()
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def call(self, fn: Callable[[], T]) -> T:
        if threading.current_thread() is self._thread:
            return fn()
        if self._closed:
            raise RuntimeError("the board is stopped: no process is started any more")
        done = threading.Event()
        box: list = []
        self._jobs.put((fn, box, done))
        done.wait()
        result, error = box
        if error is not None:
            raise error
        return result

    def close(self) -> None:
        """Ends the thread: call only once the board's processes are gone (their death signal is
        tied to it)."""
        self._closed = True
        self._jobs.put(None)
        self._thread.join(timeout=5)

    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, box, done = job
            try:
                box[:] = [fn(), None]
            except BaseException as exc:  # handed to the caller, which re-raises it
                box[:] = [None, exc]
            done.set()
