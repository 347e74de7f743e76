"""Start an emulated Raspberry Pi Pico running your MicroPython UF2, on a pseudo-terminal.

The chip is rp2040py's instruction-level RP2040; simulated BME280, MPU-6050 and SHT31 chips sit on
its I2C0 (GP4/GP5) and an analog source on GP26. Host tools reach it as `--port NAME` (default
emulated_rp2040); faults go through the same control socket as the virtual board's.
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from host.device import registry
from host.emulated_rp2040.board import BOARD, EmulatedBoard, EmulatedBoardError
from host.emulated_rp2040.image import ENV_VAR
from host.errors import ImageError
from host.virtual_board.control import ControlServer

EPILOG = f"""\
examples:
  python -m host.emulated_rp2040 --image micropython.uf2     its port path is the first line
  {ENV_VAR}=micropython.uf2 python -m host.emulated_rp2040
  python host/flash.py deploy --board {BOARD} --port {BOARD}
  python host/monitor.py --port {BOARD}
  python -m host.virtual_board --name {BOARD} fault unplug bme280

The board's flash is one file (default ~/.pagerless/boards/<name>/flash.bin): the littlefs
filesystem on it persists between runs; the UF2 is programmed over it at every start.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m host.emulated_rp2040", description=__doc__, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--emulate", choices=["rp2040"], default="rp2040",
                   help="the chip to emulate (how `python -m host.virtual_board --emulate rp2040` gets here)")
    p.add_argument("--image", type=Path, help=f"MicroPython RP2040 UF2 (default: ${ENV_VAR})")
    p.add_argument("--name", default=BOARD, help="board name; tools find it as --port <name> (default: %(default)s)")
    p.add_argument("--dir", type=Path, help="board folder (default: ~/.pagerless/boards/<name>)")
    p.add_argument("--seed", type=int, default=0, help="seed for sensor noise")
    p.add_argument("--link-rate", type=float, help="pace the USB link at this many bytes/s (default: unpaced)")
    p.add_argument("--no-fast-forward", action="store_true",
                   help="emulate every cycle of the firmware's timer spins (default: skip them, fast_forward.py)")
    return p


def run(args) -> int:
    directory = args.dir or registry.home() / "boards" / args.name
    board = EmulatedBoard(directory, image=args.image, name=args.name, seed=args.seed, link_rate=args.link_rate,
                          fast_forward=not args.no_fast_forward)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGHUP, lambda *_: stop.set())
    board.start()
    control = ControlServer(board, board.run_dir / "control.sock")
    control.start()
    print(board.port, flush=True)
    print(f"emulated RP2040 {args.name!r}: {board.image.name}, booted in {board.boot_seconds:.1f} s, "
          f"flash {board.flash.path}", file=sys.stderr, flush=True)
    print(f"reach it as --port {args.name} or {registry.home() / args.name}; Ctrl-C stops it",
          file=sys.stderr, flush=True)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        control.close()
        board.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except (EmulatedBoardError, ImageError) as exc:
        print(f"emulated_rp2040: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
