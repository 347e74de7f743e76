"""A saturated link is shared fairly: eight streams offer about four times what a 115200-baud link
carries, and the output's fair-share policy (firmware/output.py) lets no stream's admitted share
of its frames fall below half of its max-min fair share.  Judged from the device's own STATUS
counters (frames built and dropped per stream), not from host wall time; the loop runs under
heap_lock."""
from __future__ import annotations

import json

import pytest

from firmware import wire
from host.testkit.fwboard import FIRMWARE, boot

pytestmark = [pytest.mark.virtual_board]

# The virtual board's pty takes ~64 KiB before the device's writes block (about 6 s of this
# link): the window is judged from a STATUS the device sent after that, over WINDOW_MS of its time.
WARMUP_MS = 7000
WINDOW_MS = 8000
# 8 streams: two 1 kHz IMUs (~15 kB/s each), two 2 kHz analog inputs (~5 kB/s each), two slow
# BME280s, a slow SHT31 and a slow analog input (a few hundred B/s each); the link takes 11.5 kB/s.
# (Two SHT31 streams would interleave their single-shot commands on one chip.)
STREAMS = [
    {"name": "imu0", "sensor": "mpu6050", "period_us": 1000, "batch": 25},
    {"name": "imu1", "sensor": "mpu6050", "period_us": 1000, "batch": 25},
    {"name": "a0", "sensor": "analog", "period_us": 500, "batch": 50},
    {"name": "a1", "sensor": "analog", "period_us": 500, "batch": 50},
    {"name": "env0", "sensor": "bme280", "period_us": 50000, "batch": 10},
    {"name": "env1", "sensor": "bme280", "period_us": 50000, "batch": 10},
    {"name": "rh0", "sensor": "sht31", "period_us": 50000, "batch": 10},
    {"name": "a2", "sensor": "analog", "period_us": 50000, "batch": 10},
]


def max_min_shares(offered: dict[int, float], capacity: float) -> dict[int, float]:
    """Water-filling: each stream gets min(offered, equal share of what is left)."""
    share, left, todo = {}, capacity, dict(offered)
    while todo:
        each = left / len(todo)
        small = {k: v for k, v in todo.items() if v <= each}
        if not small:
            share.update({k: each for k in todo})
            break
        for k, v in small.items():
            share[k] = v
            left -= v
            del todo[k]
    return share


def test_saturated_link_gives_every_stream_at_least_half_its_fair_share(vboard_factory):
    board = vboard_factory(link_rate="uart115200", heap="512k")  # eight streams: more than an RP2040 holds
    cfg = json.loads((FIRMWARE / "config.json").read_text())
    cfg.update(streams=[dict(s, settings={}) for s in STREAMS], ring_bytes=8192, status_period_ms=500,
               heap_lock=True)
    r = boot(board, cfg)
    try:
        hello = r.wait(lambda: r.of(wire.T_HELLO), timeout=10, what="HELLO")[0].hello()

        def status_after(ms):
            return next((f.status() for f in r.of(wire.T_STATUS) if f.status().uptime_ms >= ms), None)

        first = r.wait(lambda: status_after(WARMUP_MS), timeout=30, what="STATUS after the warm-up")
        last = r.wait(lambda: status_after(first.uptime_ms + WINDOW_MS), timeout=30, what="STATUS after the window")
    finally:
        r.close()
    assert "MemoryError" not in r.text and "Traceback" not in r.text, r.text[-2000:]
    assert len(hello["streams"]) == 8, hello
    assert all(x.online for x in last.streams), last.streams
    info = {s["id"]: s for s in hello["streams"]}
    built, admitted, size = {}, {}, {}
    for x, y in zip(last.streams, first.streams):
        s = info[x.stream]
        built[x.stream] = (x.frames_built - y.frames_built) % (1 << 30)
        admitted[x.stream] = built[x.stream] - (x.frames_dropped - y.frames_dropped) % (1 << 30)
        size[x.stream] = wire.wire_max(wire.data_frame_size(s["batch"], s["sample_size"], False))
    assert all(built.values()), built
    offered = {k: built[k] * size[k] for k in built}
    capacity = sum(admitted[k] * size[k] for k in built)
    assert capacity < 0.6 * sum(offered.values()), "the link was not saturated: the test proves nothing"
    fair = max_min_shares(offered, capacity)
    report = {info[k]["name"]: (admitted[k], built[k], round(min(1.0, fair[k] / offered[k]), 2)) for k in built}
    print("admitted, built, fair fraction:", report)
    for k in built:
        fair_fraction = min(1.0, fair[k] / offered[k])
        assert admitted[k] / built[k] >= 0.5 * fair_fraction, (info[k]["name"], report)


STALLED_LINK = """
import io, wire, output
class Stalled(io.IOBase):
    def ioctl(self, req, arg):
        return 0  # never writable: a host that stopped reading
    def write(self, buf, off=0, n=-1):
        return None
o = output.Output(Stalled(), 2048, 256)
o.add_stream(0, 50)
frame = bytearray(wire.HEADER_SIZE + 30 + 4)  # 59 ring bytes each: without a reserve 42 stay free
admitted = 0
for _ in range(60):
    admitted += o.send_data(frame, len(frame) - 4, 0)
status = bytearray(wire.HEADER_SIZE + wire.STATUS_SIZE + 4)
ack = bytearray(wire.HEADER_SIZE + 8 + 4)
print(admitted, o.dropped, o.send(status, len(status) - 4) > 0, o.send(ack, len(ack) - 4) > 0)
"""


def test_a_ring_full_of_data_still_takes_the_hosts_status_and_ack():
    """With the link stalled, DATA fills the ring only up to the control reserve: the STATUS and
    ACK the host asks for while it is not reading still fit (a refused ACK is a command the host
    cannot tell from a lost one)."""
    from tests.micropython.mpy_runner import run_unix

    admitted, dropped, status_ok, ack_ok = run_unix(STALLED_LINK, path_dirs=[FIRMWARE]).split()
    assert int(admitted) > 20 and int(admitted) + int(dropped) == 60
    assert (status_ok, ack_ok) == ("True", "True")


STALLED_16 = """
import io, wire, output
class Stalled(io.IOBase):
    def ioctl(self, req, arg):
        return 0
    def write(self, buf, off=0, n=-1):
        return None
o = output.Output(Stalled(), 65536, 256)
for sid in range(16):
    o.add_stream(sid, wire.HEADER_SIZE + 200 * 14)
frame = bytearray(wire.HEADER_SIZE + 200 * 14 + 4)
admitted = 0
for i in range(200):
    o.credit[i % 16] = o.cap[i % 16]  # every stream has earned its frame: only the ring's room decides
    admitted += o.send_data(frame, len(frame) - 4, i % 16)
status = bytearray(wire.HEADER_SIZE + wire.STATUS_SIZE + 16 * wire.STATUS_STREAM_SIZE + 4)
ack = bytearray(wire.HEADER_SIZE + 8 + 4)
print(admitted, o.send(status, len(status) - 4) > 0, o.send(ack, len(ack) - 4) > 0)
"""


def test_the_reserve_holds_a_status_of_every_stream():
    """16 streams of 2.8 kB frames fill a 64 KiB ring on a stalled link: the STATUS with 16 stream
    records (469 wire bytes, more than the 128-byte floor) and an ACK still fit."""
    from tests.micropython.mpy_runner import run_unix

    admitted, status_ok, ack_ok = run_unix(STALLED_16, path_dirs=[FIRMWARE]).split()
    assert 15 <= int(admitted) < 200
    assert (status_ok, ack_ok) == ("True", "True")
