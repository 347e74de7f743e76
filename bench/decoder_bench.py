"""Decoder throughput vs pymavlink, on one core, with the same IMU samples.

    python -m bench.decoder_bench [--samples N] [--batch B] [--paced-seconds S]

Stream A: pagerless DATA frames of B MPU-6050 samples each (14 raw bytes per sample), built with the
wire helpers, fed to host.decoder.Decoder in 4 KiB chunks (a serial read's worth).
Stream B: the same samples as MAVLink v2 RAW_IMU messages (one sample per message, as MAVLink sends
IMU data), built with pymavlink's encoder and parsed with MAVLink.parse_buffer in the same chunks.
Rows: bytes/s, frames (messages)/s, samples/s; the ratio compares samples/s (same data delivered).
"decoder + numpy" also turns every frame's samples into a structured array (values ready to use).
Then the decoder is fed at a paced 1 MB/s and its CPU share is measured (process time / wall time).
"""
from __future__ import annotations

import argparse
import os
import random
import struct
import sys
import time

from pymavlink.dialects.v20 import common as mavlink

from host.decoder import Decoder, encode_data, encode_hello
from host.synthetic import BOOT_ID, hello_info
from host.units import decode as decode_samples

CHUNK = 4096
TARGET_MBPS = 1.0
TARGET_RATIO = 3.0


def make_samples(n: int, seed: int = 1) -> list[tuple[int, ...]]:
    r = random.Random(seed)
    return [tuple(r.randint(-32768, 32767) for _ in range(7)) for _ in range(n)]


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


def _chunks(data: bytes) -> list[bytes]:
    return [data[i:i + CHUNK] for i in range(0, len(data), CHUNK)]


def bench_decoder(data: bytes, with_numpy: bool = False, repeat: int = 3) -> tuple[float, int, int]:
    """Best of `repeat`: (seconds, frames, samples)."""
    chunks = _chunks(data)
    best = None
    for _ in range(repeat):
        dec = Decoder()
        frames = samples = 0
        t0 = time.perf_counter()
        for c in chunks:
            for f in dec.feed(c):
                if f.__class__.__name__ == "Frame" and f.type == 1:
                    frames += 1
                    samples += f.count
                    if with_numpy:
                        decode_samples("mpu6050", f.data().samples)
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    return best, frames, samples


def bench_mavlink(data: bytes, repeat: int = 3) -> tuple[float, int]:
    chunks = _chunks(data)
    best = None
    for _ in range(repeat):
        mav = mavlink.MAVLink(None)
        mav.robust_parsing = True
        n = 0
        t0 = time.perf_counter()
        for c in chunks:
            msgs = mav.parse_buffer(c)
            if msgs:
                n += len(msgs)
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    return best, n


def paced_cpu_share(data: bytes, rate_bps: float, seconds: float) -> tuple[float, float]:
    """Feed `data` (looped) at `rate_bps` for `seconds`; returns (cpu share, achieved bytes/s)."""
    tick = 0.01
    per_tick = int(rate_bps * tick)
    dec = Decoder()
    pos = 0
    sent = 0
    w0 = time.perf_counter()
    c0 = time.process_time()
    next_t = w0
    while True:
        now = time.perf_counter()
        if now - w0 >= seconds:
            break
        if now < next_t:
            time.sleep(next_t - now)
            continue
        piece = data[pos:pos + per_tick]
        if len(piece) < per_tick:
            pos = 0
            dec = Decoder()  # the stream loops: a new "boot", so no seq confusion
            piece = data[:per_tick]
        pos += len(piece)
        dec.feed(piece)
        sent += len(piece)
        next_t += tick
    wall = time.perf_counter() - w0
    cpu = time.process_time() - c0
    return cpu / wall, sent / wall


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.decoder_bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--samples", type=int, default=200_000, help="IMU samples in each stream (default 200000)")
    p.add_argument("--batch", type=int, default=20, help="samples per pagerless DATA frame (default 20)")
    p.add_argument("--paced-seconds", type=float, default=3.0, help="length of the 1 MB/s paced run")
    args = p.parse_args(argv)

    samples = make_samples(args.samples)
    a = pagerless_stream(samples, args.batch)
    b = mavlink_stream(samples)

    t_dec, frames, n_dec = bench_decoder(a)
    t_np, _, _ = bench_decoder(a, with_numpy=True)
    t_mav, msgs = bench_mavlink(b)
    if msgs != len(samples) or n_dec != len(samples) // args.batch * args.batch:
        print(f"decoder_bench: decoded counts do not match (pagerless {n_dec}, mavlink {msgs})", file=sys.stderr)
        return 1

    rows = [
        ("pagerless decoder", len(a), t_dec, frames, n_dec),
        ("pagerless decoder + numpy", len(a), t_np, frames, n_dec),
        ("pymavlink parse_buffer", len(b), t_mav, msgs, msgs),
    ]
    print(f"{len(samples)} IMU samples, {args.batch} per DATA frame; one core; best of 3; "
          f"python {sys.version.split()[0]}, pid {os.getpid()}")
    print(f"{'parser':<28}{'stream MB':>10}{'MB/s':>9}{'frames/s':>12}{'samples/s':>12}{'vs mavlink':>12}")
    mav_sps = msgs / t_mav
    for name, size, t, fr, n in rows:
        ratio = (n / t) / mav_sps
        print(f"{name:<28}{size / 1e6:>10.2f}{size / t / 1e6:>9.2f}{fr / t:>12,.0f}{n / t:>12,.0f}{ratio:>11.1f}x")

    share, achieved = paced_cpu_share(a, TARGET_MBPS * 1e6, args.paced_seconds)
    print(f"paced at {achieved / 1e6:.2f} MB/s for {args.paced_seconds:g} s: decoder CPU share {share * 100:.1f}% "
          f"of one core")

    mbps = len(a) / t_dec / 1e6
    ratio = (n_dec / t_dec) / mav_sps
    ok = mbps >= TARGET_MBPS and ratio >= TARGET_RATIO
    print(f"targets: >= {TARGET_MBPS:g} MB/s ({mbps:.2f}: {'ok' if mbps >= TARGET_MBPS else 'MISSED'}), "
          f">= {TARGET_RATIO:g}x pymavlink samples/s ({ratio:.1f}x: {'ok' if ratio >= TARGET_RATIO else 'MISSED'})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
