"""pagerless fleet: collect boards' streams from an MQTT broker into Parquet, and say how they are.

  fleet collect mqtt://HOST[:PORT]/PREFIX --out DIR     subscribe, write Parquet + per-board ledgers
  fleet status DIR [--json]                              one line per board: online, rates, ledger
  fleet broker [--port 1883] [--mosquitto]               a broker on 127.0.0.1 (demo, tests)

Boards publish with `monitor --publish mqtt://HOST[:PORT]/PREFIX`. mqtts:// uses TLS (port 8883);
user and password come from the URL (mqtt://USER:PASS@HOST/...), --username/--password, or
$PAGERLESS_MQTT_PASSWORD. Output layout, payloads and the ledger: docs/fleet.md.
Exit codes: 0 done, 1 failed while running, 2 bad input (URL, folder, broker refused), 130 interrupted.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from host.fleet.topics import FleetError, board_id, parse_url, safe

PROG = "fleet"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def add_credential_args(p: argparse.ArgumentParser, prefix: str = "") -> None:
    p.add_argument(f"--{prefix}username", default=None, help="broker user (default: from the URL)")
    p.add_argument(f"--{prefix}password", default=None,
                   help="broker password (default: from the URL or $PAGERLESS_MQTT_PASSWORD)")
    p.add_argument(f"--{prefix}cafile", default=None, metavar="PEM",
                   help="CA certificate(s) for TLS (implies TLS; default for mqtts://: the system's)")
    p.add_argument(f"--{prefix}insecure", action="store_true", help="TLS without checking the broker's certificate")


def add_publish_args(p: argparse.ArgumentParser) -> None:
    """The monitor's --publish options (host/monitor.py live)."""
    p.add_argument("--publish", default=None, metavar="mqtt://HOST[:PORT]/PREFIX",
                   help="also publish the decoded stream to this MQTT broker (docs/fleet.md)")
    p.add_argument("--publish-as", default=None, metavar="NAME",
                   help="the board's name under the prefix (default: its USB serial number or virtual identity)")
    p.add_argument("--mqtt-queue", type=int, default=None, metavar="N",
                   help="messages kept while the broker is away; beyond, lost and counted (default 20000)")
    add_credential_args(p, "mqtt-")


def credentials(args, prefix: str = ""):
    from host.fleet.publish import Credentials

    g = lambda k: getattr(args, prefix + k)  # noqa: E731
    pw = g("password") if g("password") is not None else os.environ.get("PAGERLESS_MQTT_PASSWORD")
    return Credentials(g("username"), pw, tls=g("cafile") is not None, cafile=g("cafile"), insecure=g("insecure"))


def start_publisher(args, port_spec: str, identity):
    """The monitor's publisher for `--publish`, connected (FleetError: one line), or None."""
    if not getattr(args, "publish", None):
        return None
    from host.device import ports
    from host.fleet.publish import QUEUE_LIMIT, Publisher

    url = parse_url(args.publish)
    name = args.publish_as
    if name is None:
        kind, value = identity.kind, identity.value
        if kind == "path":
            named = ports.read_virtual_board(port_spec) if "/" not in port_spec else None
            if named is not None and named.serial:
                kind, value = "virtual", str(named.serial)
        name = board_id(kind, value)
    pub = Publisher(url, safe(name), credentials(args, "mqtt_"),
                    queue_limit=args.mqtt_queue if args.mqtt_queue is not None else QUEUE_LIMIT,
                    identity=str(identity))
    pub.start()
    return pub


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True, metavar="{collect,status,broker}")
    c = sub.add_parser("collect", help="subscribe to a prefix and write Parquet + ledgers")
    c.add_argument("url", metavar="mqtt://HOST[:PORT]/PREFIX")
    c.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    c.add_argument("--flush", type=float, default=1.0, metavar="S",
                   help="seconds between Parquet flushes: the most a crash loses (default 1)")
    c.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds")
    add_credential_args(c)
    s = sub.add_parser("status", help="one line per board from a collector's output folder")
    s.add_argument("dir")
    s.add_argument("--json", action="store_true", help="the boards' ledger states as JSON")
    b = sub.add_parser("broker", help="run a broker on 127.0.0.1 until Ctrl-C (amqtt, or mosquitto)")
    b.add_argument("--port", type=int, default=1883)
    b.add_argument("--mosquitto", action="store_true", help="Debian's mosquitto instead of amqtt")
    return p


def cmd_collect(args) -> int:
    from host.fleet.collect import Collector

    if args.flush <= 0:
        raise FleetError("--flush must be > 0 seconds")
    col = Collector(parse_url(args.url), args.out, credentials(args), flush_interval=args.flush)
    if col.store.removed_tmp:
        print(f"{PROG}: removed {col.store.removed_tmp} unfinished file(s) a crash left in {args.out}",
              file=sys.stderr)
    col.start()
    print(f"{PROG}: collecting {col.url} into {args.out} (run {col.run_id})", file=sys.stderr)
    try:
        col.run(args.duration)
    finally:
        col.close()
        print(f"{PROG}: {col.messages} messages, {sum(col.rejects.values())} rejected, "
              f"{len(col.hop.boards)} boards", file=sys.stderr)
    return EXIT_OK


def cmd_status(args) -> int:
    from host.fleet.status import read_boards, status_lines

    if args.json:
        state, boards = read_boards(args.dir)
        print(json.dumps({"collector": state, "boards": boards}, indent=1))
    else:
        print("\n".join(status_lines(args.dir)))
    return EXIT_OK


def cmd_broker(args) -> int:
    from host.fleet.broker import LocalBroker, available

    kind = "mosquitto" if args.mosquitto else "amqtt"
    why = available(kind)
    if why:
        raise FleetError(why)
    with LocalBroker(kind, args.port) as br:
        print(f"{PROG}: {kind} listening: {br.url('PREFIX')} (Ctrl-C stops it)", file=sys.stderr)
        while br.proc is not None and br.proc.poll() is None:
            time.sleep(0.5)
    return EXIT_FAILED


COMMANDS = {"collect": cmd_collect, "status": cmd_status, "broker": cmd_broker}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return COMMANDS[args.cmd](args)
    except FleetError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as e:
        print(f"{PROG}: error: {e.filename + ': ' if e.filename else ''}{e.strerror or e}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
