"""The fleet's wire contract: broker URLs, the topic layout and the payload envelope (docs/fleet.md).

Topics, under a prefix the user picks (`mqtt://HOST/PREFIX`):

  PREFIX/<board>/online          retained; {"online": bool, "pub": ID, "t": ...}; the last will says false
  PREFIX/<board>/hello           retained; the board's metadata (HELLO, streams, channels and units)
  PREFIX/<board>/data/<stream>   one DATA frame's samples in physical units
  PREFIX/<board>/status          each STATUS
  PREFIX/<board>/event           each EVENT
  PREFIX/<board>/ledger          retained; the monitor's sample ledger + the publisher's own counters

Every payload is one JSON object (JSON because the rates of a sensor fleet are small: the default
config is ~10 DATA frames/s per board, and JSON keeps the broker's payloads readable by any tool).
Sequenced payloads carry the envelope `pub` (this publisher's random instance id), `seq` (0, 1, 2,
... per instance, over every topic but `online`) and `ps` (samples published by the instance before
this message); the collector finds what the broker hop lost from `seq` and how many samples that
was from `ps`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

SCHEMA = "pagerless.fleet/1"
KINDS = ("online", "hello", "data", "status", "event", "ledger")
SEQUENCED = frozenset({"hello", "data", "status", "event", "ledger"})
DEFAULT_PORT, DEFAULT_TLS_PORT = 1883, 8883
_UNSAFE = re.compile(r"[^A-Za-z0-9_.:-]")


class FleetError(Exception):
    """Bad input the user can fix (URL, options, broker refused us): one line, exit code 2."""


@dataclass(frozen=True, slots=True)
class BrokerUrl:
    host: str
    port: int
    prefix: str
    tls: bool = False
    username: str | None = None
    password: str | None = None

    def __str__(self) -> str:
        scheme = "mqtts" if self.tls else "mqtt"
        return f"{scheme}://{self.host}:{self.port}/{self.prefix}"


def parse_url(url: str) -> BrokerUrl:
    """`mqtt://[USER[:PASS]@]HOST[:PORT]/PREFIX` (mqtts:// for TLS, port 8883 by default)."""
    try:
        u = urlsplit(url)
        port = u.port
    except ValueError as e:
        raise FleetError(f"{url!r}: not a broker URL ({e})") from None
    if u.scheme not in ("mqtt", "mqtts") or not u.hostname:
        raise FleetError(f"{url!r}: expected mqtt://HOST[:PORT]/PREFIX (or mqtts:// for TLS)")
    prefix = u.path.strip("/")
    if not prefix or "+" in prefix or "#" in url:
        raise FleetError(f"{url!r}: the topic prefix after the host must be non-empty, without + or #")
    tls = u.scheme == "mqtts"
    return BrokerUrl(u.hostname, port if port is not None else (DEFAULT_TLS_PORT if tls else DEFAULT_PORT),
                     prefix, tls, unquote(u.username) if u.username else None,
                     unquote(u.password) if u.password is not None else None)


def board_id(kind: str, value: str) -> str:
    """A topic-safe board name from a `BoardIdentity` ("usb", "E66118604B1F4A2C" -> "usb-E661...")."""
    return f"{kind}-{_UNSAFE.sub('_', value)}"[:120]


def safe(name: str) -> str:
    """A topic level and folder name: no separators or wildcards, never starting with '_' (the
    collector's own partitions) or '.'."""
    s = _UNSAFE.sub("_", name)[:120]
    return "s" + s if not s or s[0] in "_." else s


def topic(prefix: str, board: str, kind: str, stream: str | None = None) -> str:
    return f"{prefix}/{board}/{kind}" + (f"/{safe(stream)}" if stream is not None else "")


@dataclass(frozen=True, slots=True)
class Topic:
    board: str
    kind: str
    stream: str | None


def parse_topic(prefix: str, name: str) -> Topic | None:
    """The parts of a topic under `prefix`, or None for anything this layout does not define."""
    head = prefix + "/"
    if not name.startswith(head):
        return None
    parts = name[len(head):].split("/")
    if len(parts) == 2 and parts[1] in KINDS and parts[1] != "data" and parts[0]:
        return Topic(parts[0], parts[1], None)
    if len(parts) == 3 and parts[1] == "data" and parts[0] and parts[2]:
        return Topic(parts[0], "data", parts[2])
    return None


class Reject(ValueError):
    """A message under the prefix that is not ours or not well formed (counted, never fatal)."""


def check_envelope(kind: str, msg: object) -> dict:
    """The payload as a dict whose envelope fields have the right types, or Reject saying why."""
    if not isinstance(msg, dict):
        raise Reject("payload is not a JSON object")
    if kind == "online":
        if not isinstance(msg.get("online"), bool):
            raise Reject("online payload without a boolean 'online'")
        return msg
    for key in ("seq", "ps"):
        v = msg.get(key)
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise Reject(f"'{key}' missing or not a non-negative integer")
    if not isinstance(msg.get("pub"), str) or not msg["pub"]:
        raise Reject("'pub' (publisher instance) missing")
    if type(msg.get("t")) not in (int, float):
        raise Reject("'t' (host time) missing or not a number")
    if kind == "data":
        n, values = msg.get("n"), msg.get("values")
        if not isinstance(n, int) or n < 0 or not isinstance(values, dict):
            raise Reject("data payload without 'n' and 'values'")
        for key in ("t0_us", "dt_us", "session", "dev_seq"):
            if type(msg.get(key, 0)) is not int:
                raise Reject(f"'{key}' is not an integer")
        for ch, arr in values.items():
            if not isinstance(arr, list) or len(arr) != n:
                raise Reject(f"channel {ch!r} does not hold n={n} values")
            if not all(v is None or type(v) in _NUMBER for v in arr):
                raise Reject(f"channel {ch!r} holds something other than numbers and null")
        miss = msg.get("missing", [])
        if not isinstance(miss, list) or not all(type(i) is int for i in miss):
            raise Reject("'missing' is not a list of sample indices")
    return msg


_NUMBER = (int, float)
