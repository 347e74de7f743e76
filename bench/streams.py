"""The byte streams the host benches decode: the same IMU samples as pagerless DATA frames and as
MAVLink v2 messages, and the default 4-stream mix at a given rate (bench/decoder_bench.py, bench/link_bench.py)."""
from __future__ import annotations

import json
import math
import random
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pymavlink.dialects.v20 import common as mavlink

from firmware import wire
from host import sensors
from host.protocol.encoder import encode_data, encode_event, encode_frame, encode_hello, encode_status
from host.protocol.frames import Status, StreamStatus
from host.sensors import units
from host.testkit.synthetic import BOOT_ID, hello_info

ROOT = Path(__file__).resolve().parent.parent


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
    """One RAW_IMU per sample (as MAVLink sends IMU data), the temperature in its `temperature` field."""
    mav = mavlink.MAVLink(None, srcSystem=1, srcComponent=1)
    out = []
    for k, (ax, ay, az, temp, gx, gy, gz) in enumerate(samples):
        msg = mav.raw_imu_encode(k * period_us, ax, ay, az, gx, gy, gz, 0, 0, 0, 0, temp)
        out.append(msg.pack(mav))
    return b"".join(out)


MAV_GROUP = 18  # whole 14-byte samples in one ENCAPSULATED_DATA (253 bytes; a MAVLink payload is <= 255)


def mavlink_grouped_stream(samples: list[tuple[int, ...]], per: int = MAV_GROUP) -> bytes:
    """`per` samples packed big-endian into each ENCAPSULATED_DATA message: the closest MAVLink
    comes to a batch of samples in one message (20 do not fit)."""
    mav = mavlink.MAVLink(None, srcSystem=1, srcComponent=1)
    pack = struct.Struct(">7h").pack
    out = []
    for j in range(0, len(samples) - per + 1, per):
        body = b"".join(pack(*s) for s in samples[j:j + per])
        out.append(mav.encapsulated_data_encode(j // per & 0xFFFF, list(body.ljust(253, b"\0"))).pack(mav))
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
                        [StreamStatus(i, True, 0, sent[i], 0, 0, 0, 0) for i in range(len(specs))])
            out.append(encode_status(BOOT_ID, n_status, st, t_us % (1 << 30)))
        else:
            sent[sid] += 1
            out.append(frame)
    return Mix(b"".join(out), factor, streams, seconds)
