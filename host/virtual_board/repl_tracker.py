"""Which REPL the virtual board's VM is in, read from its output, so that a soft reset is replayed
the way a board does it: a board soft-reset from the raw REPL comes back in the raw REPL, while the
unix port always comes back friendly.  For such a reset the tracker hides the unix port's friendly
banner, enters the raw REPL for it (Ctrl-A) and passes the output on from `raw REPL; CTRL-B to exit`,
so mpremote sees what a board would have sent."""
from __future__ import annotations

from collections.abc import Callable

_RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
_FRIENDLY_MARK = b'Type "help()" for more information.\r\n'


class ReplTracker:
    """`mode` is "friendly" or "raw"; `watch` filters every chunk the VM writes toward the host.
    `to_device` sends bytes to the VM (the Ctrl-A that enters the raw REPL)."""

    def __init__(self, to_device: Callable[[bytes], None]) -> None:
        self.mode = "friendly"
        self._to_device = to_device
        self._tail = b""
        self._swallow = False
        self._banner_seen = self._ctrl_a_sent = False

    def booting(self, raw_after: bool) -> None:
        """The VM starts again; `raw_after`: a soft reset from the raw REPL, to come back there.
        Any other start ends a banner hunt still under way: a reset button pressed while a soft
        reset's VM was between its banner and the raw REPL's would otherwise hide everything the
        new boot writes (it never prints the raw REPL banner the hunt waits for)."""
        self._swallow, self._banner_seen, self._ctrl_a_sent, self._tail = raw_after, False, False, b""
        self.mode = "raw" if raw_after else "friendly"

    def watch(self, data: bytes) -> bytes:
        """Track the REPL from the output; returns what the host is to see of `data`."""
        if self._swallow:
            return self._hide_banner(data)
        tail = (self._tail + data)[-64:]
        if _RAW_BANNER in tail:
            self.mode = "raw"
        elif _FRIENDLY_MARK in tail or tail.endswith(b"\r\n>>> "):
            self.mode = "friendly"
        self._tail = tail
        return data

    def _hide_banner(self, data: bytes) -> bytes:
        """After a soft reset from the raw REPL: pass boot.py's output, hide the unix port's
        friendly banner, enter the raw REPL for it and pass on from `raw REPL; CTRL-B to exit`."""
        buf, out = self._tail + data, b""
        if not self._banner_seen:
            j = buf.find(b"MicroPython ")
            if j < 0:
                keep = len(b"MicroPython ") - 1  # a banner may be split across reads
                self._tail = buf[-keep:]
                return buf[:-keep]
            self._banner_seen = True
            out, buf = buf[:j], buf[j:]
        if not self._ctrl_a_sent and b">>> " in buf:
            self._ctrl_a_sent = True
            self._to_device(b"\x01")
        i = buf.find(_RAW_BANNER)
        if i < 0:
            self._tail = buf[-64:]
            return out
        self._swallow = False
        self._tail = b""
        self.mode = "raw"
        return out + buf[i:]
