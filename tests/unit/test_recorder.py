"""Recorder: round trip, crash safety under SIGKILL, torn tails and corrupt records."""
from __future__ import annotations

import random
import signal
import struct
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import pytest

from host.device import recording as rec
from host.device.recording import Kind, Recorder, RecordingError, read_recording

ROOT = Path(__file__).resolve().parents[2]


def _payload(i: int, seed: int) -> bytes:
    r = random.Random(seed * 1_000_003 + i)
    return bytes(r.getrandbits(8) for _ in range(r.randint(0, 3000)))


def test_recorder_round_trip_all_kinds(tmp_path: Path) -> None:
    path = tmp_path / "a.pglrec"
    with Recorder(path) as r:
        r.meta({"port": "/dev/pts/9", "baud": 115200}, t_ns=1)
        r.rx(b"\x00hello\x00garbage\r\n", t_ns=2)
        r.tx(b"\x01\x02", t_ns=3)
        r.link("disconnected", "port vanished", t_ns=4)
        r.rx(b"", t_ns=5)
    records, report = read_recording(path)
    assert report.clean and report.records == 5
    assert [x.kind for x in records] == [Kind.META, Kind.RX, Kind.TX, Kind.LINK, Kind.RX]
    assert [x.t_ns for x in records] == [1, 2, 3, 4, 5]
    assert records[0].json() == {"port": "/dev/pts/9", "baud": 115200}
    assert records[1].payload == b"\x00hello\x00garbage\r\n"
    assert records[3].json() == {"event": "disconnected", "detail": "port vanished"}
    assert path.read_bytes().startswith(rec.FILE_MAGIC)


def test_recorder_appends_second_session_to_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "b.pglrec"
    with Recorder(path) as r:
        r.rx(b"one", t_ns=10)
    with Recorder(path) as r:
        r.rx(b"two", t_ns=20)
    records, report = read_recording(path)
    assert report.clean
    assert [x.payload for x in records] == [b"one", b"two"]


def test_recorder_syncs_on_schedule(tmp_path: Path) -> None:
    r = Recorder(tmp_path / "c.pglrec", sync_interval=0.0)
    before = r.syncs
    r.rx(b"x")
    assert r.syncs > before
    r.close()


def test_torn_tail_is_reported_and_cut_on_append(tmp_path: Path) -> None:
    path = tmp_path / "d.pglrec"
    with Recorder(path) as r:
        for i in range(10):
            r.rx(_payload(i, 1), t_ns=i)
    whole = path.read_bytes()
    last = rec.encode_record(Kind.RX, _payload(9, 1), 9)
    for cut in (1, rec.REC_HEADER_SIZE - 1, rec.REC_HEADER_SIZE + 1, len(last) - 1):
        path.write_bytes(whole[: len(whole) - cut])
        records, report = read_recording(path)
        assert len(records) == 9
        assert report.torn_bytes == len(last) - cut
        assert report.intact_end == len(whole) - len(last)
        assert not report.corrupt
    with Recorder(path) as r:
        assert r.repaired is not None and r.repaired.torn_bytes > 0
        r.rx(b"after", t_ns=99)
    records, report = read_recording(path)
    assert report.clean
    assert [x.payload for x in records] == [_payload(i, 1) for i in range(9)] + [b"after"]


def test_corrupt_middle_record_is_detected_and_skipped(tmp_path: Path) -> None:
    path = tmp_path / "e.pglrec"
    payloads = [b"A" * 50, b"B" * 60, b"C" * 70]
    with Recorder(path) as r:
        for i, p in enumerate(payloads):
            r.rx(p, t_ns=i)
    data = bytearray(path.read_bytes())
    second = rec.FILE_HEADER_SIZE + rec.REC_HEADER_SIZE + 50
    data[second + rec.REC_HEADER_SIZE + 5] ^= 0x10  # one bit in the second record's payload
    path.write_bytes(data)
    records, report = read_recording(path)
    assert [x.payload for x in records] == [payloads[0], payloads[2]]
    assert report.corrupt == [(second, rec.REC_HEADER_SIZE + 60)]
    assert report.torn_bytes == 0 and not report.clean


@pytest.mark.parametrize("content, msg", [
    (b"", "not a pagerless recording"),
    (b"PGLSREC", "truncated"),
    (b"hello world, this is not a recording", "bad magic"),
    (struct.pack("<8sHH", rec.FILE_MAGIC, 99, 0) + b"\0\0\0\0", "CRC"),
])
def test_bad_file_header_is_a_recording_error(tmp_path: Path, content: bytes, msg: str) -> None:
    path = tmp_path / "bad.pglrec"
    path.write_bytes(content)
    with pytest.raises(RecordingError, match=msg):
        read_recording(path)


def test_unknown_version_is_refused(tmp_path: Path) -> None:
    head = struct.pack("<8sHH", rec.FILE_MAGIC, 99, 0)
    path = tmp_path / "v99.pglrec"
    path.write_bytes(head + struct.pack("<I", zlib.crc32(head)))
    with pytest.raises(RecordingError, match="version 99"):
        read_recording(path)


def test_missing_recording_is_a_recording_error(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="no such recording"):
        read_recording(tmp_path / "nope.pglrec")


_WRITER = textwrap.dedent("""
    import random, sys, time
    sys.path.insert(0, {root!r})
    from host.device.recording import Recorder
    def payload(i, seed):
        r = random.Random(seed * 1_000_003 + i)
        return bytes(r.getrandbits(8) for _ in range(r.randint(0, 3000)))
    seed = int(sys.argv[2])
    r = Recorder(sys.argv[1], sync_interval=0.01)
    class Split:  # a write that a kill can land in the middle of, as a big write(2) can be
        def __init__(self, f):
            self.f = f; self.closed = False
        def write(self, b):
            h = len(b) // 2
            self.f.write(b[:h]); self.f.flush(); time.sleep(0.0003); self.f.write(b[h:])
        def flush(self): self.f.flush()
        def fileno(self): return self.f.fileno()
        def close(self): self.f.close()
    r._f = Split(r._f)
    syncs = r.syncs
    i = 0
    while True:
        r.rx(payload(i, seed), t_ns=i)
        i += 1
        if r.syncs != syncs:   # everything up to record i is on disk now
            syncs = r.syncs
            sys.stdout.write(f"{{i}}\\n"); sys.stdout.flush()
        if i % 7 == 0:
            time.sleep(0.001)
""")




@pytest.mark.parametrize("seed", range(6))
def test_sigkill_at_random_point_keeps_every_committed_record(tmp_path: Path, seed: int) -> None:
    path = tmp_path / f"crash{seed}.pglrec"
    script = tmp_path / "writer.py"
    script.write_text(_WRITER.format(root=str(ROOT)))
    rnd = random.Random(seed)
    proc = subprocess.Popen([sys.executable, str(script), str(path), str(seed)],
                            stdout=subprocess.PIPE, text=True)
    committed = 0
    try:
        target = rnd.randint(2, 12)  # commits to see before the kill
        deadline = time.monotonic() + 10
        while committed < 1 or target > 0:
            line = proc.stdout.readline()
            assert line, "writer died early"
            committed = int(line)
            target -= 1
            assert time.monotonic() < deadline
        time.sleep(rnd.uniform(0, 0.02))  # land somewhere between syncs
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    records, report = read_recording(path)
    assert len(records) >= committed
    assert not report.corrupt
    for i, r in enumerate(records):
        assert r.t_ns == i and r.payload == _payload(i, seed)
    assert report.intact_end + report.torn_bytes == path.stat().st_size
    # A new session on the same file cuts the torn tail and appends after the last intact record.
    with Recorder(path) as r:
        r.rx(b"resumed", t_ns=-1 & 0xFFFF)
    again, report2 = read_recording(path)
    assert report2.clean
    assert len(again) == len(records) + 1 and again[-1].payload == b"resumed"


class _ScriptedLink:
    """Gives its chunks one per read, then nothing; an event after the first read; writes kept."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = list(chunks)
        self.reads = 0
        self.written: list[bytes] = []
        self.pending: list = []
        self.closed = False

    def read(self, max_wait: float = 0.05) -> bytes:
        self.reads += 1
        if self.reads == 2:
            from host.device.link import LinkEvent
            self.pending.append(LinkEvent("disconnected", "gone", 7.0))
        if self.chunks:
            return self.chunks.pop(0)
        time.sleep(0.005)
        return b""

    def write(self, data: bytes) -> bool:
        self.written.append(data)
        return not self.closed

    def events(self) -> list:
        out, self.pending = self.pending, []
        return out

    def close(self) -> None:
        self.closed = True


def test_reader_hands_on_and_records_every_read_write_and_link_event(tmp_path: Path) -> None:
    from host.device.reader import Reader

    link = _ScriptedLink([b"\x00abc", b"def\x00", b"text\r\n"])
    reads: list[tuple[float, bytes]] = []
    events: list[str] = []
    clock = iter(float(i) for i in range(1, 1000))
    r = Reader(link, lambda t, d: reads.append((t, d)), lambda ev: events.append(ev.event),
               recorder=Recorder(tmp_path / "r.rec"), clock=lambda: next(clock))
    r.meta({"tool": "test"})
    assert r.write(b"\x01cmd")
    r.start()
    deadline = time.monotonic() + 5
    while (len(reads) < 3 or not events) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert r.pause()  # parked: the link may be swapped
    n = link.reads
    time.sleep(0.05)
    assert link.reads == n, "a paused reader does not read"
    r.resume()
    r.close()
    assert link.closed and r.error is None
    assert [d for _, d in reads] == [b"\x00abc", b"def\x00", b"text\r\n"] and events == ["disconnected"]
    records, report = read_recording(tmp_path / "r.rec")
    assert report.clean
    assert [(x.kind, x.payload) for x in records if x.kind in (Kind.RX, Kind.TX)] == [
        (Kind.TX, b"\x01cmd"), (Kind.RX, b"\x00abc"), (Kind.RX, b"def\x00"), (Kind.RX, b"text\r\n")]
    assert [x.json() for x in records if x.kind == Kind.LINK] == [{"event": "disconnected", "detail": "gone"}]
    assert [x.t_ns for x in records if x.kind == Kind.RX] == [int(t * 1e9) for t, _ in reads]


def test_reader_keeps_the_error_that_ended_it() -> None:
    from host.device.reader import Reader

    failures: list[BaseException] = []

    def boom(_t: float, _d: bytes) -> None:
        raise ValueError("consumer bug")

    r = Reader(_ScriptedLink([b"x"]), boom, on_error=failures.append).start()
    deadline = time.monotonic() + 5
    while not failures and time.monotonic() < deadline:
        time.sleep(0.01)
    r.close()
    assert isinstance(r.error, ValueError) and failures == [r.error]
