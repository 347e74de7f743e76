"""Flash MicroPython onto ESP32 and RP2040 boards, deploy the pagerless app, verify both.

Only the CLI lives here: a thin layer over the typed library API in host.flashing.api
(list_boards, flash_firmware, deploy); `main()` is its one error boundary.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Sequence

if __package__ in (None, ""):  # run as a file: the package must be installed (dev.py setup does)
    try:
        import host  # noqa: F401
        import numpy, serial  # noqa: F401,E401
    except ImportError:
        print(f"{Path(__file__).name}: pagerless is not installed in this Python ({sys.executable}); run "
                 "`python3 dev.py setup`, then use .venv/bin/pagerless-flash (or activate .venv)", file=sys.stderr)
        sys.exit(2)

from host.device import ports  # noqa: E402
from host.device.boards import board_names, load_board  # noqa: E402
from host.errors import FlashError, ImageError  # noqa: E402
from host.flashing.api import deploy, flash_firmware, list_boards  # noqa: E402
from host.flashing.deploy_config import read_config  # noqa: E402
from host.flashing.progress import ConsoleReporter  # noqa: E402
from host.flashing.images import read_image  # noqa: E402

PROG = "pagerless-flash" if Path(sys.argv[0]).name == "pagerless-flash" else "flash.py"  # as run
EXIT_OK, EXIT_VERIFY, EXIT_ERROR = 0, 1, 2

EPILOG = """\
examples:
  python host/flash.py list
  python host/flash.py firmware --board esp32_devkit --image ESP32_GENERIC-v1.24.bin --erase
  python host/flash.py firmware --board esp32_devkit --image fw.bin --port /dev/ttyUSB0 --baud 921600
  python host/flash.py firmware --board rp2040_pico --image RPI_PICO-v1.24.uf2
  python host/flash.py firmware --board rp2040_pico --image fw.uf2 --drive /media/me/RPI-RP2
  python host/flash.py deploy --board virtual --port virtual
  python host/flash.py deploy --board rp2040_pico --config my_config.json
  python host/flash.py deploy --board esp32_devkit --port /dev/ttyUSB0 --source

ports:
  --port auto      the one connected board that matches --board (error listing candidates otherwise)
  --port virtual   the running virtual board (pointer in $PAGERLESS_HOME, default ~/.pagerless)
  --port PATH      a device path or pyserial URL

exit codes:
  0  done (and verified)
  1  verification failed: data was written but the board's copy differs (flash MD5 / file SHA-256)
  2  refused or failed before/while writing: bad image, unknown board, no port, no bootloader, ...
"""


# CLI ------------------------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors through the same one-line format and exit code 2."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        self.print_usage(sys.stderr)
        raise _UsageError(message)


class _UsageError(Exception):
    pass


def build_parser() -> argparse.ArgumentParser:
    boards = ", ".join(board_names())
    parser = _Parser(
        prog=PROG,
        description="Flash MicroPython onto ESP32 and RP2040 boards, deploy the pagerless app, verify both. "
                    "Images are checked against the board before a byte is written.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-q", "--quiet", action="store_true", help="only print errors")
    parser.add_argument("-v", "--verbose", action="store_true", help="show esptool's own messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p_list = sub.add_parser("list", help="list connected boards (USB VID:PID, serial number, guess)",
                            description="List USB serial ports with a guess of the board behind each, "
                                        "plus the running virtual board.",
                            epilog="example:\n  python host/flash.py list",
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    p_list.set_defaults(func=_cmd_list)

    p_fw = sub.add_parser(
        "firmware", help="write a MicroPython image (.bin with esptool, .uf2 via the RPI-RP2 drive)",
        description="Validate the image against the board, write it, verify it. ESP boards: esptool at "
                    "the board's flash offset, then an MD5 check of the flash. RP2040: reboot into the "
                    "bootloader through the REPL (or find the drive already there), copy the UF2, wait "
                    "for the board to come back.",
        epilog="examples:\n"
               "  python host/flash.py firmware --board esp32_devkit --image fw.bin --erase\n"
               "  python host/flash.py firmware --board rp2040_pico --image fw.uf2 --drive /media/me/RPI-RP2",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p_fw.add_argument("--board", required=True, help=f"board definition ({boards})")
    p_fw.add_argument("--image", required=True, type=Path, help="MicroPython image (.bin or .uf2)")
    p_fw.add_argument("--port", default="auto", help="auto (default), virtual, or a device path")
    p_fw.add_argument("--baud", type=int, default=None, help="esptool transfer baud (default: board's)")
    p_fw.add_argument("--erase", action="store_true", help="ESP: erase the whole flash first")
    p_fw.add_argument("--no-stub", action="store_true", help="ESP: talk to the ROM loader only")
    p_fw.add_argument("--drive", type=Path, default=None, help="RP2: the mounted RPI-RP2 drive")
    p_fw.add_argument("--mount-root", type=Path, action="append", default=None, metavar="DIR",
                      help="RP2: where drives get mounted (repeatable; default /media/$USER, "
                           "/run/media/$USER, /Volumes)")
    p_fw.add_argument("--timeout", type=float, default=15.0, help="RP2: seconds to wait for drive/board")
    p_fw.set_defaults(func=_cmd_firmware)

    p_dep = sub.add_parser(
        "deploy", help="copy the app (firmware/, board.json, config) to a board, only what changed",
        description="Compile firmware/ with mpy-cross for the board's mpy_arch (main.py and boot.py stay "
                    ".py), add /board.json and /config.json (firmware/config.json, or --config); copy only "
                    "files whose SHA-256 differs on the board, verify them, install atomically (main.py "
                    "last), soft-reset.",
        epilog="examples:\n"
               "  python host/flash.py deploy --port virtual\n"
               "  python host/flash.py deploy --board rp2040_pico --config my_config.json --source",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p_dep.add_argument("--board", default=None,
                       help=f"board definition ({boards}); optional with --port virtual")
    p_dep.add_argument("--port", default="auto", help="auto (default), virtual, or a device path")
    p_dep.add_argument("--source", action="store_true", help="deploy .py sources instead of .mpy")
    p_dep.add_argument("--config", type=Path, default=None, help="app config to install as /config.json "
                                                                  "(default: firmware/config.json); checked "
                                                                  "with the firmware's rules and the board's "
                                                                  "heap first")
    p_dep.add_argument("--no-reset", action="store_true", help="do not soft-reset after installing")
    p_dep.set_defaults(func=_cmd_deploy)
    return parser


def _cmd_list(args: argparse.Namespace, rep: ConsoleReporter) -> int:
    found = list_boards()
    if not found:
        print("no boards found")
        return EXIT_OK
    rows = [("PORT", "VID:PID", "SERIAL", "GUESS")]
    rows += [(b.device, b.usb_id, b.serial_number or "-", b.guess) for b in found]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        print("  ".join(c.ljust(widths[i]) if i < 3 else c for i, c in enumerate(r)).rstrip())
    return EXIT_OK


def _cmd_firmware(args: argparse.Namespace, rep: ConsoleReporter) -> int:
    board = load_board(args.board)
    image = read_image(args.image)
    method = board.flash_method
    suffix = args.image.suffix.lower()
    if method == "uf2" and suffix == ".bin" or method == "esptool" and suffix == ".uf2":
        raise ImageError(f"{args.image.name} is a {suffix} file; board {args.board} takes "
                         f"{'.uf2' if method == 'uf2' else '.bin'} images")
    port: str | None
    if method == "uf2":
        port = None if args.port == "auto" and not _any_port_for(args.board) else \
            ports.resolve_port(args.port, args.board)
    else:
        port = ports.resolve_port(args.port, args.board, modem_lines=True)
    t0 = time.monotonic()
    flash_firmware(board, image, port=port, baud=args.baud, erase=args.erase, use_stub=not args.no_stub,
                   drive=args.drive, mount_roots=args.mount_root, reporter=rep, verbose=args.verbose,
                   wait_timeout=args.timeout)
    rep.info(f"Flashed {args.image.name} to {args.board} in {time.monotonic() - t0:.1f} s")
    return EXIT_OK


def _any_port_for(board: str) -> bool:
    return any(board in p.boards for p in ports.list_boards(include_virtual=False))


def _cmd_deploy(args: argparse.Namespace, rep: ConsoleReporter) -> int:
    if args.board is None:
        if args.port != "virtual":
            raise _UsageError("deploy needs --board (one of the folders in boards/) unless --port virtual")
        args.board = "virtual"
    board = load_board(args.board)
    if args.config is not None:  # a config the board would not run is refused before any port is opened
        read_config(board, args.config)
    port = ports.resolve_port(args.port, args.board)
    result = deploy(board, port=port, source=args.source, config=args.config, reporter=rep,
                    reset=not args.no_reset)
    rep.info(f"Deployed to {port}: {len(result.copied)} copied ({result.bytes_copied} bytes), "
             f"{len(result.unchanged)} unchanged, in {result.seconds:.2f} s")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 verification failed, 2 any other error)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        rep = ConsoleReporter(quiet=args.quiet)
        return int(args.func(args, rep))
    except _UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except FlashError as exc:
        for line in getattr(exc, "problems", None) or (_one_line(exc),):
            print(f"{PROG}: error: {line}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: error: interrupted", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:  # serial/filesystem trouble that escaped the library: still one line
        print(f"{PROG}: error: {exc.__class__.__name__}: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # last resort: a bug or a library error we did not map; still one line
        print(f"{PROG}: error: unexpected {exc.__class__.__name__}: {_one_line(exc)} (please report)",
              file=sys.stderr)
        return EXIT_ERROR


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or exc.__class__.__name__


if __name__ == "__main__":
    sys.exit(main())
