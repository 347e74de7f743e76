"""A seeded device + link + recorder simulation with ground truth, for the sample ledger's tests.

The simulated board runs boots of two streams (synthetic.hello_info: imu batch 10, a0 batch 5)
whose frames meet, at random, every fate the ledger names: overrun skips, ring drops, missing
marks of each cause, bit flips on the link, the port going away, and records of the recording
damaged on disk.  Transit faults come in episodes fenced by STATUS frames (as the firmware's
periodic STATUS fences them), so each gap has one cause to find; the truth counts every sample.
"""
from __future__ import annotations

import random
import struct
from collections import Counter
from pathlib import Path

from firmware import wire
from host.device.recording import FILE_HEADER_SIZE, REC_HEADER_SIZE, Recorder
from host.protocol.encoder import encode_data, encode_hello, encode_status
from host.protocol.frames import Status, StreamStatus
from host.testkit import synthetic

BATCH = {0: 10, 1: 5}
SIZE = {0: 14, 1: 2}
CAUSES = (wire.FLAG_MISS_OVERRUN, wire.FLAG_MISS_SENSOR, wire.FLAG_MISS_OVERRUN | wire.FLAG_MISS_SENSOR)
CAUSE_LINE = {wire.FLAG_MISS_OVERRUN: "missing_overrun", wire.FLAG_MISS_SENSOR: "missing_sensor",
              wire.FLAG_MISS_OVERRUN | wire.FLAG_MISS_SENSOR: "missing_mixed"}


def _sample(sid: int, k: int) -> bytes:
    return synthetic.imu_sample(k) if sid == 0 else struct.pack(">H", k % 65536)


def _flip(rng: random.Random, frame: bytes) -> bytes:
    """One byte of the frame's COBS body changed to another non-zero value: one corrupt segment."""
    b = bytearray(frame)
    i = rng.randrange(3, len(b) - 1)
    b[i] = rng.choice([v for v in range(1, 256) if v != b[i]])
    return bytes(b)


def scenario(seed: int, boots: int = 3, steps: int = 80, p_episode: float = 0.12,
             kinds: tuple[str, ...] = ("link", "port", "damage")) -> tuple[list[tuple[str, object]], Counter]:
    """(events, truth): events are ("rx", bytes), ("link", event name) and ("damaged", bytes)
    (received bytes whose record the disk later damages); truth counts samples per ledger line."""
    rng = random.Random(seed)
    ev: list[tuple[str, object]] = []
    truth: Counter = Counter()
    for _ in range(boots):
        boot = rng.getrandbits(31) | 1
        seq = {0: 0, 1: 0}
        built, dropped, skipped = Counter(), Counter(), Counter()
        n_status = 0

        def status() -> None:
            nonlocal n_status
            recs = [StreamStatus(s, True, 0, built[s], dropped[s], skipped[s], 0, 0) for s in (0, 1)]
            st = Status(1000, 50000, 0, 0, sum(dropped.values()), wire.RC_POWER_ON, 0, 0, recs)
            ev.append(("rx", encode_status(boot, n_status, st)))
            n_status += 1

        ev.append(("rx", encode_hello(boot, 0, synthetic.hello_info())))
        episode, left = None, 0
        for _step in range(steps):
            if episode is None and rng.random() < p_episode:
                status()
                episode, left = rng.choice(kinds), rng.randint(1, 6)
                if episode == "port":
                    ev.append(("link", "disconnected"))
            elif episode is None and rng.random() < 0.08:
                status()
            sid = rng.choice((0, 0, 1))
            b = BATCH[sid]
            s = seq[sid]
            seq[sid] += 1
            fate = rng.random()
            if fate < 0.05:
                skipped[sid] += 1
                truth["skipped_overrun"] += b
            else:
                built[sid] += 1
                marks, cause = (), 0
                if rng.random() < 0.2:
                    marks = tuple(sorted(rng.sample(range(b), rng.randint(1, b))))
                    cause = rng.choice(CAUSES)
                body = b"".join(_sample(sid, s * b + i) for i in range(b))
                frame = encode_data(sid, boot, s, s * b * 1000, 1000, body, SIZE[sid], marks,
                                    **({"cause": cause} if marks else {}))
                if fate < 0.12:
                    dropped[sid] += 1
                    truth["dropped_device"] += b
                elif episode == "link" and rng.random() < 0.6:
                    ev.append(("rx", _flip(rng, frame)))
                    truth["lost_link"] += b
                elif episode == "port":
                    truth["lost_port_gone"] += b
                elif episode == "damage":
                    ev.append(("damaged", frame))
                    truth["lost_recording"] += b
                else:
                    ev.append(("rx", frame))
                    truth["delivered"] += b - len(marks)
                    if marks:
                        truth[CAUSE_LINE[cause]] += len(marks)
            if episode is not None:
                left -= 1
                if left == 0:
                    if episode == "port":
                        ev.append(("link", "reconnected"))
                    status()
                    episode = None
        if episode == "port":
            ev.append(("link", "reconnected"))
        status()  # the firmware sends one when it leaves streaming
    truth["produced"] = sum(truth.values())
    return ev, truth


def write_recording(path: Path, events: list[tuple[str, object]], rng_seed: int = 0) -> int:
    """The events as a recording, one record each, with every "damaged" record then damaged on
    disk (a payload byte flipped: its CRC fails and the reader skips it).  Returns records damaged."""
    spots = []
    with Recorder(path, clock_ns=lambda: 0) as rec:
        t = 1_700_000_000 * 10**9
        rec.meta({"port": "sim", "identity": "scenario"}, t_ns=t)
        for kind, x in events:
            t += 1_000_000
            if kind == "link":
                rec.link(str(x), "", t_ns=t)
                continue
            if kind == "damaged":
                spots.append(FILE_HEADER_SIZE + rec.bytes_written + REC_HEADER_SIZE)
            rec.rx(bytes(x), t_ns=t)
    data = bytearray(path.read_bytes())
    for off in spots:
        data[off] ^= 0xFF
    path.write_bytes(bytes(data))
    return len(spots)
