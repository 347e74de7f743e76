"""Bit errors on the link (virtual board or emulated RP2040, for a spell of the board's own time):
every corrupted frame is caught by its CRC (or COBS framing) and counted, nothing corrupted is ever
decoded (every value stays in physical range), every host gap is explained by a corrupt segment,
and the stream carries on."""
from __future__ import annotations

import pytest

from host.hil import checks

pytestmark = [pytest.mark.virtual_board, pytest.mark.fault_injection]

BIT_ERROR_RATE = 1e-3      # per byte: ~4 flipped bits per second at the default rates
ERRORS_S = 3.0


def test_bit_errors_are_counted_never_decoded_and_the_stream_continues(dut, traffic, virtual_board):
    traffic.collect(0.3)
    dut.note(f"fault: bit error rate {BIT_ERROR_RATE} for {ERRORS_S} s")
    virtual_board.set_bit_error_rate(BIT_ERROR_RATE)
    traffic.wait(ERRORS_S)
    virtual_board.set_bit_error_rate(0.0)
    traffic.stop_streams()  # the STATUS after it settles every seq the fault touched
    traffic.status()
    flipped = virtual_board.link.stats.bits_flipped
    s = traffic.stats
    print(f"bits flipped {flipped}: crc {s.crc_errors}, framing {s.framing_errors}, invalid {s.invalid_frames}, "
          f"text {s.text_bytes} B, gaps {s.missing}, frames ok {s.frames_ok}")
    assert flipped > 0
    assert s.crc_errors + s.framing_errors > 0, "corrupted frames were counted"
    assert s.invalid_frames == 0, "a corrupted frame passed the CRC"
    # nothing mis-decoded: every frame that was accepted is a valid frame with values in range
    for f in traffic.frames("DATA"):
        info = traffic.streams[f.stream]
        assert checks.out_of_range(info, traffic.physical(f), f" seq {f.seq}") == []
    # every lost frame is explained by a corrupt segment; none dropped on the device
    led = traffic.ledger()
    assert led.total.dropped_device == 0, led.total.line()
    assert led.verdict != "fail" and not led.total.not_reported, [led.total.line(), *led.total.reasons]
    # the stream carries on: clean again after the fault, nothing more lost in transit (a gap
    # now may only be a frame the device skipped and counted, if a busy host held its loop up)
    lost_then = led.total.lost_link
    traffic.start_streams()
    clean_from = traffic.mark()
    traffic.collect(1.0)
    assert traffic.frames("DATA", since=clean_from)
    traffic.stop_streams()
    traffic.status()
    after = traffic.ledger()
    assert after.verdict == "ok" and after.total.lost_link == lost_then, after.total.line()
    assert after.total.dropped_device == after.total.not_reported == 0, after.total.line()
    assert traffic.boot_id == dut.boot_id
