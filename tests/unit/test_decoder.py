"""host/protocol/decoder.py: resync, device text, chunking independence, sequence/session accounting."""

from __future__ import annotations

import random

import pytest

from firmware import wire
from host.protocol.decoder import Decoder, MAX_SEGMENT
from host.protocol.encoder import encode_command, encode_data, encode_event, encode_frame, encode_hello, encode_status
from host.protocol.frames import DeviceText, Frame, Status, StreamStatus

BOOT = 0x0A0B0C0D
HELLO = {
    "board": "test", "mcu": "sim", "firmware": "0.1", "protocol": 2, "ticks_period": 1 << 30,
    "reset_cause": 1,
    "streams": [
        {"id": 0, "name": "imu", "kind": "mpu6050", "period_us": 1000, "batch": 4,
         "sample_format": ">7h", "sample_size": 14, "channels": [["ax", "raw"]], "config": {}},
        {"id": 1, "name": "env", "kind": "bme280", "period_us": 100000, "batch": 1,
         "sample_format": ">8s", "sample_size": 8, "channels": [], "config": {}},
    ],
}
BANNER = b"MicroPython v1.29.0 on 2026-01-01; Raspberry Pi Pico with RP2040\r\nType \"help()\" for more information.\r\n>>> "
TRACEBACK = (
    b"Traceback (most recent call last):\r\n  File \"main.py\", line 42, in <module>\r\n"
    b"OSError: [Errno 5] EIO\r\n"
)


def data(stream, seq, boot=BOOT, count=4, t0=None, missing=()):
    ss = 14 if stream == 0 else 8
    samples = bytes((seq * 3 + i) & 0xFF for i in range(count * ss))
    return encode_data(stream, boot, seq, t0 if t0 is not None else seq * 4000, 1000, samples, ss, missing)


def status(seq, dropped, boot=BOOT):
    st = Status(1000, 50000, 0, 100, sum(dropped.values()), 1, 0, 0,
                   [StreamStatus(s, True, 0, 0, d, 0, 0, 0) for s, d in sorted(dropped.items())])
    return encode_status(boot, seq, st)


def frames_of(items):
    return [x for x in items if isinstance(x, Frame)]


def text_of(items):
    return "".join(x.text for x in items if isinstance(x, DeviceText))


def session_bytes():
    return b"".join(
        [BANNER, encode_hello(BOOT, 0, HELLO), encode_event(BOOT, 0, wire.EV_BOOT, text="boot")]
        + [data(0, i) for i in range(5)]
        + [data(1, 0), b"debug print\r\n", data(0, 5, missing=(1, 3)), TRACEBACK, b">>> "]
    )


def test_decoder_text_and_frames_separated():
    items = Decoder().feed(session_bytes())
    fr = frames_of(items)
    assert [f.type for f in fr] == [wire.T_HELLO, wire.T_EVENT] + [wire.T_DATA] * 7
    text = text_of(items)
    assert text == (BANNER + b"debug print\r\n" + TRACEBACK + b">>> ").decode()
    assert fr[-1].data().missing_indices() == [1, 3] and fr[-1].sample_size == 14
    assert fr[0].hello()["board"] == "test"
    ev = fr[1].event()
    assert ev.name == "BOOT" and ev.text == "boot"


def test_decoder_prompt_without_delimiter_is_emitted_at_once():
    dec = Decoder()
    dec.feed(encode_hello(BOOT, 0, HELLO))
    items = dec.feed(b"\r\n>>> ")
    assert text_of(items) == "\r\n>>> " and dec.pending == 0
    # a UTF-8 character split over feeds is held back until complete
    assert text_of(dec.feed("°".encode()[:1])) == ""
    assert text_of(dec.feed("°C\n".encode()[1:])) == "°C\n"


def test_decoder_split_feeds_at_every_byte_boundary_identical():
    blob = session_bytes()
    ref = Decoder().feed(blob)
    ref_frames = [f.raw for f in frames_of(ref)]
    ref_text = text_of(ref)
    for cut in range(1, len(blob)):
        dec = Decoder()
        items = dec.feed(blob[:cut]) + dec.feed(blob[cut:])
        assert [f.raw for f in frames_of(items)] == ref_frames, cut
        assert text_of(items) == ref_text, cut
        assert dec.stats.frames_ok == len(ref_frames)
    # and one byte at a time
    dec = Decoder()
    items = []
    for b in blob:
        items += dec.feed(bytes([b]))
    assert [f.raw for f in frames_of(items)] == ref_frames and text_of(items) == ref_text


def test_decoder_resyncs_after_garbage_and_corruption():
    rnd = random.Random(7)
    good = [data(0, i) for i in range(30)]
    blob = bytearray()
    for i, f in enumerate(good):
        if i % 5 == 1:
            blob += bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(1, 60)))  # line noise
        if i % 7 == 3:
            f = bytearray(f)
            f[rnd.randrange(2, len(f) - 2)] ^= 0x10  # bit flip on the link
            f = bytes(f)
        blob += f
    dec = Decoder()
    items = dec.feed(bytes(blob))
    seqs = [f.seq for f in frames_of(items)]
    corrupted = [i for i in range(30) if i % 7 == 3]
    assert set(seqs) >= set(range(30)) - set(corrupted)
    st = dec.stats
    assert st.crc_errors + st.framing_errors + st.invalid_frames >= len(corrupted)
    assert st.missing == len(corrupted)  # every corrupted frame shows up as a gap


def test_decoder_sequence_gaps_wrap_and_duplicates():
    dec = Decoder()
    dec.feed(data(0, 65533))
    items = dec.feed(data(0, 65534) + data(0, 1) + data(0, 1) + data(0, 65535) + data(0, 2))
    # 65534 -> 1 skips 65535 and 0 (2 missing); the repeated 1 and the late 65535 are duplicates
    assert [f.seq for f in frames_of(items)] == [65534, 1, 2]
    assert dec.stats.missing == 2 and dec.stats.missing_by_stream == {0: 2}
    assert dec.stats.duplicates == 2
    # sequences are per (type, stream): another stream has its own counter
    dec.feed(data(1, 100) + data(1, 103))
    assert dec.stats.missing_by_stream == {0: 2, 1: 2}
    dec2 = Decoder(emit_duplicates=True)
    assert len(frames_of(dec2.feed(data(0, 5) + data(0, 5)))) == 2 and dec2.stats.duplicates == 1


def test_decoder_new_boot_id_starts_new_session():
    dec = Decoder()
    dec.feed(encode_hello(BOOT, 0, HELLO) + b"".join(data(0, i) for i in range(10)))
    assert dec.stats.sessions == 1
    items = dec.feed(b"\r\nsoft reboot\r\n" + encode_hello(0x12345678, 0, HELLO) + data(0, 0, boot=0x12345678))
    assert dec.stats.sessions == 2 and dec.boot_id == 0x12345678
    assert dec.stats.missing == 0 and dec.stats.duplicates == 0
    assert [f.session for f in frames_of(items)] == [2, 2]


def test_decoder_length_validated_against_hello():
    dec = Decoder()
    dec.feed(encode_hello(BOOT, 0, HELLO))
    # stream 0 has 14-byte samples; a self-consistent frame with 7-byte samples is rejected
    bad = encode_data(0, BOOT, 1, 0, 1000, bytes(28), 7)
    assert frames_of(dec.feed(bad)) == [] and dec.stats.invalid_frames == 1
    # unknown stream after HELLO
    assert frames_of(dec.feed(encode_data(9, BOOT, 1, 0, 1000, bytes(28), 14))) == []
    # count/period on a non-data frame, unknown type, flags on a non-DATA frame
    assert frames_of(dec.feed(encode_frame(wire.T_EVENT, 255, BOOT, 0, 0, 5, 0, bytes(4)))) == []
    assert frames_of(dec.feed(encode_frame(0x22, 255, BOOT, 0, 0, 0, 0, b""))) == []
    assert frames_of(dec.feed(encode_frame(wire.T_EVENT, 255, BOOT, 0, flags=1, body=bytes(4)))) == []
    assert dec.stats.invalid_frames == 5 and dec.stats.framing_errors == 0 and dec.stats.frames_ok == 1
    # without HELLO the sample size is inferred
    f = frames_of(Decoder().feed(bad))[0]
    assert f.sample_size == 7 and f.data().count == 4


@pytest.mark.parametrize("flags, body, why", [
    (0, bytes(14) + b"\x01", "bitmap without FLAG_MISSING"),
    (1, bytes(14), "FLAG_MISSING without the bitmap"),
    (1, bytes(14) + b"\x02", "non-zero bitmap padding"),
    (1, bytes(14) + b"\x00", "FLAG_MISSING with an empty bitmap"),
    (9, bytes(14) + b"\x01", "unknown DATA flag"),
    (1, bytes(14) + b"\x01", "FLAG_MISSING without a cause flag"),
    (2, bytes(14), "a cause flag without FLAG_MISSING"),
    (6, bytes(14), "cause flags without FLAG_MISSING"),
])
def test_decoder_data_flag_and_length_must_agree(flags, body, why):
    dec = Decoder()
    dec.feed(encode_hello(BOOT, 0, HELLO))
    raw = encode_frame(wire.T_DATA, 0, BOOT, 2, 0, 1000, 1, body, flags=flags)
    assert frames_of(dec.feed(raw)) == [], why
    assert dec.stats.invalid_frames == 1 and dec.stats.framing_errors == 0


def test_decoder_data_layout_and_first_code_byte():
    """Samples first; the bitmap only with FLAG_MISSING.  A flagged frame has no zero in its
    first bytes when the stream id and boot id have none, so its first COBS code byte is >= 8:
    the decoder still takes it as a frame (the next byte is the version) and never as text."""
    boot = 0x04030201
    plain = encode_data(1, boot, 0x0505, 0, 1000, bytes(range(1, 33)), 8)
    flagged = encode_data(1, boot, 0x0506, 8000, 1000, bytes(range(1, 33)), 8, missing=(0, 3))
    assert plain[1] < 0x08 and flagged[1] >= 0x08 and flagged[2] == wire.VERSION
    assert len(flagged) == len(plain) + 1
    dec = Decoder()
    dec.feed(encode_hello(boot, 0, HELLO))
    # byte by byte, with text around: the flagged frame's first byte alone is held, not text
    items = []
    for b in b"log>" + plain + flagged + b"> ok":
        items += dec.feed(bytes([b]))
    fr = frames_of(items)
    assert [f.flags for f in fr] == [0, wire.FLAG_MISSING | wire.FLAG_MISS_SENSOR]
    assert fr[0].data().missing_count() == 0 and fr[1].data().missing_indices() == [0, 3]
    assert fr[0].data().samples == fr[1].data().samples == bytes(range(1, 33))
    assert "".join(t.text for t in items if isinstance(t, DeviceText)) == "log>> ok"
    st = dec.stats
    assert st.frames_ok == 3 and st.framing_errors + st.invalid_frames + st.crc_errors == 0




def test_decoder_status_parsing_keeps_the_raw_device_counts():
    dec = Decoder()
    blob = encode_hello(BOOT, 0, HELLO)
    # the device dropped seq 3 and 4 of stream 0 (ring full); they never hit the wire
    blob += b"".join(data(0, i) for i in (0, 1, 2, 5, 6)) + data(1, 0)
    blob += status(0, {0: 2, 1: 0}) + data(0, 7)
    items = dec.feed(blob)
    st = frames_of(items)[-2].status()
    assert st.uptime_ms == 1000 and [s.frames_dropped for s in st.streams] == [2, 0]
    assert dec.stats.device_dropped == {0: 2, 1: 0} and dec.stats.missing_by_stream == {0: 2}
    # the verdict over these counters is the sample ledger's (tests/unit/test_ledger.py)


def test_decoder_ticks_unwrap():
    dec = Decoder()
    period = 1 << 30
    t = [period - 3000, period - 1000, 500, 2500, 1500]  # wraps; the last one is a bit earlier
    items = frames_of(dec.feed(b"".join(data(0, i, t0=x) for i, x in enumerate(t))))
    assert [f.t_us for f in items] == [period - 3000, period - 1000, period + 500, period + 2500, period + 1500]


def test_decoder_memory_bounded_on_endless_garbage():
    dec = Decoder()
    for _ in range(50):
        dec.feed(b"\x01" * 10000)
        assert dec.pending <= MAX_SEGMENT
    assert dec.stats.oversize == 1
    items = dec.feed(b"\x00" + data(0, 0)[1:])
    assert len(frames_of(items)) == 1


def test_decoder_command_frames_decode_too():
    cmd = encode_command(wire.OP_SET_PERIOD, 77, 0, (5000).to_bytes(4, "little"))
    (f,) = Decoder().feed(cmd)
    c = f.command()
    assert (c.opcode, c.stream, int.from_bytes(c.args, "little"), f.seq) == (3, 0, 5000, 77)


def test_decoder_reconciles_gaps_with_frames_dropped_plus_skipped():
    """Protocol v2: a stream's seq gaps are the frames the output refused (frames_dropped) plus
    the frames an overrun skipped (frames_skipped); the two are separate counters, and the
    decoder's device_dropped (what gaps are reconciled with) is their sum."""
    dec = Decoder()
    blob = encode_hello(BOOT, 0, HELLO) + b"".join(data(0, i) for i in (0, 1, 2, 5, 6))
    st = Status(1000, 50000, 3, 100, 1, 1, 0, 0, [StreamStatus(0, True, 0, 6, 1, 1, 0, 0)])
    items = dec.feed(blob + encode_status(BOOT, 0, st) + data(0, 7))
    s = frames_of(items)[-2].status().streams[0]
    assert (s.frames_dropped, s.frames_skipped, s.frames_lost) == (1, 1, 2)
    assert dec.stats.missing_by_stream == {0: 2} and dec.stats.device_dropped == {0: 2}
