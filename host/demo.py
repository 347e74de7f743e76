"""The whole workflow in one command: power on a virtual board, deploy the firmware, watch it live.

Run through `python3 dev.py demo` (which sets up .venv first). A virtual board already running
under the same name is reused instead of started, so a second terminal can keep one up with
`python -m host.virtual_board`. Arguments after `--` go to the monitor, e.g.
`python3 dev.py demo -- --format text --duration 5`.
"""
from __future__ import annotations

import argparse
import sys

from host import flash, monitor
from host.device import registry
from host.virtual_board.board import BoardError, VirtualBoard, link_rates


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python3 dev.py demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", default="virtual", help="virtual board name (default: %(default)s)")
    p.add_argument("--profile", default="rp2040", choices=["rp2040", "esp32"],
                   help="heap size of which real board to emulate (default: %(default)s)")
    p.add_argument("--link", default="usb", choices=list(link_rates()), help="line rate (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="sensor noise seed (default: %(default)s)")
    p.add_argument("--source", action="store_true", help="deploy .py sources instead of .mpy")
    p.add_argument("monitor_args", nargs="*", help="arguments for host/monitor.py live, after --")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    board = None
    entry = registry.lookup(args.name)
    try:
        if entry:
            port = entry["port"]
            print(f"demo: using the running virtual board {args.name!r} on {port}", file=sys.stderr)
        else:
            board = VirtualBoard(registry.home() / "boards" / args.name, name=args.name,
                                 profile=args.profile, seed=args.seed, link_rate=args.link).start()
            port = board.port
            print(f"demo: virtual board {args.name!r} powered on at {port} "
                  f"(other terminals: --port {args.name})", file=sys.stderr)
        deploy = ["deploy", "--board", "virtual", "--port", port] + (["--source"] if args.source else [])
        rc = flash.main(deploy)
        if rc != 0:
            print("demo: deploy failed; see the message above", file=sys.stderr)
            return rc
        return monitor.main(["live", "--port", port, *args.monitor_args])
    except BoardError as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        if board is not None:
            board.stop()


if __name__ == "__main__":
    sys.exit(main())
