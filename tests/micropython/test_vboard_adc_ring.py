"""The virtual board's RP2040 ADC and DMA registers (boards/virtual/shim/_vregs.py, rp2.py).

- firmware/adcring.py, unchanged, on `rp2.DMA` and `machine.mem32`: under seeded random read
  schedules (sleeps, read sizes, a stall long enough for the DMA to lap the ring) every sample
  read is the runner's code for the next conversion of the run (the host logs every block it
  serves, by conversion index), the count of conversions follows the device's own clock
  (48 MHz / (DIV + 1)), a lap is reported as an overflow, and the reads allocate nothing.
- The DMA model as community code sees it: `pack_ctrl`'s defaults and fields as the rp2 port
  packs them, an unpaced memory copy with a wrapping write ring and a chain to a second channel,
  EBUSY past 12 channels, "channel closed", and a one-line error for a register not modelled;
  the ADC's FIFO without DMA: 4 deep, OVER when it fills, UNDER when read empty, write-1-clear.
- The firmware: a0 at 20 kHz (`sample_us` 50) from the ring beside the shipped streams, under
  heap_lock: every delivered a0 sample is the next conversion of its run, heap flat; on a machine
  that keeps up nothing is lost, and on a busy one every loss (a slot marked, a frame dropped, the
  ring restarted after an overflow) is one the device counted.
The failing seed is printed."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from firmware import wire
from host.testkit.fwboard import FIRMWARE, boot

pytestmark = [pytest.mark.virtual_board, pytest.mark.micropython]
MPREMOTE = [sys.executable, "-m", "mpremote"]
ADCRING = FIRMWARE / "adcring.py"


def _log_blocks(board) -> list[dict[int, int]]:
    """Every code the runner serves, per free-running run (a new dict at each START_MANY)."""
    runs: list[dict[int, int]] = []
    start, block = board.adc_start, board.adc_block

    def logged_start(channel, period_q):
        if period_q:
            runs.append({})
        start(channel, period_q)

    def logged_block(channel, first, n):
        data = block(channel, first, n)
        runs[-1].update(zip(range(first, first + n), memoryview(data).cast("H")))
        return data

    board.adc_start, board.adc_block = logged_start, logged_block
    return runs


def _exec(board, *args, timeout=90):
    r = subprocess.run([*MPREMOTE, "connect", board.port, *args], capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0 and "Traceback" not in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]
    return r.stdout


RING_SCRIPT = r"""
import time, random, machine, rp2, uctypes, micropython
from adcring import AdcRing
random.seed(SEED)
ring = AdcRing(machine.ADC(machine.Pin(26)), 0, 1024, rp2.DMA, machine.mem32, uctypes.addressof)
ring.configure(SAMPLE_US)
bufs = [bytearray(2 * n) for n in (1, 9, 50, 128)]
ring.fifo_start()
t0 = time.ticks_us()
out = []
laps = 0
for step in range(150):
    s = random.getrandbits(8)
    if step == 75:
        time.sleep_us(800 * SAMPLE_US)  # the DMA laps the 512-sample ring
    elif s & 1:
        time.sleep_us(s * 4)
    buf = bufs[s % 4]
    micropython.heap_lock()
    try:
        c = ring.fifo_count()
        took = c >= len(buf) and c < ring.ring_bytes
        if took:
            ring.fifo_read_into(buf)
            over = ring.fifo_overflowed()
    finally:
        micropython.heap_unlock()
    if c >= ring.ring_bytes:
        laps += 1
        ring.fifo_start()
        out.append("R")
    elif took:
        out.append(("O" if over else "") + buf.hex())
el = time.ticks_diff(time.ticks_us(), t0)
w = ring.written()
ring.close()
print("RESULT", el, w, laps, " ".join(out))
"""


@pytest.mark.parametrize("seed", range(4))
def test_adcring_reads_every_conversion_of_the_runner_in_order(vboard_factory, seed):
    board = vboard_factory()
    runs = _log_blocks(board)
    _exec(board, "fs", "cp", str(ADCRING), ":adcring.py")
    sample_us = (10, 20, 50, 7)[seed]
    out = _exec(board, "exec", RING_SCRIPT.replace("SEED", str(seed)).replace("SAMPLE_US", str(sample_us)))
    line = next(ln for ln in out.splitlines() if ln.startswith("RESULT"))
    _, el, written, laps, *reads = line.split(" ")
    el, written, laps = int(el), int(written), int(laps)
    assert laps >= 1, f"seed {seed}: the stall did not lap the ring"
    assert len(runs) == laps + 1, f"seed {seed}: {len(runs)} runs for {laps} restarts"
    # the last run's conversions since its start, counted on the device's clock
    assert written <= el / sample_us + 2, f"seed {seed}: {written} conversions in {el} us at {sample_us} us"
    run, k, total = 0, 0, 0
    for r in reads:
        if r == "R":
            run, k = run + 1, 0
            continue
        # "O": the DMA lapped the ring while the VM was away (a busy host) and said so; the model
        # stores conversions only when software looks, so the copy it reported still holds them
        r = r.removeprefix("O")
        codes = [int(r[i:i + 4], 16) for i in range(0, len(r), 4)]
        want = [runs[run][k + j] << 4 | runs[run][k + j] >> 8 for j in range(len(codes))]
        assert codes == want, f"seed {seed}: run {run} samples {k}.. are not the runner's conversions"
        k += len(codes)
        total += len(codes)
    assert total > 300, f"seed {seed}: only {total} samples read: the test proves little"


DMA_SCRIPT = r"""
import rp2, machine, uctypes
d = rp2.DMA()
print("DEFAULT", d.pack_ctrl() == (1 << 21 | 0x3F << 15 | 3 << 4 | 2 << 2 | 1 | d.channel << 11))
print("FIELDS", rp2.DMA.unpack_ctrl(d.pack_ctrl(size=1, ring_size=4, ring_sel=1, treq_sel=36))["treq_sel"])
src = bytearray(range(64))
raw = bytearray(64)
dst = memoryview(raw)[-uctypes.addressof(raw) & 15:][:16]
e = rp2.DMA()
word = bytearray(4)
# d copies src into the 16-byte write ring, then chains to e, which copies the count left (0)
d.config(read=src, write=dst, count=12, ctrl=d.pack_ctrl(size=2, ring_size=4, ring_sel=1, chain_to=e.channel))
e.config(read=0x50000008 + 0x40 * d.channel, write=word, count=1, ctrl=e.pack_ctrl(inc_read=0, inc_write=0))
d.active(1)
print("RING", bytes(dst).hex(), d.count, d.active(), int.from_bytes(word, "little"))
more = [rp2.DMA() for _ in range(10)]
try:
    rp2.DMA()
except OSError as x:
    print("FULL", x.errno)
more[0].close()
try:
    more[0].count
except ValueError as x:
    print("CLOSED", x)
try:
    machine.mem32[0xD0000004]
except ValueError as x:
    print("UNMODELLED", x)
import time
m = machine.mem32
m[0x4004C010] = (48 * 10 - 1) << 8  # DIV: a conversion every 10 us
m[0x4004C008] = 1  # FCS.EN, no DREQ: results wait in the FIFO
m[0x4004C000] = 1 | 8  # CS.EN | START_MANY
time.sleep_ms(5)
m[0x4004C000] = 1  # stop
fcs = m[0x4004C008]
codes = [m[0x4004C00C] for _ in range(4)]
print("FIFO", fcs >> 16 & 0xF, bool(fcs & 0x800), m[0x4004C008] >> 16 & 0xF, all(0 < c < 4096 for c in codes))
m[0x4004C00C]
print("UNDER", bool(m[0x4004C008] & 0x400))
m[0x4004C008] = 1 | 0xC00  # write-1-clear
print("CLEARED", m[0x4004C008] & 0xC00)
"""


def test_dma_model_as_the_rp2_port_behaves(vboard):
    out = _exec(vboard, "exec", DMA_SCRIPT)
    assert "DEFAULT True" in out and "FIELDS 36" in out, out
    # 12 words from 0..47 into a 16-byte ring: the last four words (32..47) stay; chained e read d's count
    assert "RING " + bytes(range(32, 48)).hex() + " 0 False 0" in out, out
    assert "FULL 16" in out and "CLOSED channel closed" in out, out
    assert re.search(r"UNMODELLED virtual board: no register model at 0xd0000004", out), out
    # free-running with no DMA: the 4-deep FIFO fills, OVER is set, reads drain it, then UNDER
    assert "FIFO 4 True 0 True" in out and "UNDER True" in out and "CLEARED 0" in out, out


def test_firmware_a0_from_the_ring_under_heap_lock_delivers_every_conversion(vboard_factory):
    board = vboard_factory(link_rate="usb")
    runs = _log_blocks(board)
    cfg = json.loads((FIRMWARE / "config.json").read_text())
    cfg.update({"heap_lock": True, "max_iterations": 1500, "watchdog": False})  # ~5 s
    a0 = next(s for s in cfg["streams"] if s["sensor"] == "analog")
    a0.update({"period_us": 50, "batch": 200, "settings": {"sample_us": 50}})
    r = boot(board, cfg)
    try:
        r.wait(lambda: "PAGERLESS-SUMMARY" in r.text or any(e.code == wire.EV_UNHANDLED_EXCEPTION for e in r.events()),
               timeout=120, what="the end-of-run summary")
    finally:
        r.close()
    crash = [e.text for e in r.events() if e.code == wire.EV_UNHANDLED_EXCEPTION]
    assert not crash and "Traceback" not in r.text, crash or r.text[-2000:]
    summary = json.loads(re.search(r"PAGERLESS-SUMMARY (\{.*\})", r.text).group(1))
    assert summary["heap_lock"] is True and min(summary["free_heap_locked"]) > 0
    at_lock, at_end = summary["free_heap_locked"]
    assert at_lock == at_end, f"free heap under the lock: {at_lock} at its start, {at_end} at its end"
    hello = r.of(wire.T_HELLO)[-1].hello()
    sid = next(s["id"] for s in hello["streams"] if s["name"] == "a0")
    assert next(s for s in hello["streams"] if s["id"] == sid)["config"].get("sample_us") == 50
    frames = [f for f in r.of(wire.T_DATA) if f.stream == sid]
    assert len(frames) >= 20, f"{len(frames)} a0 frames"
    counts = next(x for x in summary["streams"] if x["id"] == sid)
    # segments: delivered samples with nothing lost between them (split at a slot marked missing
    # and at a frame the device dropped); each must be consecutive conversions of one run, the
    # runs in order (a ring overflow restarts the converter: a new run)
    segments, cur, marked, prev = [], [], 0, None
    for f in frames:
        if prev is not None and f.seq != prev + 1 and cur:
            segments.append(cur)
            cur = []
        prev = f.seq
        d = f.data()
        for i in range(d.count):
            if d.is_missing(i):
                marked += 1
                if cur:
                    segments.append(cur)
                    cur = []
            else:
                cur.append(int.from_bytes(d.sample(i), "big") >> 4)
    segments.append(cur)
    run, k = 0, 0
    for n, seg in enumerate(segments):
        head = seg[:16]
        while run < len(runs):
            seq = runs[run]
            at = next((j for j in range(k, max(seq, default=-1) + 1)
                       if all(seq.get(j + i) == v for i, v in enumerate(head))), None)
            if at is not None:
                break
            run, k = run + 1, 0
        assert run < len(runs), f"segment {n} ({len(seg)} samples) is no run of conversions"
        bad = next((i for i, v in enumerate(seg) if runs[run].get(at + i) != v), None)
        assert bad is None, f"a0 segment {n}: sample {bad} of {len(seg)} is not the next conversion"
        k = at + len(seg)
    dropped = sum(b.seq - a.seq - 1 for a, b in zip(frames, frames[1:]))
    print(f"{len(frames)} a0 frames, {sum(map(len, segments))} samples in {len(segments)} segments, "
          f"{len(runs)} runs, {marked} marked, {dropped} frames dropped; device {counts}, "
          f"overruns {summary['overruns']}")
    # every loss is the device's, counted: marks, dropped frames, a restart per counted overrun
    assert marked == counts["missing_overrun"] + counts["missing_sensor"], "marks and the device's counts differ"
    assert dropped == counts["dropped"] + counts["skipped"], "frame gaps and the device's counts differ"
    assert len(runs) - 1 <= summary["overruns"], "a restart of the ring the device did not count"
    if not summary["overruns"] and not dropped:  # a machine that kept up: nothing lost at all
        assert marked == 0 and len(runs) == 1 and len(segments) == 1
