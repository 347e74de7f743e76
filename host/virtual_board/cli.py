"""Start a virtual MicroPython board on a pseudo-terminal, or inject faults into a running one.

The board is the real MicroPython VM (unix port) with simulated BME280, MPU-6050 and SHT31 chips
and an analog input. Host tools cannot tell it from a board on USB serial: mpremote, pyserial,
host/flash.py and host/monitor.py all work against the path it prints.
"""
from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import threading
import typing
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


def _prog() -> str:
    """The name the tool was run as, for --help and messages."""
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return name if name == "pagerless-vboard" else "python -m host.virtual_board"


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line, exit code 2, no usage dump."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


_HEAP = re.compile(r"([1-9][0-9]*)([kKmM]?)")


def _heap(text: str) -> str:
    """A MicroPython heap size (`-X heapsize=`): bytes, or k/M; refused here, not by a VM that then
    loops on "Invalid command line arguments"."""
    m = _HEAP.fullmatch(text.strip())
    if m is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a heap size (e.g. 256k, 1M, 200000)")
    size = int(m[1]) * {"": 1, "k": 1024, "m": 1024 * 1024}[m[2].lower()]
    if not 16 * 1024 <= size <= 1024 ** 3:
        raise argparse.ArgumentTypeError(f"{text!r}: a heap between 16k and 1024M")
    return m[1] + m[2].lower()


def _fault_args(action: str, texts: list[str]) -> list:
    """The fault call's arguments as JSON values, checked against the board method's signature, so a
    wrong count or type is a one-line usage error here rather than a TypeError from the runner."""
    values = [_parse_value(t) for t in texts]
    method = getattr(VirtualBoard, action, None)
    if method is None:  # not a board method (truth: a chip's)
        return values
    import inspect

    try:
        bound = inspect.signature(method).bind(None, *values)
    except TypeError as exc:
        raise ControlError(f"fault {action}: {exc}") from None
    hints = typing.get_type_hints(method)
    for name, value in list(bound.arguments.items())[1:]:
        want = hints.get(name)
        if want is not None and not _fits(value, want):
            shown = " or ".join(_type_word(t) for t in typing.get_args(want) or (want,) if t is not type(None))
            raise ControlError(f"fault {action}: {name} must be {shown}, not {json.dumps(value)}")
    return values


def _fits(value, want) -> bool:
    options = typing.get_args(want) or (want,)
    for t in options:
        if t is type(None) and value is None or t is bool and isinstance(value, bool):
            return True
        if t in (int, float) and isinstance(value, int | float) and not isinstance(value, bool):
            return t is float or isinstance(value, int)
        if t is str and isinstance(value, str):
            return True
    return False


def _type_word(t) -> str:
    return {float: "a number", int: "a whole number", bool: "true or false", str: "a name"}.get(t, str(t))


def _parse_value(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=_prog(), description=__doc__,
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", default="virtual",
                   help="board name; tools find it as --port <name> (default: %(default)s)")
    p.add_argument("--dir", type=Path, help="board folder (default: ~/.pagerless/boards/<name>)")
    p.add_argument("--profile", default="rp2040", choices=["rp2040", "esp32"],
                   help="which real board to emulate: its heap size; esp32 adds the ROM serial loader "
                        "that esptool reaches at the board's rfc2217:// URL (default: %(default)s)")
    p.add_argument("--heap", type=_heap, help="VM heap size, overriding the profile, e.g. 256k")
    p.add_argument("--seed", type=int, default=0, help="seed for sensor noise and random faults")
    p.add_argument("--link", default="usb",
                   help=f"line rate: {', '.join(link_rates())} or bytes/s (default: %(default)s)")
    p.add_argument("--scenario", type=Path, help="TOML file of timed faults to replay (see docs)")
    sub = p.add_subparsers(dest="command", metavar="{fault,status}", parser_class=_Parser)
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
                           "`pagerless-vboard` (or `python -m host.virtual_board`)")
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
            values = _fault_args(args.action, args.args)  # checked before any board is looked up
            result = _client(args.name).call(args.action, *values)
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
