"""Reusable judgements over decoded frames: physical ranges, rates, sequence and schedule continuity.

Each returns plain data or a list of problems (empty = fine), so a test can assert on it and
print a message that says exactly which stream, which seq, which value.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from firmware import wire
from host.protocol.frames import Frame, StreamInfo

TICKS_MOD = 1 << 30


def physical_ranges(info: StreamInfo) -> dict[str, tuple[float, float]]:
    """Plausible physical bounds of each channel of a stream: the chip's measuring range."""
    kind, cfg = info.kind, info.config
    if kind == "bme280":
        return {"temperature_c": (-40.0, 85.0), "pressure_pa": (30_000.0, 110_000.0), "humidity_rh": (0.0, 100.0)}
    if kind == "mpu6050":
        g = float(cfg.get("accel_fs_g", 16))
        dps = float(cfg.get("gyro_fs_dps", 2000))
        r = {f"accel_{a}_g": (-g, g) for a in "xyz"}
        r.update({f"gyro_{a}_dps": (-dps, dps) for a in "xyz"})
        r["temperature_c"] = (-40.0, 85.0)
        return r
    if kind == "sht31":
        return {"temperature_c": (-45.0, 130.0), "humidity_rh": (0.0, 100.0)}
    if kind == "analog":
        return {"voltage_v": (0.0, float(cfg.get("vref_mv", 3300)) / 1000.0)}
    return {}


def out_of_range(info: StreamInfo, values: dict[str, np.ndarray], where: str = "") -> list[str]:
    """Channels with a (non-missing) value outside physical_ranges(info)."""
    bad = []
    for name, (lo, hi) in physical_ranges(info).items():
        v = values.get(name)
        if v is None:
            bad.append(f"{info.name}: channel {name} missing from the conversion")
            continue
        v = v[~np.isnan(v)]
        if v.size and (v.min() < lo or v.max() > hi):
            bad.append(f"{info.name}{where}: {name} in [{v.min():.4g}, {v.max():.4g}], outside [{lo:g}, {hi:g}]")
    return bad


def seq_gaps(frames: list[Frame]) -> list[tuple[int, int]]:
    """(after seq, missing count) for each gap in a list of one stream's frames, in arrival order."""
    gaps = []
    for a, b in zip(frames, frames[1:]):
        d = (b.seq - a.seq - 1) & 0xFFFF
        if d:
            gaps.append((a.seq, d))
    return gaps


def schedule_breaks(frames: list[Frame], tolerance_us: int = 0) -> list[str]:
    """Consecutive received DATA frames whose t0 does not advance by exactly (seq delta) x batch x
    period: the device's sampling schedule slipped (re-anchored after an overrun or a stall)."""
    out = []
    for a, b in zip(frames, frames[1:]):
        k = (b.seq - a.seq) & 0xFFFF
        if a.period_us != b.period_us:
            continue
        want = k * a.count * a.period_us
        got = (b.t0_us - a.t0_us) % TICKS_MOD
        if abs(got - want) > tolerance_us:
            out.append(f"s{a.stream} seq {a.seq}->{b.seq}: t0 advanced {got} us, schedule says {want} us")
    return out


def schedule_slip_us(frames: list[Frame]) -> int:
    """Total time by which consecutive received frames' t0 ran past the schedule (the firmware
    re-anchors its deadline after an overrun of more than a frame); 0 for a device on time."""
    slip = 0
    for a, b in zip(frames, frames[1:]):
        if a.period_us == b.period_us:
            slip += ((b.t0_us - a.t0_us) % TICKS_MOD) - ((b.seq - a.seq) & 0xFFFF) * a.count * a.period_us
    return slip


@dataclass
class Rate:
    stream: int
    name: str
    nominal_hz: float
    device_hz: float   # samples per second of device time (t0 of first frame to end of last frame)
    host_hz: float     # samples per second of host time (arrival of first to arrival of last frame)
    frames: int
    samples: int
    missing: int
    slot_hz: float = math.nan  # sample slots per second of device time: delivered, marked missing,
    #                           or in a frame the device skipped or dropped (seq span x batch)

    def error(self, which: str) -> float:
        v = {"device": self.device_hz, "host": self.host_hz, "slots": self.slot_hz}[which]
        return (v - self.nominal_hz) / self.nominal_hz

    def __str__(self) -> str:
        return (f"{self.name} (s{self.stream}): nominal {self.nominal_hz:g} Hz, device {self.device_hz:.4g} Hz "
                f"({self.error('device'):+.2%}), host {self.host_hz:.4g} Hz ({self.error('host'):+.2%}), "
                f"{self.frames} frames, {self.samples} samples, {self.missing} missing")


def rate(info: StreamInfo, timed: list[tuple[float, Frame]]) -> Rate:
    """Delivered sample rate of one stream from (arrival time, frame) pairs."""
    frames = [f for _, f in timed]
    if len(frames) < 2:
        return Rate(info.id, info.name, 1e6 / info.period_us, math.nan, math.nan, len(frames), 0, 0)
    first, last = frames[0], frames[-1]
    samples = sum(f.count for f in frames)
    missing = sum(f.data().missing_count() for f in frames)
    span_us = ((last.t0_us - first.t0_us) % TICKS_MOD) + last.count * last.period_us
    device_hz = (samples - missing) / (span_us / 1e6)
    host_span = timed[-1][0] - timed[0][0]
    host_hz = sum(f.count - f.data().missing_count() for f in frames[1:]) / host_span if host_span > 0 else math.nan
    slots = ((last.seq - first.seq) & 0xFFFF) * first.count + last.count
    return Rate(info.id, info.name, 1e6 / first.period_us, device_hz, host_hz, len(frames), samples, missing,
                slots / (span_us / 1e6))


def clock_ratio(a: tuple[float, float, int], b: tuple[float, float, int]) -> tuple[float, float]:
    """Bounds on (device time) / (host time) between two STATUS reports, each given as (host time
    the request was sent, host time the answer arrived, its uptime_ms): the device took its uptime
    somewhere inside each round trip, so however late the host got to read, the true ratio lies in
    the interval returned (the round trips widen it, no host delay can move it)."""
    dev_ms = (b[2] - a[2]) % (1 << 30)
    longest, shortest = (b[1] - a[0]) * 1000, (b[0] - a[1]) * 1000
    return dev_ms / longest, (dev_ms / shortest if shortest > 0 else math.inf)


def frames_lost(traffic, stop: bool = True) -> list[str]:
    """Why not every DATA frame the device built reached the host (empty: all did).  A host gap
    may only be a frame the device skipped and counted (a loop a busy host held up past a whole
    frame's slots): none dropped by the output, none lost in transit, the ledger ok.  With `stop`
    the streams are stopped first, so the ledger and the device's last STATUS see the same frames."""
    if stop:
        traffic.stop_streams()
    traffic.status()
    led = traffic.ledger()
    tot = led.total
    lost = {k: getattr(tot, k) for k in ("dropped_device", "lost_link", "lost_port_gone", "lost_recording",
                                          "lost_before_hello", "not_reported", "unexplained") if getattr(tot, k)}
    out = [f"ledger {led.verdict}: {tot.line()}"] if led.verdict != "ok" else []
    return out + ([f"samples lost: {lost} ({tot.line()})"] if lost else [])


#: kinds whose sample is a conversion the loop starts one period ahead (the SHT31's single shot):
#: after a pass a busy host made late (by less than a period, so no overrun), the next read can
#: come before the conversion ends and the healthy chip NACKs it, a SENSOR mark and a counted
#: sensor error (firmware/stream.py reads at the slot's time whatever the conversion's age)
CONVERSION_KINDS = frozenset({"sht31"})


def sensor_trouble(kind: str, frames: list[Frame], st) -> list[str]:
    """What says a healthy sensor's stream failed its sensor: samples marked missing for a sensor
    cause or sensor errors in its STATUS record `st` (a `StreamStatus`), or offline.  For a
    CONVERSION_KINDS chip, errors are allowed but each must be marked and none may take it offline."""
    out = [] if st.online else ["offline"]
    if kind in CONVERSION_KINDS:
        return out + ([f"{st.sensor_errors} sensor errors but {st.missing_sensor} samples marked"]
                      if st.sensor_errors > st.missing_sensor + (frames[-1].count if frames else 0) else [])
    marked = [f.seq for f in frames if f.flags & wire.FLAG_MISS_SENSOR]
    out += [f"sensor marks in frames {marked[:5]}"] if marked else []
    return out + ([f"{st.sensor_errors} sensor errors"] if st.sensor_errors else [])


def data_by_stream(frames: list[Frame]) -> dict[int, list[Frame]]:
    out: dict[int, list[Frame]] = {}
    for f in frames:
        if f.type == wire.T_DATA:
            out.setdefault(f.stream, []).append(f)
    return out
