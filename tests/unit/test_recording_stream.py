"""The streaming recording reader: the same records and report as reading the whole file at once, for
every chunk size (a record, a magic or a damaged region straddling a chunk boundary), with a Damage
marker at the very place bytes were skipped."""
from __future__ import annotations

import io
import random
import zlib

import pytest

from host.device import recording as rec
from host.device import recording_format as fmt
from host.device.recording import Damage, Kind, ReadReport, Record, RecordingReader, open_recording


def _reference(data: bytes) -> tuple[list, ReadReport]:
    """The in-memory reader this project had before streaming: parse at pos, else the next offset whose
    magic starts a record that checks out; nothing found means a torn tail."""
    def record_at(pos: int) -> Record | None:
        if pos + rec.REC_HEADER_SIZE > len(data):
            return None
        magic, kind, flags, n, t_ns, crc = fmt.REC_HEADER.unpack_from(data, pos)
        if magic != fmt.RECORD_MAGIC or n > fmt.MAX_PAYLOAD or kind not in fmt.KINDS:
            return None
        start = pos + rec.REC_HEADER_SIZE
        if start + n > len(data):
            return None
        payload = data[start:start + n]
        if zlib.crc32(payload, zlib.crc32(fmt.CRC_PART.pack(kind, flags, n, t_ns))) != crc:
            return None
        return Record(Kind(kind), t_ns, payload, pos)

    rep = ReadReport()
    out: list = []
    pos = rep.intact_end = rec.FILE_HEADER_SIZE
    t_last = 0
    while pos < len(data):
        r = record_at(pos)
        if r is None:
            nxt = pos + 1
            while (nxt := data.find(fmt.MAGIC_BYTES, nxt)) >= 0 and record_at(nxt) is None:
                nxt += 1
            if nxt < 0:
                rep.torn_bytes = len(data) - pos
                out.append(Damage(pos, rep.torn_bytes, t_last, None))
                break
            r = record_at(nxt)
            rep.corrupt.append((pos, nxt - pos))
            out.append(Damage(pos, nxt - pos, t_last, r.t_ns))
            pos = nxt
        rep.records += 1
        out.append(r)
        pos += rec.REC_HEADER_SIZE + len(r.payload)
        rep.intact_end = pos
        t_last = r.t_ns
    return out, rep


def _recording(seed: int, n: int = 40) -> bytes:
    r = random.Random(seed)
    parts = [rec.file_header()]
    for i in range(n):
        size = r.choice((0, 1, 5, 30, 200, 700))
        payload = bytes(r.choice((0x5A, 0xA5, 0x00, r.getrandbits(8))) for _ in range(size))  # magic-rich
        parts.append(rec.encode_record(r.choice(list(Kind)), payload, 1_000 + i))
    return b"".join(parts)


def _damage(data: bytes, seed: int) -> bytes:
    r = random.Random(seed)
    b = bytearray(data)
    for _ in range(r.randint(0, 4)):
        what = r.random()
        at = r.randrange(rec.FILE_HEADER_SIZE, len(b))
        if what < 0.4:
            b[at] ^= 1 << r.randrange(8)
        elif what < 0.7:
            del b[at:at + r.randint(1, 300)]
        else:
            b[at:at] = bytes(r.getrandbits(8) for _ in range(r.randint(1, 50)))
    if r.random() < 0.5:
        del b[len(b) - r.randint(1, 40):]  # torn tail
    return bytes(b)


@pytest.mark.parametrize("seed", range(60))
def test_streaming_matches_the_whole_file_reader_for_every_chunk_size(seed: int) -> None:
    data = _damage(_recording(seed), seed)
    want, want_rep = _reference(data)
    for chunk in (20, 21, 33, 64, 257, 4096, 1 << 20):
        rd = RecordingReader(io.BytesIO(data), chunk_size=chunk)
        got = list(rd)
        assert got == want, chunk
        assert rd.report == want_rep and rd.size == len(data)


def test_damage_markers_sit_where_the_bytes_were_skipped(tmp_path) -> None:
    path = tmp_path / "d.rec"
    with rec.Recorder(path) as w:
        for i in range(5):
            w.rx(bytes([i]) * 100, t_ns=(i + 1) * 10**9)
    data = bytearray(path.read_bytes())
    third = rec.FILE_HEADER_SIZE + 2 * (rec.REC_HEADER_SIZE + 100)
    data[third + 30] ^= 0x01
    path.write_bytes(bytes(data) + b"\x5a\xa5\x00")
    with open_recording(path, chunk_size=64) as rd:
        items = list(rd)
    kinds = [type(x).__name__ for x in items]
    assert kinds == ["Record", "Record", "Damage", "Record", "Record", "Damage"]
    mid, tail = items[2], items[-1]
    assert (mid.offset, mid.nbytes, mid.t_before_ns, mid.t_after_ns) == (third, 120, 2 * 10**9, 4 * 10**9)
    assert not mid.torn and mid.t == 4.0
    assert tail.torn and tail.nbytes == 3 and tail.t == 5.0
    assert rd.report.corrupt == [(third, 120)] and rd.report.torn_bytes == 3


def test_a_long_damaged_region_is_crossed_in_bounded_memory() -> None:
    """Resynchronising over 8 MiB without a magic keeps one chunk, not the region."""
    data = rec.file_header() + rec.encode_record(Kind.RX, b"a", 1) + b"\xff" * (8 << 20) \
        + rec.encode_record(Kind.RX, b"b", 2)
    rd = RecordingReader(io.BytesIO(data), chunk_size=1 << 16)
    peak = 0
    out = []
    for x in rd:
        out.append(x)
        peak = max(peak, len(rd._buf))
    assert [x.payload for x in out if isinstance(x, Record)] == [b"a", b"b"]
    assert isinstance(out[1], Damage) and out[1].nbytes == 8 << 20
    assert peak <= 2 << 16


def test_end_limits_what_is_read(tmp_path) -> None:
    """A file still being appended to reads as it was when `end` was taken."""
    path = tmp_path / "e.rec"
    with rec.Recorder(path) as w:
        w.rx(b"one", t_ns=1)
    size = path.stat().st_size
    with rec.Recorder(path) as w:
        w.rx(b"two", t_ns=2)
    with open_recording(path, end=size) as rd:
        assert [x.payload for x in rd] == [b"one"]
    assert rd.report.clean
