"""The analog stream read from the RP2040's ADC through a DMA ring (firmware/adcring.py), on the
official UF2 on the emulated RP2040: the converter runs free at 20 kHz (``sample_us`` 50), the
DMA moves each result into the ring without the CPU, and the stream takes each 200-sample frame
from the ring in one copy, beside the other three streams, under heap_lock.

Proved end to end against the converter itself: the host logs every value the emulated ADC
converts (the simulated chip's ``read_u16``), and every sample the host decodes must be the next
conversion in that log: nothing skipped, repeated or reordered between the first delivered sample
and the last, and no slot marked missing (the ring starts before the stream's first deadline).  The free heap stays
flat under the lock (the device's own figures), and the stream delivers its rate in device time
(frames' first deadlines one batch of periods apart).

And overloaded: at 250 kHz (``sample_us`` 4, 1 MB/s of 500-sample frames) the emulated USB's CPU
cost (~2.5 emulated us a byte in TinyUSB's task) cannot carry it, so the ring overflows, frames
are marked, skipped and dropped: the run must end under heap_lock without a crash (an
allocation on the restart path once crashed it here) and the host's sample ledger of what
arrived must balance with the device's counters."""
from __future__ import annotations

import json
import re
import time

import pytest

from firmware import wire
from host.monitoring.ledger import Ledger
from host.testkit.erp_app import app_tree, write_flash
from host.testkit.fwboard import FIRMWARE, Reader

pytestmark = pytest.mark.slow

SUMMARY = re.compile(r"PAGERLESS-SUMMARY (\{.*\})\r?\n")
SAMPLE_US = 50
BATCH = 200
PASSES = 240  # ~2.3 emulated s of loop (~96 a0 frames), ~60 s wall at load 1


def _run(rp2_image, tmp_path, erp_factory, cfg, what, on_board=None):
    """Our app with `cfg` from a cold power-on (every cycle emulated) to its summary line; the
    summary and the Reader.  `on_board(board)` runs before the app boots."""
    write_flash(tmp_path / "b", rp2_image, app_tree(cfg))
    board = erp_factory(tmp_path / "b", register=False, fast_forward=False)
    if on_board is not None:
        on_board(board)
    r = Reader(board.port)
    t0 = time.monotonic()
    try:
        while not SUMMARY.search(r.text):
            assert "Traceback" not in r.text, r.text[-1500:]
            crash = next((e.text for e in r.events() if e.code == wire.EV_UNHANDLED_EXCEPTION), None)
            assert crash is None, f"{what}: the app crashed: {crash}"
            assert time.monotonic() - t0 < 840, f"{what}: no summary in 840 s wall"
            time.sleep(0.5)
    finally:
        r.close()
    return json.loads(SUMMARY.search(r.text).group(1)), r


@pytest.mark.timeout(900)
def test_adc_ring_stream_delivers_every_conversion_in_order_under_heap_lock(rp2_image, tmp_path, erp_factory):
    cfg = json.loads((FIRMWARE / "config.json").read_text())
    cfg.update({"heap_lock": True, "max_iterations": PASSES, "watchdog": False})
    for s in cfg["streams"]:
        if s["sensor"] == "mpu6050":  # FIFO bursts at its 5 ms, as in the heap_lock test
            s.setdefault("settings", {}).update({"sample_rate_div": 4})
        if s["sensor"] == "analog":
            s.update({"period_us": SAMPLE_US, "batch": BATCH, "settings": {"sample_us": SAMPLE_US}})
    converted: list[int] = []  # every conversion of ADC0, in order (the emulator's thread appends)

    def log_conversions(board) -> None:
        chip = board.adcs[0]
        read_u16 = chip.read_u16

        def logged() -> int:
            v = read_u16()
            converted.append(v)
            return v

        chip.read_u16 = logged

    summary, r = _run(rp2_image, tmp_path, erp_factory, cfg, "a0 at 20 kHz", log_conversions)
    hello = r.of(wire.T_HELLO)[-1].hello()
    sid = next(s["id"] for s in hello["streams"] if s["name"] == "a0")
    assert next(s for s in hello["streams"] if s["id"] == sid)["config"].get("sample_us") == SAMPLE_US
    frames = [f for f in r.of(wire.T_DATA) if f.stream == sid]
    counts = next(x for x in summary["streams"] if x["id"] == sid)
    print(f"{summary['iterations']} passes, {summary['samples']} samples, busy {summary['busy_us']} us; a0 "
          f"{len(frames)} frames, {counts}; {len(converted)} conversions logged")

    assert summary["heap_locked"] is True
    at_lock, at_end = summary["free_heap_locked"]
    assert at_lock == at_end > 0, f"free heap under the lock: {at_lock} at its start, {at_end} at its end"
    assert summary["overruns"] == 0 and summary["frames_dropped"] == 0 and counts["errors"] == 0
    assert len(frames) >= 40
    seqs = [f.seq for f in frames]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "a0 frames missing or out of order"
    steps = {b.t_us - a.t_us for a, b in zip(frames, frames[1:])}
    assert steps == {BATCH * SAMPLE_US}, f"first deadlines not one batch apart: {sorted(steps)[:5]}"

    delivered: list[int] = []  # samples, in slot order, from the first delivered one
    marked = 0
    for f in frames:
        d = f.data()
        for i in range(d.count):
            if d.is_missing(i):
                marked += 1
                assert not delivered, f"slot {i} of frame {f.seq} marked missing after the stream began"
            else:
                delivered.append(int.from_bytes(d.sample(i), "big"))
    assert marked == counts["missing_overrun"] + counts["missing_sensor"], "marks and the device's counts differ"
    # the stream restarts the ring before its first deadline (stream.Stream.begin): no slot is lost
    assert marked == 0, f"{marked} slots missing"
    head = delivered[:32]
    starts = [j for j in range(len(converted) - len(head) + 1) if converted[j:j + len(head)] == head]
    assert len(starts) == 1, f"the first 32 samples are found {len(starts)} times among the conversions"
    j = starts[0]
    got = converted[j:j + len(delivered)]
    bad = next((k for k, (a, b) in enumerate(zip(delivered, got)) if a != b), None)
    assert bad is None and len(got) == len(delivered), (
        f"sample {bad} of {len(delivered)} is not the next conversion: {delivered[bad - 2:bad + 3]} vs "
        f"{got[bad - 2:bad + 3]}" if bad is not None else "fewer conversions logged than samples delivered")


@pytest.mark.timeout(900)
def test_adc_ring_faster_than_the_link_is_counted_not_crashed(rp2_image, tmp_path, erp_factory):
    cfg = json.loads((FIRMWARE / "config.json").read_text())
    a0 = next(s for s in cfg["streams"] if s["sensor"] == "analog")
    a0.update({"period_us": 4, "batch": 500, "settings": {"sample_us": 4}})
    cfg.update({"streams": [a0], "heap_lock": True, "max_iterations": 100, "watchdog": False})
    summary, r = _run(rp2_image, tmp_path, erp_factory, cfg, "a0 at 250 kHz")
    x = summary["streams"][0]
    print(f"{summary['samples']} samples delivered, {summary['overruns']} overruns, {x}")
    assert summary["heap_locked"] is True
    at_lock, at_end = summary["free_heap_locked"]
    assert at_lock == at_end > 0
    assert summary["overruns"] > 0 and x["missing_overrun"] > 0, "not overloaded: the test proves nothing"
    led = Ledger()
    for f in r.frames:
        led.frame(f)
    led.corrupt(r.dec.stats.corrupt_segments)
    rep = led.report()
    assert rep.verdict == "ok", "\n".join([rep.total.line(), *rep.total.reasons])
