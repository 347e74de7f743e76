"""Write a MicroPython .uf2 to an RP2040 board through its RPI-RP2 USB drive.

Steps: validate every UF2 block against the board (nothing written on failure); if MicroPython is
running on the serial port, ask it to reboot into the bootloader (`machine.bootloader()` over the
raw REPL); wait, bounded, for the RPI-RP2 drive (a mounted folder holding INFO_UF2.TXT); copy the
file; wait for the drive to go away and, when we know the board's serial port, for it to come back.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from host.device.boards import BoardDefinition, Uf2Flash
from host.errors import BoardNotFound, DeviceError
from host.flashing.progress import Reporter
from host.flashing.images import validate_uf2

INFO_FILE = "INFO_UF2.TXT"
COPY_CHUNK = 64 * 1024
BOOTSEL_HELP = ("hold the BOOTSEL button while plugging the board in (or while tapping RUN), "
                "then run this command again")


def default_mount_roots() -> list[Path]:
    """Every mounted drive as the OS lists it (psutil: /media/$USER/RPI-RP2, /Volumes/RPI-RP2, E:\\),
    then $PAGERLESS_HOME/drives, where an emulated board in BOOTSEL shows its RPI-RP2 drive
    (host/emulated_rp2040/bootsel.py). Asked afresh on every poll: the drive appears after a reboot."""
    import psutil

    from host.device import registry

    return [Path(p.mountpoint) for p in psutil.disk_partitions(all=False)] + [registry.home() / "drives"]


def is_rp2_drive(path: Path, label: str = "RPI-RP2") -> bool:
    """A folder is an RP2 bootloader drive if it has INFO_UF2.TXT naming the RP2 board id."""
    try:
        info = (path / INFO_FILE).read_text(errors="replace")
    except OSError:
        return False
    return f"Board-ID: {label}" in info or path.name == label


def find_rp2_drive(roots: list[Path], label: str = "RPI-RP2") -> Path | None:
    """The first RP2 drive directly at, or one level under, one of `roots`."""
    for root in roots:
        if is_rp2_drive(root, label):
            return root
        try:
            children = sorted(p for p in root.iterdir() if p.is_dir())
        except OSError:
            continue
        for child in children:
            if is_rp2_drive(child, label):
                return child
    return None


def enter_bootloader_via_mpremote(port: str, timeout: float = 5.0) -> None:
    """Run `machine.bootloader()` on the board at `port` through mpremote's raw REPL.

    The board resets into the ROM bootloader at once, so no reply is awaited after the command
    is accepted. DeviceError if no MicroPython REPL answers.
    """
    from host.device.raw_repl import RawRepl
    from host.errors import FlashError, PortBusyError

    try:
        session = RawRepl(port, timeout=timeout)
    except PortBusyError:
        raise
    except FlashError as exc:
        raise DeviceError(f"{exc}; if the board runs no MicroPython, {BOOTSEL_HELP}") from None
    try:
        session.transport.exec_raw_no_follow("import machine\nmachine.bootloader()")
    except Exception as exc:  # mpremote's TransportError or a serial error from a vanishing port
        raise DeviceError(f"MicroPython on {port} did not take the bootloader command ({exc})") from None
    finally:
        session.close()


def wait_for(predicate: Callable[[], Any], timeout: float, reporter: Reporter, what: str,
             poll: float = 0.05) -> Any:
    """Poll `predicate` until it returns something truthy or `timeout` seconds pass (then None)."""
    deadline = time.monotonic() + timeout
    steps = max(1, int(timeout / poll))
    polled = 0
    with reporter.task(what, steps, unit="polls") as task:
        while True:
            result = predicate()
            if result:
                task.advance(steps)
                return result
            if time.monotonic() >= deadline:
                return None  # the task stays short of its total: a timeout is not "done"
            time.sleep(poll)
            if polled < steps - 1:
                polled += 1
                task.advance(1)


@dataclass(frozen=True)
class Uf2FlashResult:
    drive: Path
    blocks: int
    port_after: str | None


def flash_uf2(board: BoardDefinition, image: bytes, *, port: str | None = None, drive: Path | None = None,
              mount_roots: list[Path] | None = None, reporter: Reporter | None = None,
              enter_bootloader: Callable[[str], None] = enter_bootloader_via_mpremote,
              find_port_after: Callable[[], str | None] | None = None,
              drive_timeout: float = 15.0, reboot_timeout: float = 15.0,
              file_name: str = "firmware.uf2") -> Uf2FlashResult:
    """Copy a validated UF2 image to the board's bootloader drive.

    Args:
        board: the board's definition (flashed by UF2: family_id, flash_base, flash_size, drive_label).
        image: the .uf2 file's bytes.
        port: serial port of the board running MicroPython, used to enter the bootloader. None when
            the board already shows its drive.
        drive: the mounted drive itself (skips searching `mount_roots`).
        mount_roots: folders that are, or hold, mounted drives (default: every mounted drive).
        enter_bootloader: how to make the board reboot into its bootloader (injectable for tests).
        find_port_after: returns the board's serial port once it is back (None: not back yet).
            Default: the same serial number on USB when `port` had one, else not awaited.

    Raises:
        ImageError (nothing written), BoardNotFound (no drive / board did not come back), DeviceError.
    """
    reporter = reporter or Reporter()
    spec = board.flash_as(Uf2Flash)
    info = validate_uf2(image, spec.family_id, spec.flash_base, spec.flash_size)
    label = spec.drive_label
    given = [drive] if drive is not None else mount_roots
    where = "among the mounted drives" if not given else f"under {', '.join(map(str, given))}"

    def search() -> Path | None:
        return find_rp2_drive(given or default_mount_roots(), label)

    target = search()
    if target is None and port is None:
        raise BoardNotFound(f"no {label} drive {where} and no --port to reboot "
                            f"the board into its bootloader; {BOOTSEL_HELP}")
    if target is None:
        assert port is not None
        if find_port_after is None:
            find_port_after = _same_usb_serial_finder(port)
        reporter.info(f"Rebooting the board on {port} into its {label} bootloader")
        enter_bootloader(port)
        target = wait_for(search, drive_timeout, reporter, f"Waiting for the {label} drive")
        if target is None:
            raise BoardNotFound(f"the {label} drive did not appear {where} within "
                                f"{drive_timeout:.0f} s (is it mounted? pass --drive); {BOOTSEL_HELP}")

    dest = Path(target) / file_name
    reporter.info(f"Copying {info.blocks} UF2 blocks to {dest}")
    try:
        with open(dest, "wb") as f, reporter.task(f"Writing {dest.name}", len(image)) as task:
            for i in range(0, len(image), COPY_CHUNK):
                f.write(image[i : i + COPY_CHUNK])
                task.advance(min(COPY_CHUNK, len(image) - i))
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        if not Path(target).exists():
            pass  # the bootloader reboots as soon as the last block lands; that is success
        else:
            raise DeviceError(f"copy to {dest} failed: {exc.strerror or exc}") from None

    gone = wait_for(lambda: not is_rp2_drive(Path(target), label), reboot_timeout, reporter,
                    "Waiting for the board to reboot")
    if not gone:
        raise DeviceError(f"the {label} drive is still there {reboot_timeout:.0f} s after the copy; "
                          "the image was not accepted")
    port_after = None
    if find_port_after is not None:
        port_after = wait_for(find_port_after, reboot_timeout, reporter, "Waiting for MicroPython on USB")
        if port_after is None:
            raise BoardNotFound(f"the board did not come back on USB within {reboot_timeout:.0f} s")
        reporter.info(f"Board is back on {port_after}")
    return Uf2FlashResult(drive=Path(target), blocks=info.blocks, port_after=port_after)


def _same_usb_serial_finder(port: str) -> Callable[[], str | None] | None:
    from host.device import ports

    serial_number = None
    real = os.path.realpath(port)
    for bp in ports.list_boards(include_virtual=False):
        if bp.device in (port, real):
            serial_number = bp.serial_number
    if not serial_number:
        return _registered_board_finder(real)
    sn = serial_number

    def find() -> str | None:
        bp = ports.find_by_serial(sn)
        return bp.device if bp is not None else None

    return find


def _registered_board_finder(real_port: str) -> Callable[[], str | None] | None:
    """For a board in the $PAGERLESS_HOME registry (an emulated RP2040): its port once it is back."""
    from host.device import ports, registry

    for entry_file in sorted(registry.home().glob("*.json")):
        name = entry_file.stem
        entry = registry.lookup(name)
        if entry and entry.get("port") and os.path.realpath(entry["port"]) == real_port:
            def find(name: str = name) -> str | None:
                vb = ports.read_virtual_board(name)
                return vb.port if vb is not None else None
            return find
    return None
