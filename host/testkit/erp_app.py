"""Lay the app into an emulated RP2040's flash without a deploy (tests/emulated, the cycle bench).

A deploy through the raw REPL takes minutes of wall time on the emulator (0.01-0.05x real time);
the tests that only need "a Pico whose flash holds our app" build that flash on the host instead:
the UF2 programmed as the BOOTSEL drive does, then the rp2 port's littlefs (v1.28 RPI_PICO: the
last 1408 KiB of the 2 MiB flash, 4 KiB blocks, read/prog size 32 as extmod/vfs_lfs.c sets them)
formatted with `build_tree`'s files, exactly what `flash.py deploy` would have written.
"""
from __future__ import annotations

import json
from pathlib import Path

from host.device.boards import Uf2Flash, load_board
from host.emulated_rp2040.flash_store import program
from host.flashing.deploy_tree import build_tree

FS_OFFSET = 0xA0000  # RPI_PICO: MICROPY_HW_FLASH_STORAGE_BYTES = 1408 KiB at the end of 2 MiB
BLOCK = 4096


def app_tree(config: dict | None = None, board: str = "emulated_rp2040") -> dict[str, bytes]:
    """What deploy installs for `board` (.mpy for armv6m), with `config` as config.json if given."""
    tree = build_tree(load_board(board))
    if config is not None:
        tree["config.json"] = json.dumps(config).encode()
    return tree


def write_flash(folder: str | Path, image: str | Path, tree: dict[str, bytes]) -> Path:
    """`folder`/flash.bin: the UF2 plus a fresh littlefs holding `tree`. Returns its path."""
    from littlefs import LittleFS

    size = load_board("emulated_rp2040").flash_as(Uf2Flash).flash_size
    flash = bytearray(b"\xff" * size)
    program(flash, Path(image).read_bytes())
    fs = LittleFS(block_size=BLOCK, block_count=(size - FS_OFFSET) // BLOCK, read_size=32, prog_size=32,
                  lookahead_size=32, mount=False)
    fs.format()
    fs.mount()
    for rel, data in sorted(tree.items()):
        parts = rel.split("/")
        for i in range(1, len(parts)):
            fs.makedirs("/".join(parts[:i]), exist_ok=True)
        with fs.open(rel, "wb") as f:
            f.write(data)
    fs.unmount()
    flash[FS_OFFSET:] = fs.context.buffer
    path = Path(folder) / "flash.bin"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(flash))
    return path
