"""Synthetic device byte streams built with the wire helpers (tests, benchmarks, demos).

Frames carry known raw values so a test can check physical values end to end:
IMU (MPU-6050, +-2 g, +-250 deg/s): accel_x raw = 1638 * (k % 10) -> 0.1 g steps; the analog
stream's raw value 65535 * k / 100 (mod 65536) -> vref * fraction.
"""
from __future__ import annotations

import struct

from firmware import wire
from host.protocol.encoder import encode_data, encode_event, encode_hello, encode_status
from host.protocol.frames import Status, StreamStatus

BOOT_ID = 0x1234ABCD
IMU_FORMAT = ">7h"
ANALOG_FORMAT = ">H"

IMU_CONFIG = {"accel_fs_g": 2, "gyro_fs_dps": 250}
ANALOG_CONFIG = {"vref_mv": 3300, "full_scale": 65535}


def hello_info(imu_period_us: int = 1000, imu_batch: int = 10, analog_period_us: int = 10000,
               analog_batch: int = 5) -> dict:
    return {
        "board": "synthetic", "firmware": "0.0-test", "ticks_period": 1 << 30,
        "streams": [
            {"id": 0, "name": "imu", "kind": "mpu6050", "period_us": imu_period_us, "batch": imu_batch,
             "sample_format": IMU_FORMAT, "sample_size": 14,
             "channels": [["accel_x", "raw"], ["accel_y", "raw"], ["accel_z", "raw"], ["temperature", "raw"],
                          ["gyro_x", "raw"], ["gyro_y", "raw"], ["gyro_z", "raw"]],
             "config": IMU_CONFIG},
            {"id": 1, "name": "a0", "kind": "analog", "period_us": analog_period_us, "batch": analog_batch,
             "sample_format": ANALOG_FORMAT, "sample_size": 2, "channels": [["voltage", "raw"]],
             "config": ANALOG_CONFIG},
        ],
    }


def imu_sample(k: int) -> bytes:
    """Raw IMU sample number k: accel_x = 1638*(k%10) (0.1 g steps), accel_z = 16384 (1 g),
    temperature raw 0 (36.53 degC), gyro_x = 131*(k%5) (1 deg/s steps)."""
    return struct.pack(IMU_FORMAT, 1638 * (k % 10), 0, 16384, 0, 131 * (k % 5), 0, 0)


def imu_batches(n_frames: int, batch: int = 10, period_us: int = 1000, boot_id: int = BOOT_ID,
                seq0: int = 1, t0_us: int = 0, skip_seqs: tuple[int, ...] = (),
                missing: dict[int, tuple[int, ...]] | None = None) -> list[bytes]:
    """Wire frames of IMU batches; frames with seq in `skip_seqs` are left out (a gap)."""
    out = []
    for j in range(n_frames):
        seq = seq0 + j
        k0 = j * batch
        if seq in skip_seqs:
            continue
        body = b"".join(imu_sample(k0 + i) for i in range(batch))
        out.append(encode_data(0, boot_id, seq, (t0_us + k0 * period_us) % (1 << 30), period_us, body, 14,
                               (missing or {}).get(seq, ())))
    return out


def analog_batches(n_frames: int, batch: int = 5, period_us: int = 10000, boot_id: int = BOOT_ID,
                   seq0: int = 1) -> list[bytes]:
    out = []
    for j in range(n_frames):
        body = b"".join(struct.pack(ANALOG_FORMAT, (65535 * (j * batch + i) // 100) % 65536)
                        for i in range(batch))
        out.append(encode_data(1, boot_id, seq0 + j, j * batch * period_us, period_us, body, 2))
    return out


def status(boot_id: int = BOOT_ID, seq: int = 1, uptime_ms: int = 5000, free_heap: int = 123456,
           loop_overruns: int = 2, imu_dropped: int = 0, imu_built: int = 0, analog_built: int = 0) -> bytes:
    """A STATUS: the imu (stream 0) built ``imu_built`` frames and the ring refused
    ``imu_dropped`` of them; the analog stream (1) built ``analog_built``."""
    st = Status(uptime_ms, free_heap, loop_overruns, 100, imu_dropped, wire.RC_POWER_ON, 0, 0,
                [StreamStatus(0, True, 0, imu_built, imu_dropped, 0, 0, 0),
                 StreamStatus(1, True, 0, analog_built, 0, 0, 0, 0)])
    return encode_status(boot_id, seq, st)


def boot_stream(n_imu: int = 20, skip_seqs: tuple[int, ...] = (), boot_id: int = BOOT_ID,
                text: bytes = b"MicroPython v1.29 on virtual\r\n") -> bytes:
    """A session as a board sends it after boot: text banner, HELLO (seq 0), events, data, STATUS."""
    parts = [text, encode_hello(boot_id, 0, hello_info()),
             encode_event(boot_id, 0, wire.EV_BOOT, text="booted")]
    imu = imu_batches(n_imu, boot_id=boot_id, skip_seqs=skip_seqs, seq0=0)
    ana = analog_batches(4, boot_id=boot_id, seq0=0)
    parts += imu[: len(imu) // 2] + ana + imu[len(imu) // 2:]
    parts.append(status(boot_id, 0, imu_dropped=len(skip_seqs), imu_built=n_imu, analog_built=4))
    return b"".join(parts)
