"""Check an app config before a deploy installs it: the firmware's own rules, then the heap budget.

The rules are not restated here: `firmware/config.py`'s `validate` and `check_board` and
`firmware/budget.py`'s estimate run as they run on the board, so a file this accepts is one the
board boots as written (not a CONFIG_FALLBACK to defaults), and one it refuses never reaches the
board. Pure host side; no device I/O.
"""

from __future__ import annotations

import json
from pathlib import Path

from firmware import budget
from firmware import config as fw_config
from host.device.boards import BoardDefinition
from host.errors import FlashError

# mpy-cross archs of 64-bit ports (a word of 8 bytes); every other arch is a 32-bit MCU
WIDE_ARCHS = ("x64", "rv64imc")


class ConfigError(FlashError, ValueError):
    """The app config is not one the board would run as written; nothing was installed."""


def word_size(board: BoardDefinition) -> int:
    return 8 if board.mpy_arch in WIDE_ARCHS else 4


def heap_pool(board: BoardDefinition, heap: str | None = None) -> int:
    """The GC pool, in bytes, of the board's heap (board.json "heap", or `heap` such as "112k")."""
    return budget.usable(budget.heap_bytes(board.heap if heap is None else heap), word_size(board))


def check_config(board: BoardDefinition, data: bytes, name: str, *, heap: str | None = None) -> dict:
    """The validated config; ConfigError ("NAME: problem", one line) when the board would not run it.

    Args:
        board: the target board (its wiring, heap and word size).
        data: the file's bytes.
        name: how to name the file in the message.
        heap: the heap size to budget for instead of board.json's (a virtual board's profile).
    """
    try:
        raw = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{name}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{name}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    try:
        cfg = fw_config.validate(raw)
        fw_config.check_board(cfg, board.raw)
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"{name}: invalid config: {exc}") from None
    if board.heap_grows and heap is None:
        return cfg  # no fixed pool to budget against; the board's MemoryError guard falls back
    pool = heap_pool(board, heap)
    over = budget.check(cfg, board.raw, pool, word_size(board), board.flash_method == "virtual")
    if over is not None:
        raise ConfigError(f"{name}: does not fit board {board.name}'s heap: {over} "
                          "(fewer streams, smaller batches or a smaller ring_bytes)")
    return cfg


def read_config(board: BoardDefinition, path: Path, *, heap: str | None = None) -> bytes:
    """The bytes of the config file at `path`, checked by `check_config` for `board`."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise FlashError(f"cannot read config {path}: {exc.strerror}") from None
    check_config(board, data, str(path), heap=heap)
    return data
