"""The typed library API of flashing and deploying: what host/flash.py's CLI and the HIL plugin call.

No printing unless a `Reporter` is passed; errors are `host.errors.FlashError` subclasses, each with
the exit code the CLI gives it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from host.device import ports
from host.device.boards import BoardDefinition
from host.errors import FlashError
from host.flashing.progress import Reporter


def list_boards() -> list[ports.BoardPort]:
    """Connected USB boards with a guess of each, plus the running virtual board."""
    return ports.list_boards()


def flash_firmware(board: BoardDefinition, image: bytes, *, port: str | None = None, baud: int | None = None,
                   erase: bool = False, use_stub: bool = True, drive: Path | None = None,
                   mount_roots: list[Path] | None = None, reporter: Reporter | None = None,
                   verbose: bool = False, wait_timeout: float = 15.0) -> Any:
    """Write `image` to `board` by the board's flash method (esptool or uf2); verify it.

    The image is validated against the board first; ImageError means nothing was written.
    """
    method = board.flash_method
    if method == "esptool":
        from host.flashing.esp import flash_esp

        if port is None:
            raise FlashError("an ESP board needs a serial port (--port)")
        return flash_esp(board, image, port, baud=baud, erase=erase, use_stub=use_stub,
                         reporter=reporter, verbose=verbose)
    if method == "uf2":
        from host.flashing.uf2 import flash_uf2

        if erase:
            raise FlashError("--erase is not supported for UF2 boards (flash a flash_nuke.uf2 instead)")
        return flash_uf2(board, image, port=port, drive=drive, mount_roots=mount_roots, reporter=reporter,
                         drive_timeout=wait_timeout, reboot_timeout=wait_timeout)
    raise FlashError(f"board {board.name!r} has flash method {method!r}: nothing to flash "
                     "(the virtual board runs the unix port; use deploy)")


def deploy(board: BoardDefinition, *, port: str, source: bool = False, config: Path | None = None,
           reporter: Reporter | None = None, reset: bool = True, step_timeout: float = 30.0,
           open_timeout: float = 5.0) -> Any:
    """Compile firmware/ for the board, copy what changed, verify, install atomically, soft-reset."""
    from host.flashing.deploy import deploy_tree
    from host.flashing.deploy_tree import build_tree

    tree = build_tree(board, source=source, config=config)
    return deploy_tree(port, tree, reporter=reporter, reset=reset, step_timeout=step_timeout,
                       timeout=open_timeout)
