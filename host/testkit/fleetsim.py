"""Synthetic boards for the fleet's tests and bench.

`SimBoard` is the whole host path without a serial port: wire frames at a config's rates (the
default config's imu and a0 streams: 200 + 100 samples/s) go through a real `Session` (decoder,
units, the sample ledger) into a real `Publisher`, exactly as `monitor --publish` wires them.
`LoadBoard` is the bench's: the same payload shapes sent straight through a `Publisher`, with a
ledger message that says what it published, so hundreds of boards fit in one process.
"""
from __future__ import annotations

import struct

from firmware import wire
from host.fleet.publish import CLOSE_TIMEOUT_S, Credentials, Publisher
from host.fleet.topics import BrokerUrl
from host.monitoring.session import Session
from host.protocol.encoder import encode_data, encode_hello, encode_status
from host.protocol.frames import Status, StreamStatus
from host.testkit import synthetic

IMU_PERIOD_US, IMU_BATCH = 5000, 25       # firmware/config.json's imu
A0_PERIOD_US, A0_BATCH = 10000, 150       # ... and a0
_IMU = struct.pack(synthetic.IMU_FORMAT, 1638, 0, 16384, 0, 131, 0, 0)


class SimBoard:
    """One board's frames through Session + Publisher; call `step(now)` often (each ~0.1 s)."""

    def __init__(self, url: BrokerUrl, name: str, boot_id: int, t0: float, cred: Credentials = Credentials(),
                 queue_limit: int = 20000) -> None:
        self.session = Session()
        self.on_poll = None
        self.publisher = Publisher(url, name, cred, queue_limit=queue_limit, identity=f"sim:{name}")
        self.publisher.attach(self)
        self.boot_id, self.t0 = boot_id, t0
        self.built = [0, 0]
        self.seq = 1
        self._next_status = t0 + 1.0
        self._hello = False

    def step(self, now: float) -> None:
        out = bytearray()
        if not self._hello:
            out += encode_hello(self.boot_id, 0, synthetic.hello_info(IMU_PERIOD_US, IMU_BATCH, A0_PERIOD_US,
                                                                        A0_BATCH))
            self._hello = True
        el_us = int((now - self.t0) * 1e6)
        for sid, period, batch, sample in ((0, IMU_PERIOD_US, IMU_BATCH, _IMU), (1, A0_PERIOD_US, A0_BATCH, b"\x80\x00")):
            while (self.built[sid] + 1) * period * batch <= el_us:
                k = self.built[sid]
                out += encode_data(sid, self.boot_id, k & 0xFFFF, (k * batch * period) % (1 << 30), period,
                                   sample * batch, len(sample))
                self.built[sid] += 1
        if now >= self._next_status:
            self._next_status = now + 1.0
            out += self.status()
        batches = self.session.feed(bytes(out), now)
        self.on_poll(batches, now)

    def status(self) -> bytes:
        st = Status(int((self._next_status - self.t0) * 1000), 100000, 0, sum(self.built), 0, wire.RC_POWER_ON, 0, 0,
                    [StreamStatus(i, True, 0, self.built[i], 0, 0, 0, 0) for i in (0, 1)])
        self.seq += 1
        return encode_status(self.boot_id, self.seq & 0xFFFF, st)

    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> str:
        return self.publisher.close(timeout)


class LoadBoard:
    """A board for the bench: payloads as `Publisher.batch` makes them, without decoding frames."""

    def __init__(self, url: BrokerUrl, name: str, t0: float, queue_limit: int = 20000) -> None:
        self.publisher = Publisher(url, name, queue_limit=queue_limit, identity=f"load:{name}")
        self.t0 = t0
        self.built = [0, 0]
        self.host = 0
        self._next_ledger = t0 + 1.0
        self._vals = {sid: {ch: [0.5] * b for ch in chans} for sid, b, chans in (
            (0, IMU_BATCH, ("accel_x", "accel_y", "accel_z", "temperature", "gyro_x", "gyro_y", "gyro_z")),
            (1, A0_BATCH, ("voltage",)))}

    def start(self) -> None:
        self.publisher.start()

    def step(self, now: float) -> None:
        el_us = int((now - self.t0) * 1e6)
        for sid, name, period, batch in ((0, "imu", IMU_PERIOD_US, IMU_BATCH), (1, "a0", A0_PERIOD_US, A0_BATCH)):
            while (self.built[sid] + 1) * period * batch <= el_us:
                k = self.built[sid]
                self.host += batch
                self.publisher.send("data", {"boot_id": "0000b00b", "session": 1, "stream": name, "dev_seq": k,
                                             "gap_before": 0, "t0_us": k * batch * period, "dt_us": period,
                                             "n": batch, "values": self._vals[sid]}, now, samples=batch, stream=name)
                self.built[sid] += 1
        if now >= self._next_ledger:
            self._next_ledger = now + 1.0
            self.ledger(now)

    def ledger(self, now: float, final: bool = False) -> None:
        p = self.publisher
        total = {"produced": self.host, "delivered": self.host, "unexplained": 0, "balanced": True}
        p.send("ledger", {"ledger": {"verdict": "ok", "total": total}, "final": final,
                          "hop": {"host_samples": self.host, "published": p.published,
                                  "lost_before_broker": p.lost_samples,
                                  "held": self.host - p.published - p.lost_samples}}, now, retain=True)
