"""Link.read on a real pty (pyserial's POSIX Serial, read through its fd) and on a pyserial URL:
every byte once and in order, large reads, port-gone detection, reconnect, the exclusive lock,
and the recording of every byte through the Reader."""
from __future__ import annotations

import os
import pty
import random
import sys
import threading
import time
import tty
from pathlib import Path

import pytest

from host.device import link as link_mod
from host.device.link import Link, PortBusy, open_serial
from host.device.reader import Reader
from host.device.recording import Kind, Recorder, read_recording

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ptys as serial ports")


@pytest.fixture
def board_pty():
    """(master fd, slave path): a raw pty as a board's CDC port; only Link opens the slave."""
    master, slave = pty.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    os.close(slave)
    state = {"master": master}
    yield state, path
    if state["master"] is not None:
        os.close(state["master"])


def _write_all(fd: int, data: bytes) -> None:
    mv = memoryview(data)
    while mv:
        mv = mv[os.write(fd, mv):]


def _read_until(link: Link, n: int, timeout: float = 10.0) -> tuple[bytes, int]:
    got, reads = bytearray(), 0
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        d = link.read(0.05)
        if d:
            reads += 1
            got += d
    return bytes(got), reads


def test_pty_is_read_through_its_fd_every_byte_in_order(board_pty, monkeypatch) -> None:
    state, path = board_pty
    link = Link(path)
    link.open()
    try:
        port = link._port
        assert link._fd == port.fd  # the direct path is the one taken ...

        def no_pyserial(*a, **k):
            raise AssertionError("pyserial's read used on a POSIX serial device")
        monkeypatch.setattr(port, "read", no_pyserial)  # ... and pyserial's read is never asked
        data = random.Random(3).randbytes(200_000)
        writer = threading.Thread(target=_write_all, args=(state["master"], data))
        writer.start()
        got, reads = _read_until(link, len(data))
        writer.join()
        assert got == data
        assert reads < len(data) / 1000  # whole buffers per read, not byte by byte
        t = time.perf_counter()
        assert link.read(0.05) == b"" and time.perf_counter() - t >= 0.04  # nothing there: waits max_wait
        assert link.write(b"cmd") and os.read(state["master"], 16) == b"cmd"
    finally:
        link.close()


def test_port_gone_then_same_board_under_a_new_name(board_pty) -> None:
    state, path = board_pty
    where = {"path": None}
    link = Link(path, locate=lambda: where["path"], retry_interval=0.0)
    link.open()
    _write_all(state["master"], b"one")
    assert _read_until(link, 3)[0] == b"one"
    master2, slave2 = pty.openpty()  # where the board comes back (opened first: another name)
    tty.setraw(slave2)
    os.close(state["master"])  # the board is unplugged: the slave reads EIO
    state["master"] = None
    deadline = time.monotonic() + 5
    while link.connected and time.monotonic() < deadline:
        assert link.read(0.05) == b""
    assert not link.connected and link.disconnects == 1
    assert link.read(0.001) == b""  # absent: keeps waiting
    where["path"] = os.ttyname(slave2)
    os.close(slave2)
    try:
        link.read(0.001)
        assert link.connected and link._fd is not None
        _write_all(master2, b"two")
        assert _read_until(link, 3)[0] == b"two"
        events = link.events()
        assert [e.event for e in events] == ["connected", "disconnected", "reconnected"]
        assert "waiting for the same board" in events[1].detail and "new port name" in events[2].detail
    finally:
        link.close()
        os.close(master2)
    assert link.read(0.001) == b""  # closed: no reconnect, no error


def test_exclusive_open_still_refuses_a_second_holder(board_pty) -> None:
    _, path = board_pty
    link = Link(path)
    link.open()
    try:
        with pytest.raises(PortBusy):
            open_serial(path, 115200)
    finally:
        link.close()


def test_pyserial_urls_keep_pyserial_read() -> None:
    link = Link("loop://")
    link.open()
    try:
        assert link._fd is None
        assert link.write(b"\x00abc\x00")
        assert _read_until(link, 5)[0] == b"\x00abc\x00"
        assert link.read(0.01) == b""
    finally:
        link.close()


def test_reader_records_every_byte_read_from_a_pty(board_pty, tmp_path: Path) -> None:
    state, path = board_pty
    link = Link(path)
    link.open()
    seen = bytearray()
    r = Reader(link, lambda t, d: seen.extend(d), recorder=Recorder(tmp_path / "r.rec")).start()
    data = random.Random(5).randbytes(300_000)
    _write_all(state["master"], data)
    deadline = time.monotonic() + 10
    while len(seen) < len(data) and time.monotonic() < deadline:
        time.sleep(0.01)
    r.close()
    assert bytes(seen) == data and r.error is None
    records, report = read_recording(tmp_path / "r.rec")
    assert report.clean
    assert b"".join(x.payload for x in records if x.kind == Kind.RX) == data


def test_direct_read_max_is_at_least_a_pty_buffer() -> None:
    assert link_mod.READ_MAX >= 4096
