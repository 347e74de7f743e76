"""Publish one board's decoded stream to an MQTT broker (`monitor --publish mqtt://HOST/PREFIX`).

The monitor's session stays the one source of truth: the publisher hangs on its hooks
(`Session.on_frame` for HELLO, STATUS and EVENT; `LiveFeed.on_poll` for the DATA batches of each
poll) and turns what they give into the payloads `host.fleet.topics` documents.  paho-mqtt does
the network work in its own thread, QoS 1, reconnecting by itself; while the broker is away it
keeps up to `queue_limit` messages.  A message the client refuses (queue full) is never sent and
takes no `seq`: its samples go to the ledger line `lost_before_broker`, so the collector's seq gaps
are the broker hop's alone.

Two things a mature MQTT client does that paho-mqtt 2.2 leaves to its user (see `Publisher`):
messages are handed to paho only between CONNACK and the next disconnect, and a QoS 1 message the
broker has visibly skipped forces a reconnect, the only moment MQTT 3.1.1 resends it.
"""
from __future__ import annotations

import json
import math
import os
import socket
import ssl
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import paho.mqtt.client as mqtt

from firmware import wire
from host.fleet.topics import SCHEMA, BrokerUrl, FleetError, topic

LEDGER_INTERVAL_S = 1.0
CONNECT_TIMEOUT_S = 5.0
CLOSE_TIMEOUT_S = 5.0
QUEUE_LIMIT = 20000
STALL_S = 5.0           # a later message acknowledged this long before an earlier one: the broker skipped it
MAX_PAYLOAD = 268_435_455


@dataclass(frozen=True, slots=True)
class Credentials:
    """What brokers ask of a client: a user and password, TLS with a CA file (or the system's)."""
    username: str | None = None
    password: str | None = None
    tls: bool = False
    cafile: str | None = None
    insecure: bool = False  # TLS without checking the broker's certificate (test brokers)


def make_client(client_id: str, url: BrokerUrl, cred: Credentials, clean: bool = True) -> mqtt.Client:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean)
    user = cred.username if cred.username is not None else url.username
    if user is not None:
        c.username_pw_set(user, cred.password if cred.password is not None else url.password)
    if cred.tls or url.tls:
        try:
            c.tls_set(ca_certs=cred.cafile, cert_reqs=ssl.CERT_NONE if cred.insecure else ssl.CERT_REQUIRED)
        except (OSError, ssl.SSLError, ValueError) as e:
            raise FleetError(f"TLS setup failed ({cred.cafile or 'system CAs'}: {e})") from None
        if cred.insecure:
            c.tls_insecure_set(True)
    c.reconnect_delay_set(min_delay=0.1, max_delay=2)
    return c


def connect(c: mqtt.Client, url: BrokerUrl, timeout: float = CONNECT_TIMEOUT_S, keepalive: int = 10) -> None:
    """Connect and wait for the broker's answer: an unreachable broker, a TLS failure or refused
    credentials is one FleetError line; afterwards paho's loop thread reconnects by itself."""
    answer: list = []
    ready = threading.Event()
    previous = c.on_connect

    def on_connect(client, userdata, flags, reason, props):
        answer.append(reason)
        ready.set()
        if previous is not None:
            previous(client, userdata, flags, reason, props)

    c.on_connect = on_connect
    try:
        c.connect(url.host, url.port, keepalive=keepalive)
    except ssl.SSLError as e:
        raise FleetError(f"{url}: TLS handshake failed ({e.reason or e})") from None
    except OSError as e:
        raise FleetError(f"{url}: broker unreachable ({e.strerror or e})") from None
    c.loop_start()
    if not ready.wait(timeout):
        c.loop_stop()
        c.disconnect()
        raise FleetError(f"{url}: no answer from the broker within {timeout:g} s")
    c.on_connect = previous
    if answer[0].is_failure:
        c.loop_stop()
        c.disconnect()
        raise FleetError(f"{url}: the broker refused the connection ({answer[0]})")


class Publisher:
    """One board's publisher.

    Sending only while CONNACKed: paho writes a PUBLISH as soon as its socket exists, so after a
    reconnect it may go out between CONNECT and CONNACK.  MQTT allows that and mosquitto accepts it,
    but amqtt 0.12.1 drops it without a PUBACK, and paho resends an unacknowledged message only on
    the next reconnect: on a healthy connection it would stay in flight for ever.  So `send` hands a
    message to paho only while `connected` (set by CONNACK, cleared by `on_pre_connect` before paho
    opens a new socket and by the disconnect); otherwise it is held here, in order, under the same
    `queue_limit`, and `_on_connect` hands the held messages over right after CONNACK.  paho's own
    resends of what it kept from the lost connection follow CONNACK too.  Both brokers accept this
    order, and `unacked` and `close` count the held messages, so a monitor closing across a broker
    restart still waits for its final ledger.

    Stall watchdog: a broker acknowledges QoS 1 messages in the order it received them (MQTT 3.1.1
    section 4.6), so a message handed on this connection that stays unacknowledged `stall_s` after a
    later one was acknowledged was dropped.  `watch` (called from `on_poll` and `close`) then shuts the
    socket down: paho reconnects, resends it with DUP, and the reconnect announcement (`connects`)
    is the collector's outage evidence, so nothing is `unexplained`; `stalls` counts these in the
    ledger's `hop`.  A slow broker that acknowledges nothing, or a queue paho has not written yet,
    never trips it: only being overtaken does.

    Args:
        url: the broker and topic prefix.
        board: the board's topic name (`topics.board_id` of its identity).
        cred: user, password, TLS.
        queue_limit: messages paho may hold while the broker is slow or away (beyond: lost, counted).
        client: a ready paho client (tests); default: one made from `url` and `cred`.
        stall_s: how long a message may stay overtaken by a later acknowledgement (see above).
    """

    def __init__(self, url: BrokerUrl, board: str, cred: Credentials = Credentials(),
                 queue_limit: int = QUEUE_LIMIT, client: mqtt.Client | None = None,
                 clock: Callable[[], float] = time.time, identity: str = "", stall_s: float = STALL_S) -> None:
        self.url, self.board, self.identity = url, board, identity
        self.pub = os.urandom(6).hex()
        self._clock = clock
        self._lock = threading.RLock()
        self.client = client if client is not None else make_client(f"pagerless-pub-{board}-{self.pub}"[:64],
                                                                     url, cred)
        self.queue_limit = queue_limit
        self.client.max_queued_messages_set(0)  # the limit is ours: held + paho's
        self.client.will_set(self._t("online"), json.dumps({"online": False, "pub": self.pub}), qos=1, retain=True)
        self.client.on_pre_connect = self._on_pre_connect
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self._held: deque[tuple[str, str, bool]] = deque()
        self._track_lock = threading.Lock()   # never held while calling paho (on_publish runs under its lock)
        self._inflight: dict[int, tuple[int, int]] = {}   # mid -> (hand-over order, connection)
        self._early: set[int] = set()                     # acknowledged before `_hand` recorded them
        self._order = 0
        self._acked_hi = -1
        self._epoch = 0
        self._overtaken: tuple[int, float] | None = None  # (order, monotonic time first seen overtaken)
        self.stall_s = stall_s
        self.stalls = 0
        self.seq = 0              # next seq
        self.published = 0        # samples handed to the client (`ps` of the next message)
        self.messages = 0
        self.lost_samples = 0     # lost before the broker (the client refused them)
        self.lost_messages = 0
        self.lost_reasons: dict[str, int] = {}
        self.connects = 0
        self._session = None
        self._next_ledger = 0.0
        self.connected = False    # CONNACKed: messages go to paho; otherwise they are held

    # -- connection
    def start(self) -> None:
        connect(self.client, self.url)

    def _on_pre_connect(self, client, userdata) -> None:
        with self._lock:
            self.connected = False

    def _on_connect(self, client, userdata, flags, reason, props) -> None:
        if reason.is_failure:
            return
        with self._lock:
            self.connected = True
            self.connects += 1
            with self._track_lock:
                self._epoch += 1
                self._overtaken = None
            self._hand(self._t("online"), json.dumps({"online": True, "pub": self.pub, "t": self._clock(),
                                                      "identity": self.identity, "connects": self.connects}), True)
            while self._held and self.connected:
                self._hand(*self._held.popleft())

    def _on_disconnect(self, client, userdata, flags, reason, props) -> None:
        with self._lock:
            self.connected = False

    def _on_publish(self, client, userdata, mid, reason, props) -> None:
        with self._track_lock:
            e = self._inflight.pop(mid, None)
            if e is None:
                self._early.add(mid)
            elif e[0] > self._acked_hi:
                self._acked_hi = e[0]

    def _hand(self, t: str, data: str, retain: bool):
        """Give one message to paho (caller holds `_lock`, `connected`); its info."""
        info = self.client.publish(t, data, qos=1, retain=retain)
        if info.rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            with self._track_lock:
                if info.mid in self._early:
                    self._early.discard(info.mid)
                else:
                    self._inflight[info.mid] = (self._order, self._epoch)
                self._order += 1
        return info

    def _publish(self, t: str, data: str, retain: bool) -> int | str:
        """Hand over or hold (caller holds `_lock`): an rc, or why it was refused."""
        if self.unacked() >= self.queue_limit:
            return mqtt.MQTT_ERR_QUEUE_SIZE
        if len(data) > MAX_PAYLOAD:
            return "Payload too large."
        if not self.connected:
            self._held.append((t, data, retain))
            return mqtt.MQTT_ERR_SUCCESS
        try:
            return self._hand(t, data, retain).rc
        except (ValueError, OSError) as e:  # socket gone mid-call
            return str(e)

    def watch(self, now: float | None = None) -> bool:
        """The stall watchdog (see the class): True when it forced a reconnect."""
        now = time.monotonic() if now is None else now
        with self._track_lock:
            epoch = self._epoch
            oldest = min((o for o, e in self._inflight.values() if e == epoch), default=None)
            if not self.connected or oldest is None or self._acked_hi <= oldest:
                self._overtaken = None
                return False
            if self._overtaken is None or self._overtaken[0] != oldest:
                self._overtaken = (oldest, now)
                return False
            if now - self._overtaken[1] < self.stall_s:
                return False
            self._overtaken = None
            self.stalls += 1
        print(f"monitor: publish: the broker acknowledged later messages but not one sent {self.stall_s:g} s "
              "earlier; reconnecting so it is resent", file=sys.stderr)
        sock = self.client.socket()
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return True

    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> str:
        """Final ledger, offline, wait (bounded) for the broker's acknowledgements; a summary line.

        The wait is for the client's whole queue, connected or not: a monitor closing while the
        broker restarts would otherwise disconnect with its last messages (the final ledger among
        them) still queued, and paho's reconnect, due within its 2 s back-off, would never come."""
        if self._session is not None:
            self.ledger(self._session, final=True)
        with self._lock:
            self._publish(self._t("online"), json.dumps({"online": False, "pub": self.pub, "t": self._clock()}),
                          True)
        deadline = time.monotonic() + timeout
        while self.unacked() and time.monotonic() < deadline:
            self.watch()
            time.sleep(0.02)
        unacked = self.unacked()
        self.client.disconnect()
        self.client.loop_stop()
        line = f"published {self.messages} messages ({self.published} samples) to {self.url} as {self.board}"
        if self.lost_samples:
            line += f"; {self.lost_samples} samples in {self.lost_messages} messages lost before the broker"
        if self.stalls:
            line += f"; {self.stalls} reconnects to resend a message the broker skipped"
        if unacked:
            line += f"; {unacked} messages not acknowledged by the broker at exit"
        return line

    def unacked(self) -> int:
        """QoS 1 messages the broker has not acknowledged yet (held while away included)."""
        return len(self._held) + len(getattr(self.client, "_out_messages", ()))

    # -- hooks
    def attach(self, feed) -> None:
        """Hang on a LiveFeed: its session's frames and its polls."""
        self._session = feed.session
        feed.session.on_frame = self.on_frame
        feed.on_poll = self.on_poll

    def on_frame(self, f, t: float) -> None:
        s = self._session
        if f.type == wire.T_HELLO and s is not None:
            self.hello(s, f, t)
        elif f.type == wire.T_STATUS:
            st = f.status()
            self.send("status", {"boot_id": f"{f.boot_id:08x}", "session": f.session, "dev_seq": f.seq,
                                 "uptime_ms": st.uptime_ms, "free_heap": st.free_heap,
                                 "loop_overruns": st.loop_overruns, "frames_sent": st.frames_sent,
                                 "frames_dropped": st.frames_dropped,
                                 "reset_cause": wire.RESET_CAUSE_NAMES.get(st.reset_cause, str(st.reset_cause)),
                                 "streams": [{"stream": _name(s, x.stream), "online": x.online,
                                              "sensor_errors": x.sensor_errors, "frames_built": x.frames_built,
                                              "frames_dropped": x.frames_dropped,
                                              "frames_skipped": x.frames_skipped} for x in st.streams]}, t)
        elif f.type == wire.T_EVENT:
            ev = f.event()
            self.send("event", {"boot_id": f"{f.boot_id:08x}", "session": f.session, "dev_seq": f.seq,
                                "name": ev.name, "stream": _name(s, ev.stream) if ev.stream != wire.NO_STREAM
                                else None, "arg": ev.arg, "text": ev.text}, t)

    def on_poll(self, batches: list, now: float) -> None:
        for b in batches:
            self.batch(b)
        if self._session is not None and now >= self._next_ledger:
            self._next_ledger = now + LEDGER_INTERVAL_S
            self.ledger(self._session)
            self.watch()

    # -- payloads
    def hello(self, session, f, t: float) -> None:
        d = session.device
        streams = {st.name: {"id": st.id, "kind": st.kind, "period_us": st.period_us,
                             "channels": {c.name: c.unit for c in st.channels}}
                   for st in session.streams.values()}
        self.send("hello", {"schema": SCHEMA, "identity": self.identity, "boot_id": f"{f.boot_id:08x}",
                            "session": f.session, "board": d.board, "firmware": d.fw, "streams": streams,
                            "hello": d.hello}, t, retain=True)

    def batch(self, b) -> None:
        n = b.count
        values = {}
        for ch, arr in b.values.items():
            vals = arr.tolist()
            if np.isnan(arr).any():
                vals = [None if v != v else v for v in vals]
            values[ch] = vals
        payload = {"boot_id": f"{b.boot_id:08x}", "session": b.session, "stream": b.name, "dev_seq": b.seq,
                   "gap_before": b.gap_before, "t0_us": int(b.t_us[0]) if n else 0,
                   "dt_us": int(b.t_us[1] - b.t_us[0]) if n > 1 else 0, "n": n, "values": values}
        if b.missing.any():
            payload["missing"] = np.flatnonzero(b.missing).tolist()
        self.send("data", payload, b.t_host, samples=n, stream=b.name)

    def ledger(self, session, final: bool = False) -> None:
        rep = session.ledger.report().as_json()
        tot = rep["total"]
        host = tot["delivered"] + tot["missing_overrun"] + tot["missing_sensor"] + tot["missing_mixed"]
        hop = {"host_samples": host, "published": self.published, "lost_before_broker": self.lost_samples,
               "lost_messages": self.lost_messages, "lost_reasons": dict(self.lost_reasons),
               "held": host - self.published - self.lost_samples, "connects": self.connects,
               "stalls": self.stalls}
        self.send("ledger", {"ledger": rep, "hop": hop, "final": final}, self._clock(), retain=True)

    def send(self, kind: str, payload: dict, t: float, retain: bool = False, samples: int = 0,
             stream: str | None = None) -> bool:
        """One sequenced message; False (and the samples counted lost) when the client refused it."""
        with self._lock:
            msg = {"pub": self.pub, "seq": self.seq, "ps": self.published, "t": t, "tp": self._clock(), **payload}
            try:
                data = json.dumps(msg, separators=(",", ":"), allow_nan=False)
            except ValueError:
                data = json.dumps(_finite(msg), separators=(",", ":"))
            rc = self._publish(topic(self.url.prefix, self.board, kind, stream), data, retain)
            if rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):  # NO_CONN: kept, sent on reconnect
                self.seq += 1
                self.published += samples
                self.messages += 1
                return True
            why = mqtt.error_string(rc) if isinstance(rc, int) else rc
            self.lost_messages += 1
            self.lost_samples += samples
            self.lost_reasons[why] = self.lost_reasons.get(why, 0) + 1
            if self.lost_messages == 1:
                print(f"monitor: publish: lost before the broker ({why}); counted in the ledger", file=sys.stderr)
            return False

    def _t(self, kind: str) -> str:
        return topic(self.url.prefix, self.board, kind)


def _name(session, sid: int) -> str:
    st = session.streams.get(sid) if session is not None else None
    return st.name if st is not None else f"stream{sid}"


def _finite(x):
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite(v) for v in x]
    return x
