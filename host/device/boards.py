"""Board definitions (`boards/<name>/board.json`) as read by the host tools."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from host.errors import BoardDefinitionError

from host.paths import BOARDS_DIR  # noqa: E402


def board_names(boards_dir: Path | None = None) -> list[str]:
    """Names of the boards that have a board.json, sorted."""
    boards_dir = BOARDS_DIR if boards_dir is None else boards_dir
    return sorted(p.parent.name for p in boards_dir.glob("*/board.json"))


def board_path(name: str, boards_dir: Path | None = None) -> Path:
    boards_dir = BOARDS_DIR if boards_dir is None else boards_dir
    return boards_dir / name / "board.json"


def load_board(name: str, boards_dir: Path | None = None) -> dict[str, Any]:
    """Return the parsed board definition, or raise BoardDefinitionError naming the choices."""
    boards_dir = BOARDS_DIR if boards_dir is None else boards_dir
    path = board_path(name, boards_dir)
    if not path.is_file():
        known = ", ".join(board_names(boards_dir)) or "none"
        raise BoardDefinitionError(f"unknown board {name!r} (known boards: {known})")
    try:
        board = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BoardDefinitionError(f"cannot read {path}: {exc}") from None
    if not isinstance(board, dict) or "flash" not in board:
        raise BoardDefinitionError(f"{path} has no 'flash' section")
    _check_uf2_family(board, path)
    return board


def _check_uf2_family(board: dict[str, Any], path: Path) -> None:
    """A wrong family id makes the bootloader ignore every block: catch a typo'd board.json early."""
    from host.flashing.images import UF2_FAMILY_BY_MCU

    family = board["flash"].get("family_id")
    known = UF2_FAMILY_BY_MCU.get(str(board.get("mcu")))
    if family is not None and known is not None and int(family) != known:
        raise BoardDefinitionError(
            f"{path}: flash.family_id is {int(family):#010x}, but the UF2 family of {board.get('mcu')} "
            f"is {known:#010x} ({known}); fix board.json"
        )


def flash_field(board: dict[str, Any], key: str) -> Any:
    """A required field of the board's `flash` section."""
    try:
        return board["flash"][key]
    except KeyError:
        raise BoardDefinitionError(f"board {board.get('name')!r}: flash.{key} missing in board.json") from None
