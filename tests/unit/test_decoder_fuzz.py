"""Property tests of host/protocol/decoder.py: arbitrary input never raises, memory stays bounded, and a
frame is only ever returned when it is self-consistent."""

from __future__ import annotations

import struct
import zlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware import wire
from host.protocol.decoder import Decoder, MAX_SEGMENT
from host.protocol.encoder import encode_data, encode_event, encode_hello, encode_status
from host.protocol.frames import DeviceText, Frame, Status, StreamStatus, cobs_decode, cobs_encode

BOOT = 0x5EED5EED
HELLO = {
    "board": "fuzz", "ticks_period": 1 << 30,
    "streams": [{"id": 0, "name": "a", "kind": "analog", "period_us": 100, "batch": 5,
                 "sample_format": "<H", "sample_size": 2, "channels": [["v", "raw"]], "config": {}}],
}
FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _valid_frames():
    out = [encode_hello(BOOT, 0, HELLO)]
    for i in range(6):
        out.append(encode_data(0, BOOT, i, i * 500, 100, bytes(range(i, i + 10)), 2, missing=(i % 5,)))
    out.append(encode_event(BOOT, 0, wire.EV_OVERRUN_BURST, 0, 3, "late"))
    out.append(encode_status(BOOT, 0, Status(1, 2, 3, 4, 5, 1, 0, 0, [StreamStatus(0, True, 0, 6, 0, 0, 0, 6)])))
    return out


VALID = _valid_frames()


def _check_frame(f: Frame, sample_sizes: dict[int, int]) -> None:
    """Whatever the decoder returns must be internally consistent."""
    assert f.raw[0] == 0 and f.raw[-1] == 0
    frame = cobs_decode(f.raw[1:-1])
    assert zlib.crc32(frame[:-4]) == struct.unpack("<I", frame[-4:])[0]
    assert frame[0] == wire.VERSION and f.type in wire.TYPES
    assert frame[wire.HEADER_SIZE : -4] == f.body
    if f.type == wire.T_DATA:
        blk = f.data()
        assert f.count >= 1 and f.sample_size >= 1 and f.period_us > 0
        assert len(blk.missing) == (f.count + 7) // 8
        assert len(blk.samples) == f.count * f.sample_size
        if f.stream in sample_sizes:
            assert f.sample_size == sample_sizes[f.stream]
    else:
        assert f.count == 0 and f.period_us == 0
        if f.type == wire.T_STATUS:
            f.status()
        elif f.type == wire.T_EVENT:
            f.event()
        elif f.type in (wire.T_ACK, wire.T_NACK):
            f.ack()
        elif f.type == wire.T_HELLO:
            assert isinstance(f.hello(), dict)


def _run(dec: Decoder, chunks: list[bytes]) -> list:
    items = []
    for c in chunks:
        items += dec.feed(c)
        assert dec.pending <= dec.max_segment
    return items


def _check_all(dec: Decoder, items: list) -> None:
    sizes = {}
    boot = None
    for x in items:
        assert isinstance(x, (Frame, DeviceText))
        if isinstance(x, Frame):
            if x.boot_id != boot:  # a new session: its layout is unknown until its HELLO
                boot, sizes = x.boot_id, {}
            if x.type == wire.T_HELLO:
                sizes = {s["id"]: s["sample_size"] for s in x.hello()["streams"]}
            _check_frame(x, sizes)
        else:
            assert x.raw and x.text
    s = dec.stats
    assert min(s.crc_errors, s.framing_errors, s.invalid_frames, s.missing, s.duplicates) >= 0


@FUZZ
@given(st.lists(st.binary(max_size=300), max_size=8))
def test_decoder_fuzz_random_bytes_never_raise(chunks):
    dec = Decoder()
    items = _run(dec, chunks)
    _check_all(dec, items)
    assert dec.stats.bytes == sum(map(len, chunks))


@FUZZ
@given(
    st.lists(st.sampled_from(VALID), min_size=1, max_size=6),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6),
    st.integers(1, 64),
)
def test_decoder_fuzz_mutated_frames(frames, mutations, chunk):
    blob = bytearray(encode_hello(BOOT, 0, HELLO) + b"".join(frames))
    for pos, val in mutations:
        blob[pos % len(blob)] = val
    dec = Decoder()
    items = _run(dec, [bytes(blob[i : i + chunk]) for i in range(0, len(blob), chunk)])
    _check_all(dec, items)


@st.composite
def _recrc_mutation(draw):
    """A valid frame mutated *inside* (header or body) with the CRC recomputed: only validation
    beyond the CRC can catch it."""
    base = draw(st.sampled_from(VALID[1:]))
    frame = bytearray(cobs_decode(base[1:-1])[:-4])
    n = draw(st.integers(1, 4))
    for _ in range(n):
        kind = draw(st.sampled_from(["set", "insert", "delete"]))
        pos = draw(st.integers(0, len(frame)))
        if kind == "set" and pos < len(frame):
            frame[pos] = draw(st.integers(0, 255))
        elif kind == "insert":
            frame[pos:pos] = draw(st.binary(min_size=1, max_size=5))
        elif pos < len(frame):
            del frame[pos]
    frame += struct.pack("<I", zlib.crc32(frame))
    return b"\x00" + cobs_encode(bytes(frame)) + b"\x00"


@FUZZ
@given(st.lists(_recrc_mutation(), min_size=1, max_size=4), st.booleans())
def test_decoder_fuzz_recomputed_crc_never_misdecoded(mutants, with_hello):
    dec = Decoder()
    blob = (encode_hello(BOOT, 0, HELLO) if with_hello else b"") + b"".join(mutants)
    items = _run(dec, [blob])
    _check_all(dec, items)
    if with_hello:
        for f in items:
            # session 1 is the one whose HELLO was seen (a mutated boot id starts another)
            if isinstance(f, Frame) and f.type == wire.T_DATA and f.session == 1:
                assert f.stream == 0 and f.sample_size == 2  # lengths as announced


@FUZZ
@given(st.sampled_from(VALID), st.data())
def test_decoder_fuzz_truncations_and_concatenations(frame, data):
    cut = data.draw(st.integers(1, len(frame) - 1))
    dec = Decoder(emit_duplicates=True)
    # a truncated frame followed by a good one: the good one must survive
    items = _run(dec, [frame[:cut], VALID[2]])
    _check_all(dec, items)
    assert any(isinstance(x, Frame) and x.raw == VALID[2] for x in items)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 5), st.integers(0, 255), st.sampled_from([1000, 65536, 200_000]))
def test_decoder_fuzz_huge_length_claims_bounded(reps, fill, size):
    dec = Decoder()
    # claims of huge counts in a valid-CRC frame, and long unterminated non-text runs
    hdr = struct.pack(wire.HEADER_FMT, 1, wire.T_DATA, 0, 0, b"\x01\x02\x03\x04", 0, 0, 1, 0xFFFF)
    fr = hdr + b"\x01\x02"
    fr += struct.pack("<I", zlib.crc32(fr))
    items = dec.feed(b"\x00" + cobs_encode(fr) + b"\x00")
    assert items == [] and dec.stats.invalid_frames == 1
    junk = bytes([fill or 1]) * size
    for _ in range(reps):
        items = dec.feed(b"\x03" + junk)
        assert dec.pending <= MAX_SEGMENT
        _check_all(dec, items)
    items = dec.feed(VALID[1])
    assert any(isinstance(x, Frame) for x in items)
