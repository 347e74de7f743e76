"""Serial port discovery and resolution, shared by the flasher and the monitor.

`list_boards()` lists USB serial ports with a guess of what is behind each, plus the virtual
board when one is running; `resolve_port(spec, board)` turns a `--port` value ("auto",
"virtual" or a device path) into the path to open.

The virtual board advertises itself in `$PAGERLESS_HOME` (default `~/.pagerless`):
`virtual` is a symlink to its pty, `virtual.json` holds `{"port", "pid", "board_dir", "serial"}`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from host.errors import BoardNotFound
from host.device import registry

VID_ESPRESSIF = 0x303A
VID_RASPBERRY_PI = 0x2E8A
PID_RP2_MICROPYTHON = 0x0005
PID_RP2_BOOTLOADER = 0x0003
VID_SILABS, PID_CP210X = 0x10C4, 0xEA60
VID_WCH, PID_CH340 = 0x1A86, 0x7523
VID_FTDI = 0x0403

# (vid, pid or None for any pid, what it usually is): general USB knowledge, not ours. Which of
# our boards a port may be comes from the board definitions' usb ids (boards/*/board.json).
_USB_LABELS: list[tuple[int, int | None, str]] = [
    (VID_RASPBERRY_PI, PID_RP2_MICROPYTHON, "Raspberry Pi RP2 running MicroPython"),
    (VID_RASPBERRY_PI, PID_RP2_BOOTLOADER, "Raspberry Pi RP2 in BOOTSEL (RPI-RP2) bootloader"),
    (VID_RASPBERRY_PI, None, "Raspberry Pi device"),
    (VID_ESPRESSIF, None, "Espressif native USB (ESP32-S2/S3/C3 family)"),
    (VID_SILABS, PID_CP210X, "CP210x USB-UART bridge"),
    (VID_WCH, PID_CH340, "CH340 USB-UART bridge"),
    (VID_FTDI, None, "FTDI USB-UART bridge"),
]

VIRTUAL_BOARD = "virtual"


@dataclass(frozen=True)
class BoardPort:
    """One place a board can be reached."""

    device: str
    vid: int | None
    pid: int | None
    serial_number: str | None
    description: str
    guess: str
    boards: tuple[str, ...]  # board definitions this port may belong to

    @property
    def usb_id(self) -> str:
        if self.vid is None or self.pid is None:
            return "-"
        return f"{self.vid:04X}:{self.pid:04X}"

    def summary(self) -> str:
        return f"{self.device} ({self.usb_id}, {self.guess})"


@dataclass(frozen=True)
class VirtualBoardInfo:
    port: str
    pid: int | None
    board_dir: str | None
    serial: str | None
    rfc2217: str | None = None  # the esp32 profile's UART with DTR/RTS (esptool's reset)


def pagerless_home() -> Path:
    """`$PAGERLESS_HOME`, or `~/.pagerless` (the virtual boards' registry, host/vboard/registry.py)."""
    return registry.home()


def read_virtual_board(name: str = "virtual") -> VirtualBoardInfo | None:
    """The running virtual board's pointer, or None when none is running, its runner is gone or
    its port is cut (stale pointers ignored)."""
    entry = registry.lookup(name)
    port = entry.get("port") if entry else None
    if not port or not os.path.exists(port):
        return None
    pid = entry.get("pid")
    return VirtualBoardInfo(port=str(port), pid=pid if isinstance(pid, int) else None,
                            board_dir=entry.get("board_dir"), serial=entry.get("serial"),
                            rfc2217=entry.get("rfc2217"))


def guess_usb(vid: int | None, pid: int | None) -> tuple[str, tuple[str, ...]]:
    """What a USB VID:PID usually is, and which of our boards (by their board.json usb ids) it may be."""
    if vid is None:
        return "not a USB device", ()
    boards = _boards_with_usb_id(vid, pid)
    for g_vid, g_pid, label in _USB_LABELS:
        if vid == g_vid and (g_pid is None or pid == g_pid):
            return (f"{label} ({', '.join(boards)}?)" if boards else label), boards
    return "unknown USB serial device", boards


def _boards_with_usb_id(vid: int, pid: int | None) -> tuple[str, ...]:
    from host.device.boards import board_names, load_board
    from host.errors import BoardDefinitionError

    names = []
    for name in board_names():
        try:
            b = load_board(name)
        except BoardDefinitionError:
            continue  # a broken definition is reported where it is used, not while listing ports
        ids = (b.usb, b.bootloader_usb, *b.usb_alternates)
        if any(u is not None and u.matches(vid, pid) for u in ids):
            names.append(name)
    return tuple(names)


def _comports() -> list[Any]:
    import serial.tools.list_ports  # imported lazily: tests patch serial.tools.list_ports.comports

    return list(serial.tools.list_ports.comports())


def list_boards(include_virtual: bool = True) -> list[BoardPort]:
    """USB serial ports (with a guess of the board) and the running virtual board, if any."""
    found: list[BoardPort] = []
    for info in _comports():
        vid = getattr(info, "vid", None)
        if vid is None:
            continue  # legacy UARTs (/dev/ttyS*) are never our boards
        pid = getattr(info, "pid", None)
        guess, boards = guess_usb(vid, pid)
        found.append(BoardPort(device=info.device, vid=vid, pid=pid,
                               serial_number=getattr(info, "serial_number", None),
                               description=getattr(info, "description", "") or "", guess=guess, boards=boards))
    if include_virtual:
        vb = read_virtual_board()
        if vb is not None:
            found.append(BoardPort(device=vb.port, vid=None, pid=None, serial_number=vb.serial,
                                   description=f"pid {vb.pid}" if vb.pid else "",
                                   guess="pagerless virtual board", boards=(VIRTUAL_BOARD,)))
    return found


def find_by_serial(serial_number: str) -> BoardPort | None:
    """The port whose USB serial number is `serial_number` (e.g. to find a board after a reset)."""
    for port in list_boards():
        if port.serial_number == serial_number:
            return port
    return None


def resolve_port(spec: str, board: str | None, modem_lines: bool = False) -> str:
    """Turn a --port value into a device path.

    "auto": the one port that may be `board` (any board when None); BoardNotFound when none or
    several match, listing the candidates. "virtual": the running virtual board's pty, or with
    `modem_lines` (esptool resets the chip through DTR/RTS) its RFC 2217 URL when it has one.
    Anything else is taken as a device path (or pyserial URL) and returned unchanged.
    """
    if spec == "virtual" or (spec == "auto" and board == VIRTUAL_BOARD):
        vb = read_virtual_board()
        if vb is None:
            raise BoardNotFound(
                f"no virtual board running (no live pointer in {pagerless_home()}); "
                "start one with: pagerless-vboard (or python -m host.virtual_board)"
            )
        return vb.rfc2217 if modem_lines and vb.rfc2217 else vb.port
    if spec != "auto" and "/" not in spec and "://" not in spec:
        named = read_virtual_board(spec)  # a running virtual or emulated board registered under that name
        if named is not None:
            return named.port
    if spec != "auto":
        return spec
    ports = list_boards(include_virtual=False)
    matching = [p for p in ports if board is None and p.boards or board is not None and board in p.boards]
    if len(matching) == 1:
        return matching[0].device
    what = f"board {board!r}" if board else "a known board"
    if not matching:
        seen = "; ".join(p.summary() for p in ports) or "no USB serial ports at all"
        raise BoardNotFound(f"no port looks like {what} (seen: {seen}); pass --port PATH")
    listed = "; ".join(p.summary() for p in matching)
    raise BoardNotFound(f"{len(matching)} ports look like {what}: {listed}; pick one with --port PATH")
