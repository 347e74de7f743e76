"""Start a virtual MicroPython board on a pseudo-terminal, or inject faults into a running one.

The board is the real MicroPython VM (unix port) with simulated BME280, MPU-6050 and SHT31 chips
and an analog input. Host tools cannot tell it from a board on USB serial: mpremote, pyserial,
host/flash.py and host/monitor.py all work against the path it prints.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from host.device import registry
from host.virtual_board.board import BoardError, VirtualBoard, link_rates
from host.virtual_board.control import ALLOWED, BoardClient, ControlError, ControlServer
from host.virtual_board.scenario import ScenarioError, ScenarioRunner, load

EPILOG = """\
examples:
  python -m host.virtual_board                      start one; its port path is the first line
  mpremote connect $(readlink ~/.pagerless/virtual) exec "import machine; print(machine.I2C(0).scan())"
  python host/flash.py deploy --port virtual        put the firmware on it
  python host/monitor.py --port virtual             watch it stream
  python -m host.virtual_board --profile esp32 --link uart115200 --seed 3
  python -m esptool --port rfc2217://127.0.0.1:PORT flash-id   (the URL an esp32 board prints)
  python -m host.virtual_board --scenario boards/virtual/scenarios/sensor_faults.toml
  python -m host.virtual_board fault unplug bme280  (and: replug, set_nack_rate mpu6050 0.2,
      set_bus_stuck true, hang, freeze sht31 true, set_wrong_id bme280 true, set_backpressure true,
      set_bit_error_rate 0.001, set_drop_rate 0.001, disconnect 2.0, reset, power_cycle)
  python -m host.virtual_board status

The board's flash filesystem is a folder (default ~/.pagerless/boards/<name>/flash); boot.py and
main.py there run at power-on. Ctrl-C here stops the board and leaves no process behind.
"""


def _parse_value(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m host.virtual_board", description=__doc__,
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", default="virtual",
                   help="board name; tools find it as --port <name> (default: %(default)s)")
    p.add_argument("--dir", type=Path, help="board folder (default: ~/.pagerless/boards/<name>)")
    p.add_argument("--profile", default="rp2040", choices=["rp2040", "esp32"],
                   help="which real board to emulate: its heap size; esp32 adds the ROM serial loader "
                        "that esptool reaches at the board's rfc2217:// URL (default: %(default)s)")
    p.add_argument("--heap", help="VM heap size, overriding the profile, e.g. 256k")
    p.add_argument("--seed", type=int, default=0, help="seed for sensor noise and random faults")
    p.add_argument("--link", default="usb",
                   help=f"line rate: {', '.join(link_rates())} or bytes/s (default: %(default)s)")
    p.add_argument("--scenario", type=Path, help="TOML file of timed faults to replay (see docs)")
    sub = p.add_subparsers(dest="command", metavar="{fault,status}")
    f = sub.add_parser("fault", help="call the fault API of a running board",
                       description="Call the fault API of a running board: " + ", ".join(sorted(ALLOWED)))
    f.add_argument("action", choices=sorted(ALLOWED), metavar="ACTION")
    f.add_argument("args", nargs="*", help="arguments (JSON values: true, 0.2, \"bme280\")")
    sub.add_parser("status", help="print a running board's state as JSON")
    return p


def _client(name: str) -> BoardClient:
    entry = registry.lookup(name)
    if entry is None:
        raise ControlError(f"no virtual board named {name!r} is running; start one with "
                           "`python -m host.virtual_board`")
    return BoardClient(entry["control"])


def run(args) -> int:
    link = args.link
    if link not in link_rates():
        try:
            link = float(link)
        except ValueError:
            raise BoardError(f"--link {args.link!r}: use {', '.join(link_rates())} or a number of bytes/s")
    events = load(args.scenario) if args.scenario else []
    directory = args.dir or registry.home() / "boards" / args.name
    board = VirtualBoard(directory, name=args.name, profile=args.profile, heap=args.heap,
                         seed=args.seed, link_rate=link)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGHUP, lambda *_: stop.set())
    board.start()
    control = ControlServer(board, board.run_dir / "control.sock")
    control.start()
    scenario = ScenarioRunner(board, events, log=lambda m: print(m, file=sys.stderr, flush=True)).start()
    print(board.port, flush=True)
    print(f"virtual board {args.name!r}: {board.profile} profile, heap {board.heap}, "
          f"filesystem {board.volume.image}, serial {board.serial}", file=sys.stderr, flush=True)
    print(f"reach it as --port {args.name} or {registry.home() / args.name}; Ctrl-C stops it",
          file=sys.stderr, flush=True)
    if board.esp32:
        print(f"esptool (DTR/RTS reset into the ROM loader): --port {board.esp32.url}",
              file=sys.stderr, flush=True)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        scenario.stop()
        control.close()
        board.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    if "--emulate" in (sys.argv[1:] if argv is None else argv):  # the emulated RP2040 (host/emulated_rp2040)
        from host.emulated_rp2040.cli import main as emulated_main
        return emulated_main(argv)
    args = build_parser().parse_args(argv)
    try:
        if args.command == "fault":
            result = _client(args.name).call(args.action, *map(_parse_value, args.args))
            if result is not None:
                print(json.dumps(result))
            return 0
        if args.command == "status":
            print(json.dumps(_client(args.name).status(), indent=1))
            return 0
        return run(args)
    except (BoardError, ControlError, ScenarioError) as exc:
        print(f"virtual_board: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
