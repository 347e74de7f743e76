"""The publisher against a broker that loses QoS 1 messages the way amqtt 0.12.1 does (a tiny fake
MQTT 3.1.1 broker on 127.0.0.1): a PUBLISH that arrives between CONNECT and CONNACK is dropped
without a PUBACK, and paho resends an unacknowledged message only on a reconnect.  The publisher
must not write before CONNACK, and a message the broker skipped after CONNACK must come back
through the stall watchdog's reconnect."""
from __future__ import annotations

import json
import socket
import struct
import threading
import time

from host.fleet.publish import Publisher
from host.fleet.topics import parse_url


class FakeBroker:
    """CONNACK after `connack_delay[n]` s on connection n; PUBLISHes before it are dropped unanswered
    (amqtt's behaviour); `skip(n, payload)` True drops one after CONNACK too; everything else is
    acknowledged in order."""

    def __init__(self, connack_delay: dict[int, float] | None = None, skip=None) -> None:
        self.connack_delay = connack_delay or {}
        self.skip = skip or (lambda conn, payload: False)
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.port = self.srv.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.acked: list[dict] = []
        self.dropped_early: list[dict] = []
        self.skipped: list[dict] = []
        self.dups = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                s, _ = self.srv.accept()
            except OSError:
                return
            with self.lock:
                self.conns.append(s)
                n = len(self.conns)
            threading.Thread(target=self._serve, args=(s, n), daemon=True).start()

    def _read(self, s: socket.socket, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = s.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return bytes(buf)

    def _serve(self, s: socket.socket, n: int) -> None:
        acked = threading.Event()
        try:
            while True:
                head = self._read(s, 1)[0]
                length, mult = 0, 1
                while True:
                    b = self._read(s, 1)[0]
                    length += (b & 0x7F) * mult
                    mult *= 128
                    if not b & 0x80:
                        break
                body = self._read(s, length)
                kind = head >> 4
                if kind == 1:  # CONNECT
                    threading.Timer(self.connack_delay.get(n, 0.0), self._connack, (s, acked)).start()
                elif kind == 3:  # PUBLISH, QoS 1
                    tlen = struct.unpack_from(">H", body)[0]
                    pid = body[2 + tlen:4 + tlen]
                    msg = json.loads(body[4 + tlen:])
                    with self.lock:
                        self.dups += bool(head & 0x08)
                        if not acked.is_set():
                            self.dropped_early.append(msg)
                            continue
                        if self.skip(n, msg):
                            self.skipped.append(msg)
                            continue
                        self.acked.append(msg)
                    s.sendall(b"\x40\x02" + pid)
                elif kind == 12:  # PINGREQ
                    s.sendall(b"\xd0\x00")
                elif kind == 14:  # DISCONNECT
                    return
        except (EOFError, OSError):
            return
        finally:
            s.close()

    @staticmethod
    def _connack(s: socket.socket, acked: threading.Event) -> None:
        acked.set()  # before the send: the client may answer CONNACK before this thread runs again
        try:
            s.sendall(b"\x20\x02\x00\x00")
        except OSError:
            pass

    def drop_connection(self, n: int) -> None:
        """The broker side goes away (as a restart would); paho reconnects."""
        self.conns[n - 1].shutdown(socket.SHUT_RDWR)

    def seqs(self, pub: str) -> set[int]:
        with self.lock:
            return {m["seq"] for m in self.acked if m.get("pub") == pub and "seq" in m}

    def close(self) -> None:
        self.srv.close()


def _send_for(p: Publisher, seconds: float, until=None, watch: bool = False) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end and not (until and until()):
        p.send("event", {"name": "tick"}, time.time())
        if watch:
            p.watch()
        time.sleep(0.01)


def test_nothing_is_written_between_connect_and_connack_after_a_reconnect():
    broker = FakeBroker(connack_delay={2: 0.8})
    p = Publisher(parse_url(f"mqtt://127.0.0.1:{broker.port}/lab"), "b1")
    try:
        p.start()
        _send_for(p, 0.3)
        broker.drop_connection(1)
        _send_for(p, 6.0, until=lambda: p.connects >= 2)
        _send_for(p, 0.5)
        line = p.close()
    finally:
        broker.close()
    assert broker.dropped_early == [], broker.dropped_early[:3]  # old code: messages sent before CONNACK
    assert p.connects == 2 and p.unacked() == 0 and "not acknowledged" not in line, line
    assert broker.seqs(p.pub) == set(range(p.seq)), line
    assert p.stalls == 0


def test_a_message_the_broker_skipped_after_connack_is_resent_by_a_reconnect():
    skip_seq = 5
    broker = FakeBroker(skip=lambda conn, m: conn == 1 and m.get("seq") == skip_seq)
    p = Publisher(parse_url(f"mqtt://127.0.0.1:{broker.port}/lab"), "b2", stall_s=0.5)
    try:
        p.start()
        _send_for(p, 4.0, until=lambda: p.stalls and p.connects >= 2 and skip_seq in broker.seqs(p.pub), watch=True)
        line = p.close()
    finally:
        broker.close()
    assert [m["seq"] for m in broker.skipped] == [skip_seq]
    assert p.stalls == 1 and p.connects == 2, line  # the reconnect: the collector's outage evidence
    assert broker.dups >= 1  # resent with DUP
    assert broker.seqs(p.pub) == set(range(p.seq)) and p.unacked() == 0, line
    assert "1 reconnects to resend" in line and "not acknowledged" not in line, line


def test_a_slow_broker_that_acknowledges_nothing_is_not_a_stall():
    broker = FakeBroker(skip=lambda conn, m: conn == 1 and m.get("seq", -1) >= 3)
    p = Publisher(parse_url(f"mqtt://127.0.0.1:{broker.port}/lab"), "b3", stall_s=0.3)
    try:
        p.start()
        _send_for(p, 1.0, watch=True)
        assert p.stalls == 0 and p.connects == 1 and p.unacked() > 0
    finally:
        p.client.disconnect()
        p.client.loop_stop()
        broker.close()
