"""Stand-ins for host.device.link.Link in the monitor's unit tests: what a LiveFeed reads from and
writes to, with no port behind it."""
from __future__ import annotations

import queue

from host.device.link import LinkEvent

T0 = 1_700_000_000.0


class PushLink:
    """A link the test feeds chunk by chunk; records writes."""

    def __init__(self) -> None:
        self.chunks: queue.Queue[bytes] = queue.Queue()
        self.written: list[bytes] = []
        self.connected = True
        self.path = "fake://board"
        self._events = [LinkEvent("connected", self.path, T0)]

    def read(self, max_wait: float = 0.05) -> bytes:
        try:
            return self.chunks.get(timeout=max_wait)
        except queue.Empty:
            return b""

    def write(self, data: bytes) -> bool:
        self.written.append(bytes(data))
        return True

    def events(self) -> list:
        out, self._events = self._events, []
        return out

    def close(self) -> None:
        self.connected = False


class FakeLink(PushLink):
    """A link that delivers a byte stream once (in 200-byte chunks), records writes, and can drop out."""

    def __init__(self, data: bytes) -> None:
        super().__init__()
        for i in range(0, len(data), 200):
            self.chunks.put(data[i:i + 200])
