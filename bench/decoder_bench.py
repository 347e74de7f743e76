"""Decoder throughput vs pymavlink, on one core, with the same IMU samples; then the live monitor at 1 MB/s.

    python -m bench.decoder_bench [--samples N] [--batch B] [--content imu|random] [--paced-seconds S]
                                  [--ui-seconds S]

Stream A: pagerless DATA frames of B MPU-6050 samples each (14 raw bytes per sample), built with the
wire helpers, fed to host.protocol.decoder.Decoder in 4 KiB chunks (a serial read's worth). The samples look
like a board at rest (--content random: uniform int16, which has few zero bytes and so flatters COBS).
Stream B: the same samples as MAVLink v2 RAW_IMU messages (one sample per message, as MAVLink sends
IMU data), built with pymavlink's encoder and parsed with MAVLink.parse_buffer in the same chunks.
Rows: bytes/s, frames (messages)/s, samples/s; the ratio compares samples/s (same data delivered).
"decoder + numpy" also turns every frame's samples into a structured array (values ready to use);
"Session.feed" is host.monitoring.session.Session.feed on each 4 KiB read: decoder, units, counters.

Paced runs, at 1 MB/s of the default 4-stream mix (firmware/config.json: imu, env, rh, a0 with their
batches and relative rates, every period divided by one factor so the stream is 1 MB/s; HELLO and
CALIB first, STATUS every second of device time; seeded sensor-like raw values). Each reports the
CPU share of this process (process time / wall time over the window) and what was decoded:
  decoder only       Decoder.feed in 10 ms slices, in-process (the decoder's own cost);
  live, no view      what `monitor live` runs minus the view: a child process writes the stream into
                     a pty at the paced rate; host.device.link.Link + host.monitoring.feeds.LiveFeed (reader thread) +
                     host.monitoring.session.Session read it, polled every 0.25 s (the TUI's refresh period);
  live + TUI         the same with host.monitoring.screen.MonitorApp running headless (textual run_test) doing the
                     polling and redrawing, as `monitor live` does on a terminal. Headless textual
                     composes every frame but skips turning it into escape codes for a terminal.
The writer is a separate process, so its CPU time is not counted.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import struct
import subprocess
import sys
import tempfile
import time
import tty
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pymavlink.dialects.v20 import common as mavlink

from firmware import wire
from host import sensors
from host.sensors import units
from host.protocol.decoder import Decoder
from host.protocol.encoder import encode_data, encode_event, encode_frame, encode_hello, encode_status
from host.protocol.frames import Status, StreamStatus
from host.monitoring.session import Session
from host.testkit.synthetic import BOOT_ID, hello_info
from host.sensors.units import decode as decode_samples

ROOT = Path(__file__).resolve().parent.parent
CHUNK = 4096
TARGET_MBPS = 1.0
TARGET_RATIO = 3.0
TARGET_UI_SHARE = 0.25
SUSTAINED = 0.97       # a paced run "sustains" the rate if it decoded at least this share of it
PACE_TICK_S = 0.01     # the paced writers send rate * 10 ms at a time
WARMUP_S = 1.0         # live runs: connect, HELLO, first layout, before the window opens
TUI_SIZE = (160, 50)   # terminal columns x rows for the headless TUI


def make_samples(n: int, seed: int = 1, content: str = "imu") -> list[tuple[int, ...]]:
    """n raw MPU-6050 samples: "imu" = a board at rest with vibration (small values, so many zero
    bytes, which is what COBS pays for), "random" = uniform int16 (hardly any zero bytes)."""
    if content == "random":
        r = random.Random(seed)
        return [tuple(r.randint(-32768, 32767) for _ in range(7)) for _ in range(n)]
    rec = _raw_samples("mpu6050", n, 1000, np.random.default_rng(seed))
    return [tuple(s) for s in rec.tolist()]


def pagerless_stream(samples: list[tuple[int, ...]], batch: int, period_us: int = 1000) -> bytes:
    out = [encode_hello(BOOT_ID, 0, hello_info(imu_period_us=period_us, imu_batch=batch))]
    pack = struct.Struct(">7h").pack
    for j in range(0, len(samples) - batch + 1, batch):
        body = b"".join(pack(*s) for s in samples[j:j + batch])
        out.append(encode_data(0, BOOT_ID, j // batch + 1, (j * period_us) % (1 << 30), period_us, body, 14))
    return b"".join(out)


def mavlink_stream(samples: list[tuple[int, ...]], period_us: int = 1000) -> bytes:
    mav = mavlink.MAVLink(None, srcSystem=1, srcComponent=1)
    out = []
    for k, (ax, ay, az, _temp, gx, gy, gz) in enumerate(samples):
        msg = mav.raw_imu_encode(k * period_us, ax, ay, az, gx, gy, gz, 0, 0, 0)
        out.append(msg.pack(mav))
    return b"".join(out)


# ---------------------------------------------------------------- the default 4-stream mix

# what the drivers' config() return with firmware/config.json's settings (see firmware/sensors/)
DRIVER_CONFIG = {
    "mpu6050": {"accel_fs_g": 2, "gyro_fs_dps": 250, "dlpf_cfg": 1, "sample_rate_div": 0, "sample_rate_hz": 1000},
    "bme280": {"mode": "normal", "temperature_oversampling": 1, "pressure_oversampling": 1,
               "humidity_oversampling": 1, "iir_filter": 0, "standby_us": 500},
    "sht31": {"repeatability": "high", "measure_time_max_us": 15500},
    "analog": {"vref_mv": 3300, "full_scale": 65535},
}


def _calibration(kind: str) -> bytes:
    if kind != "bme280":
        return b""
    from host.sensors.bme280 import TYPICAL_CALIBRATION  # the simulated chip's trimming
    return TYPICAL_CALIBRATION


def _raw_samples(kind: str, n: int, period_us: int, rng: np.random.Generator) -> np.ndarray:
    """n raw samples as the driver packs them (structured, big-endian): sensor-like values with noise."""
    rec = np.zeros(n, units.sample_dtype(kind))
    t = np.arange(n) * (period_us / 1e6)

    def put(name, mean, noise, lo, hi, wave=0.0, hz=0.5):
        v = mean + noise * rng.standard_normal(n) + wave * np.sin(2 * np.pi * hz * t)
        rec[name] = np.clip(np.rint(v), lo, hi)

    if kind == "mpu6050":  # at rest, +-2 g / +-250 deg/s: accel z ~ 1 g, small tilt and vibration
        for ax, mean in (("accel_x", 300), ("accel_y", -200), ("accel_z", 16384)):
            put(ax, mean, 120, -32768, 32767, wave=400, hz=3.0)
        put("temperature", (28.0 - 36.53) * 340, 15, -32768, 32767)
        for g in ("gyro_x", "gyro_y", "gyro_z"):
            put(g, 0, 90, -32768, 32767, wave=300, hz=1.5)
    elif kind == "bme280":  # 20-bit adc_P / adc_T, 16-bit adc_H (about 25 degC, 1000 hPa, 45 %RH)
        put("pressure", 415148, 40, 0, (1 << 20) - 1)
        put("temperature", 519888, 25, 0, (1 << 20) - 1)
        put("humidity", 30000, 30, 0, 65535)
    elif kind == "sht31":
        put("temperature", 26214, 20, 0, 65535)
        put("humidity", 29491, 40, 0, 65535)
    else:  # analog: a slow signal around mid-scale
        put("voltage", 32768, 150, 0, 65535, wave=20000, hz=2.0)
    return rec


@dataclass
class Mix:
    data: bytes
    factor: float                       # every period in firmware/config.json divided by this
    streams: list[tuple[str, str, float, int, int]]  # name, kind, Hz, batch, sample size
    seconds: float                      # device time covered

    def describe(self) -> str:
        parts = [f"{n} ({k}) {hz:,.0f} Hz x {b}/frame" for n, k, hz, b, _ in self.streams]
        return f"default 4-stream mix, periods / {self.factor:.0f}: " + ", ".join(parts)


def mix_stream(rate_bps: float, seconds: float, seed: int = 7) -> Mix:
    """The default app config's streams at a combined `rate_bps`, for `seconds` of device time."""
    cfg = json.loads((ROOT / "firmware" / "config.json").read_text())["streams"]
    rng = np.random.default_rng(seed)
    specs = []
    for sid, s in enumerate(cfg):
        kind = s["sensor"]
        drv = sensors.kind(kind).driver
        one = encode_data(sid, BOOT_ID, 0, 0, s["period_us"],
                          _raw_samples(kind, s["batch"], s["period_us"], rng).tobytes(), drv.SAMPLE_SIZE)
        specs.append((sid, s["name"], kind, s["period_us"], s["batch"], drv, len(one)))
    default_bps = sum(flen * 1e6 / (p * b) for _, _, _, p, b, _, flen in specs)
    factor = rate_bps / default_bps
    info = {"board": "bench", "mcu": "rp2040", "firmware": "bench-mix", "protocol": wire.VERSION,
            "ticks_period": 1 << 30, "reset_cause": wire.RC_POWER_ON, "streams": []}
    timed: list[tuple[int, int, bytes]] = []  # (device us the frame is complete, order, frame)
    streams = []
    for sid, name, kind, p0, batch, drv, _ in specs:
        period = max(1, round(p0 / factor))
        info["streams"].append({"id": sid, "name": name, "kind": kind, "period_us": period, "batch": batch,
                                "sample_format": drv.SAMPLE_FORMAT, "sample_size": drv.SAMPLE_SIZE,
                                "channels": [list(c) for c in drv.CHANNELS], "config": DRIVER_CONFIG[kind],
                                "online": True})
        streams.append((name, kind, 1e6 / period, batch, drv.SAMPLE_SIZE))
        n_frames = math.ceil(seconds * 1e6 / (period * batch))
        raw = _raw_samples(kind, n_frames * batch, period, rng).tobytes()
        fb = batch * drv.SAMPLE_SIZE
        for j in range(n_frames):
            t0 = j * batch * period
            timed.append((t0 + batch * period, sid, encode_data(sid, BOOT_ID, j, t0 % (1 << 30), period,
                                                                raw[j * fb:(j + 1) * fb], drv.SAMPLE_SIZE)))
    sent = [0] * len(specs)
    for k in range(1, int(seconds) + 1):  # STATUS once a second, as status_period_ms = 1000
        timed.append((k * 1_000_000, 99, b""))
    timed.sort(key=lambda x: (x[0], x[1]))
    out = [b"MicroPython v1.29 on rp2040\r\n", encode_event(BOOT_ID, 0, wire.EV_BOOT, text="booted"),
           encode_hello(BOOT_ID, 0, info)]
    out += [encode_frame(wire.T_CALIB, sid, BOOT_ID, 0, body=_calibration(kind)) for sid, _, kind, *_ in specs]
    n_status = 0
    for t_us, sid, frame in timed:
        if sid == 99:
            n_status += 1
            st = Status(t_us // 1000, 61_440, 0, sum(sent), 0, wire.RC_POWER_ON, 0, 0,
                        [StreamStatus(i, True, 0, 0, 0) for i in range(len(specs))])
            out.append(encode_status(BOOT_ID, n_status, st, t_us % (1 << 30)))
        else:
            sent[sid] += 1
            out.append(frame)
    return Mix(b"".join(out), factor, streams, seconds)


# ---------------------------------------------------------------- throughput (as fast as possible)

def _chunks(data: bytes) -> list[bytes]:
    return [data[i:i + CHUNK] for i in range(0, len(data), CHUNK)]


def best_of(repeat: int, make, run) -> tuple:
    """(best wall time of `repeat` calls of run(make()), what the last call returned): every
    repeat parses with a fresh parser from make(), built outside the timing."""
    best = None
    for _ in range(repeat):
        parser = make()
        t0 = time.perf_counter()
        result = run(parser)
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    return best, result


def bench_decoder(data: bytes, with_numpy: bool = False, repeat: int = 3) -> tuple[float, int, int]:
    """Best of `repeat`: (seconds, frames, samples)."""
    chunks = _chunks(data)

    def run(dec):
        frames = samples = 0
        for c in chunks:
            for f in dec.feed(c):
                if f.__class__.__name__ == "Frame" and f.type == 1:
                    frames += 1
                    samples += f.count
                    if with_numpy:
                        decode_samples("mpu6050", f.data().samples)
        return frames, samples

    best, (frames, samples) = best_of(repeat, Decoder, run)
    return best, frames, samples


def bench_session(data: bytes, repeat: int = 3) -> tuple[float, int, int]:
    """Best of `repeat`: (seconds, DATA frames, samples) through Session.feed, 4 KiB per read."""
    chunks = _chunks(data)

    def run(session):
        frames = samples = 0
        for k, c in enumerate(chunks):
            for b in session.feed(c, k * 1e-3):
                frames += 1
                samples += b.count
        return frames, samples

    best, (frames, samples) = best_of(repeat, Session, run)
    return best, frames, samples


def bench_mavlink(data: bytes, repeat: int = 3) -> tuple[float, int]:
    chunks = _chunks(data)

    def make():
        mav = mavlink.MAVLink(None)
        mav.robust_parsing = True
        return mav

    def run(mav):
        n = 0
        for c in chunks:
            msgs = mav.parse_buffer(c)
            if msgs:
                n += len(msgs)
        return n

    return best_of(repeat, make, run)


# ---------------------------------------------------------------- paced runs

@dataclass
class Paced:
    name: str
    seconds: float       # wall time of the window
    share: float         # process CPU time / wall time
    mbps: float          # bytes decoded per second over the window
    frames_s: float      # frames decoded per second
    samples_s: float
    errors: int          # CRC + framing errors + invalid frames (must be 0: the pty is transparent)


def paced_decoder(data: bytes, rate_bps: float, seconds: float) -> Paced:
    """Feed `data` to a Decoder in 10 ms slices at `rate_bps` for `seconds` (decoder's own cost)."""
    per_tick = int(rate_bps * PACE_TICK_S)
    dec = Decoder()
    pos = frames = samples = 0
    w0 = time.perf_counter()
    c0 = time.process_time()
    next_t = w0
    while True:
        now = time.perf_counter()
        if now - w0 >= seconds or pos >= len(data):
            break
        if now < next_t:
            time.sleep(next_t - now)
            continue
        for f in dec.feed(data[pos:pos + per_tick]):
            if getattr(f, "type", None) == wire.T_DATA:
                frames += 1
                samples += f.count
        pos += per_tick
        next_t += PACE_TICK_S
    wall = time.perf_counter() - w0
    cpu = time.process_time() - c0
    st = dec.stats
    return Paced("decoder only (in-process)", wall, cpu / wall, st.bytes / wall, frames / wall, samples / wall,
                 st.crc_errors + st.framing_errors + st.invalid_frames)


# The writer: a separate process, so its CPU time is not the monitor's. It writes the stream into the
# pty's master side at the paced rate (bursts of rate * 10 ms, catching up if it was late).
_WRITER = r"""
import os, sys, time
fd, path, rate, tick = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
data = open(path, "rb").read()
per = int(rate * tick)
pos, t0 = 0, time.perf_counter()
next_t = t0
while pos < len(data):
    now = time.perf_counter()
    if now < next_t:
        time.sleep(next_t - now)
        continue
    mv = memoryview(data)[pos:pos + per]
    while mv:
        mv = mv[os.write(fd, mv):]
    pos += per
    next_t += tick
time.sleep(3600)  # keep the master open (a closed master hangs the port up) until killed
"""


class _Window:
    """CPU, wall and what the session decoded between open and close."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.w0, self.c0 = time.perf_counter(), time.process_time()
        self.b0, self.f0, self.s0 = self._counts()

    def _counts(self) -> tuple[int, int, int]:
        s = self.session
        return s.stats.bytes, s.stats.frames_ok, sum(st.samples for st in s.streams.values())

    def close(self, name: str) -> Paced:
        wall = time.perf_counter() - self.w0
        cpu = time.process_time() - self.c0
        b, f, n = self._counts()
        st = self.session.stats
        return Paced(name, wall, cpu / wall, (b - self.b0) / wall, (f - self.f0) / wall, (n - self.s0) / wall,
                     st.crc_errors + st.framing_errors + st.invalid_frames)


def paced_live(data: bytes, rate_bps: float, seconds: float, ui: bool) -> tuple[Paced, str]:
    """Run `monitor live`'s pipeline on a pty fed at `rate_bps`; with `ui`, the TUI (headless) too.

    Returns the window's figures and (with `ui`) the screen text at the end.
    """
    from host.device.link import Link, identify, locator_for
    from host.monitoring.feeds import LiveFeed
    from host.monitoring.screen import REFRESH_S

    master, slave = os.openpty()
    tty.setraw(slave)  # a board's CDC port: no echo, no line editing, no output processing
    path = os.ttyname(slave)
    with tempfile.NamedTemporaryFile(prefix="decoder-bench-", suffix=".bin", delete=False) as f:
        f.write(data)
    writer = None
    feed = None
    try:
        # as host.monitor.cmd_live wires it (no --record, default --baud, HELLO asked on connect)
        identity = identify(path)
        link = Link(path, 115200, locate=locator_for(identity))
        link.open()
        session = Session()
        feed = LiveFeed(link, session)
        writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(master), f.name, str(rate_bps),
                                   str(PACE_TICK_S)], pass_fds=(master,))
        feed.start_reader()
        if ui:
            return asyncio.run(_with_tui(feed, f"{path} ({identity})", seconds))
        win = None
        t_open = time.perf_counter() + WARMUP_S
        t_end = t_open + seconds
        while time.perf_counter() < t_end:  # the TUI's cadence, without the TUI
            time.sleep(REFRESH_S)
            feed.poll()
            if win is None and time.perf_counter() >= t_open:
                win = _Window(session)
        return win.close("live, no view (pty+Link+LiveFeed+Session)"), ""
    finally:
        if feed is not None:
            feed.close()
        if writer is not None:
            writer.kill()
            writer.wait()
        os.close(master)
        os.close(slave)
        os.unlink(f.name)


async def _with_tui(feed, source: str, seconds: float) -> tuple[Paced, str]:
    from host.monitoring.screen import MonitorApp

    app = MonitorApp(feed, source)  # default refresh period, as `monitor live` runs it
    async with app.run_test(size=TUI_SIZE) as pilot:
        await pilot.pause(WARMUP_S)
        win = _Window(feed.session)
        await asyncio.sleep(seconds)
        res = win.close(f"live + TUI headless {TUI_SIZE[0]}x{TUI_SIZE[1]}")
        update = app.screen._compositor.render_full_update(simplify=True)
        text = "\n".join("".join(strip.text for strip in row) for row in update.strips)
    if app.failure is not None:
        raise app.failure
    return res, text


# ---------------------------------------------------------------- main

def _ok(good: bool) -> str:
    return "ok" if good else "MISSED"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.decoder_bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--samples", type=int, default=200_000, help="IMU samples in each stream (default 200000)")
    p.add_argument("--batch", type=int, default=20, help="samples per pagerless DATA frame (default 20)")
    p.add_argument("--content", choices=("imu", "random"), default="imu",
                   help="IMU sample values: sensor-like at rest (default) or uniform random int16")
    p.add_argument("--paced-seconds", type=float, default=3.0,
                   help="window of the decoder-only and no-view paced runs (default 3)")
    p.add_argument("--ui-seconds", type=float, default=5.0, help="window of the paced run with the TUI (default 5)")
    args = p.parse_args(argv)

    samples = make_samples(args.samples, content=args.content)
    a = pagerless_stream(samples, args.batch)
    b = mavlink_stream(samples)

    t_dec, frames, n_dec = bench_decoder(a)
    t_np, _, _ = bench_decoder(a, with_numpy=True)
    t_ses, f_ses, n_ses = bench_session(a)
    t_mav, msgs = bench_mavlink(b)
    n_expect = len(samples) // args.batch * args.batch
    if msgs != len(samples) or n_dec != n_expect or n_ses != n_expect:
        print(f"decoder_bench: decoded counts do not match (pagerless {n_dec}, session {n_ses}, mavlink {msgs})",
              file=sys.stderr)
        return 1

    rows = [
        ("pagerless decoder", len(a), t_dec, frames, n_dec),
        ("pagerless decoder + numpy", len(a), t_np, frames, n_dec),
        ("pagerless Session.feed", len(a), t_ses, f_ses, n_ses),
        ("pymavlink parse_buffer", len(b), t_mav, msgs, msgs),
    ]
    what = "sensor-like values, board at rest" if args.content == "imu" else "uniform random values"
    print(f"{len(samples)} IMU samples ({what}), {args.batch} per DATA frame; one core; best of 3; "
          f"python {sys.version.split()[0]}, {os.cpu_count()} cores")
    print(f"{'parser':<30}{'stream MB':>10}{'MB/s':>9}{'frames/s':>12}{'samples/s':>12}{'vs mavlink':>12}")
    mav_sps = msgs / t_mav
    for name, size, t, fr, n in rows:
        ratio = (n / t) / mav_sps
        print(f"{name:<30}{size / 1e6:>10.2f}{size / t / 1e6:>9.2f}{fr / t:>12,.0f}{n / t:>12,.0f}{ratio:>11.1f}x")

    rate = TARGET_MBPS * 1e6
    mix = mix_stream(rate, WARMUP_S + max(args.paced_seconds, args.ui_seconds) + 2.0)
    t_mix, f_mix, n_mix = bench_session(mix.data)
    print()
    print(f"paced at {TARGET_MBPS:g} MB/s: {mix.describe()}")
    print(f"  (Session.feed on this stream flat out, one call per 4 KiB read: {len(mix.data) / t_mix / 1e6:.2f} MB/s, "
          f"{f_mix / t_mix:,.0f} DATA frames/s)")
    paced = [paced_decoder(mix.data, rate, args.paced_seconds),
             paced_live(mix.data, rate, args.paced_seconds, ui=False)[0]]
    ui_run, screen = paced_live(mix.data, rate, args.ui_seconds, ui=True)
    paced.append(ui_run)
    print(f"{'run':<46}{'window s':>9}{'MB/s':>7}{'frames/s':>10}{'samples/s':>11}{'errors':>7}{'CPU':>8}")
    for r in paced:
        print(f"{r.name:<46}{r.seconds:>9.1f}{r.mbps / 1e6:>7.2f}{r.frames_s:>10,.0f}{r.samples_s:>11,.0f}"
              f"{r.errors:>7}{r.share * 100:>7.1f}%")
    shown = all(n in screen for n, *_ in mix.streams) and "reconciliation" in screen
    if not shown:
        print("decoder_bench: the TUI did not show every stream and the link panel", file=sys.stderr)

    mbps = len(a) / t_dec / 1e6
    ratio = (n_dec / t_dec) / mav_sps
    kept_up = ui_run.mbps >= SUSTAINED * rate and ui_run.errors == 0 and shown
    light = ui_run.share < TARGET_UI_SHARE
    ok = mbps >= TARGET_MBPS and ratio >= TARGET_RATIO and kept_up and light
    print(f"targets: decoder >= {TARGET_MBPS:g} MB/s ({mbps:.2f}: {_ok(mbps >= TARGET_MBPS)}), "
          f">= {TARGET_RATIO:g}x pymavlink samples/s ({ratio:.1f}x: {_ok(ratio >= TARGET_RATIO)}), "
          f"with the TUI {TARGET_MBPS:g} MB/s sustained ({ui_run.mbps / 1e6:.2f}: {_ok(kept_up)}) "
          f"at < {TARGET_UI_SHARE * 100:.0f}% of one core ({ui_run.share * 100:.1f}%: {_ok(light)})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
