"""Collect a fleet from the broker into Parquet, with each board's ledger across the broker hop.

`Collector` subscribes to PREFIX/# (QoS 1, a persistent session where the broker keeps one, and
again on every reconnect).  paho's thread only queues what arrives; `run()` does the rest on the
caller's thread: checks each message (a foreign topic, bad JSON or a bad envelope is a counted
reject, never an exception), feeds the hop ledger (`host.fleet.hop`), buffers rows in the store
and, once per flush interval, writes the Parquet files, then each board's ledger
(OUT/_ledger/<board>.json) and the collector's own counters (OUT/_collector.json), which
`fleet status` reads.
"""
from __future__ import annotations

import json
import os
import queue
import sys
import time
from collections import deque
from collections.abc import Callable

from host.fleet.hop import ACTIVE_S, HopLedger
from host.fleet.publish import Credentials, connect, make_client
from host.fleet.store import Store
from host.fleet.topics import SCHEMA, BrokerUrl, Reject, check_envelope, parse_topic

FLUSH_INTERVAL_S = 1.0
RATE_WINDOW_S = 10.0
QUEUE_MAX = 200_000
_OUTAGE = "outage"


class Collector:
    """Args:
        url: the broker and the prefix to collect.
        out: the output folder.
        flush_interval: seconds between Parquet flushes (the most a kill -9 can lose).
        warn: where one-line warnings go (default: stderr, prefixed 'fleet: ').
    """

    def __init__(self, url: BrokerUrl, out, cred: Credentials = Credentials(),
                 flush_interval: float = FLUSH_INTERVAL_S, clock: Callable[[], float] = time.time,
                 warn: Callable[[str], None] | None = None, client_id: str | None = None) -> None:
        self.url = url
        self.warn = warn if warn is not None else (lambda line: print(f"fleet: {line}", file=sys.stderr))
        self.run_id = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + os.urandom(3).hex()
        self.store = Store(out, self.run_id, self.warn)
        self.hop = HopLedger()
        self.flush_interval = flush_interval
        self._clock = clock
        self._q: queue.Queue = queue.Queue(QUEUE_MAX)
        self.client = make_client(client_id or f"pagerless-collector-{abs(hash(str(self.store.out))):x}"[:64],
                                  url, cred, clean=False)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.messages = 0
        self.rejects: dict[str, int] = {}
        self.retained = 0
        self.connects = self.disconnects = 0
        self.latency: deque[float] = deque(maxlen=20_000)  # publisher's send -> collector's arrival, s
        self.samples = 0
        self._rates: dict[str, deque] = {}
        self._last_seen: dict[str, float] = {}
        self._hello: dict[str, dict] = {}

    # -- paho's thread
    def _on_connect(self, client, userdata, flags, reason, props) -> None:
        if reason.is_failure:
            return
        client.subscribe(f"{self.url.prefix}/#", qos=1)
        self.connects += 1
        if self.connects > 1:
            self._q.put((self._clock(), _OUTAGE, None, False))

    def _on_disconnect(self, client, userdata, flags, reason, props) -> None:
        self.disconnects += 1
        self._q.put((self._clock(), _OUTAGE, None, False))

    def _on_message(self, client, userdata, m) -> None:
        self._q.put((self._clock(), m.topic, m.payload, bool(m.retain)))

    # -- caller's thread
    def start(self) -> None:
        connect(self.client, self.url)

    def run(self, duration: float | None = None, stop: Callable[[], bool] = lambda: False) -> None:
        """Collect until `duration` seconds passed or `stop()` says so; flushes on the way out."""
        t_end = None if duration is None else time.monotonic() + duration
        next_flush = time.monotonic() + self.flush_interval
        try:
            while not stop() and (t_end is None or time.monotonic() < t_end):
                self.drain(min(0.1, max(next_flush - time.monotonic(), 0.0)))
                if time.monotonic() >= next_flush:
                    next_flush = time.monotonic() + self.flush_interval
                    self.flush()
        finally:
            self.drain(0.0)
            self.flush()

    def drain(self, timeout: float = 0.0, limit: int = 50_000) -> int:
        """Handle what arrived (waiting up to `timeout` for the first); at most `limit` messages."""
        n = 0
        try:
            item = self._q.get(timeout=timeout) if timeout > 0 else self._q.get_nowait()
            while True:
                self.handle(*item)
                n += 1
                if n >= limit:
                    break
                item = self._q.get_nowait()
        except queue.Empty:
            pass
        return n

    def handle(self, t: float, topic: str, payload: bytes | None, retained: bool) -> None:
        if topic == _OUTAGE:
            self.hop.outage()
            return
        self.messages += 1
        tp = parse_topic(self.url.prefix, topic)
        try:
            if tp is None:
                raise Reject("topic outside the layout")
            try:
                msg = json.loads(payload)
            except (ValueError, UnicodeDecodeError):
                raise Reject("payload is not JSON") from None
            msg = check_envelope(tp.kind, msg)
        except Reject as e:
            why = str(e)
            if why not in self.rejects:
                self.warn(f"rejected {topic}: {why} (counted; further ones silently)")
            self.rejects[why] = self.rejects.get(why, 0) + 1
            return
        board = tp.board
        if tp.kind == "online":
            self.hop.online_message(board, msg)
            return
        if tp.kind == "hello":
            self._hello[board] = msg
        if retained:  # a copy replayed at subscription: metadata only, outside the sequence
            self.retained += 1
            return
        if not self.hop.message(board, tp.kind, msg, t):
            return
        self._last_seen[board] = t
        if tp.kind == "data":
            self.store.data(board, tp.stream, msg, t)
            r = self._rates.setdefault(board, deque())
            r.append((t, msg["n"]))
            self.samples += msg["n"]
            if isinstance(msg.get("tp"), int | float):
                self.latency.append(t - msg["tp"])
        elif tp.kind in ("status", "event"):
            self.store.record(board, "_" + tp.kind, msg, t)

    def flush(self) -> None:
        self.store.flush()
        now = self._clock()
        for board in self.hop.boards:
            self.store.write_json(f"_ledger/{board}.json", self.board_state(board, now))
        self.store.write_json("_collector.json", self.state(now))

    # -- state
    def rates(self, board: str, now: float) -> tuple[float, float]:
        """(samples/s, DATA messages/s) over the last RATE_WINDOW_S."""
        r = self._rates.get(board, deque())
        while r and r[0][0] < now - RATE_WINDOW_S:
            r.popleft()
        if not r:
            return 0.0, 0.0
        span = max(now - r[0][0], 1.0)
        return sum(n for _, n in r) / span, len(r) / span

    def board_state(self, board: str, now: float) -> dict:
        rep = self.hop.board_report(board)
        sps, mps = self.rates(board, now)
        last = self._last_seen.get(board)
        online = self.hop.online.get(board, last is not None) and last is not None and now - last < ACTIVE_S
        rep["collector"] = {"stored": self.store.stored.get(board, 0), "buffered": self.store.buffered.get(board, 0),
                            "lost_collector": self.store.lost_collector.get(board, 0),
                            "received_all": sum(i.received_all for i in self.hop.boards[board].values())}
        hello = self._hello.get(board) or {}
        rep.update({"online": online, "last_seen": last, "written": now, "samples_per_s": round(sps, 2),
                    "messages_per_s": round(mps, 2), "board_name": hello.get("board"),
                    "firmware": hello.get("firmware")})
        return rep

    def state(self, now: float) -> dict:
        lat = sorted(self.latency)
        self.latency.clear()
        p = (lambda q: round(lat[min(int(q * len(lat)), len(lat) - 1)] * 1000, 2) if lat else None)
        return {"schema": SCHEMA, "run": self.run_id, "broker": str(self.url), "written": now,
                "messages": self.messages, "samples": self.samples, "latency_ms": {"p50": p(0.5), "p99": p(0.99),
                                                                                  "n": len(lat)},
                "retained": self.retained, "rejects": dict(self.rejects),
                "connects": self.connects, "disconnects": self.disconnects,
                "write_errors": dict(self.store.errors), "boards": sorted(self.hop.boards)}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
