"""Two versions of a small app tree for deploy tests, and a hook that cuts a deploy off."""

from __future__ import annotations

from pathlib import Path


class DeployCutOff(Exception):
    """Raised by `cut_at` to simulate the USB cable being pulled mid-deploy."""


def app_tree(version: int, big: int = 10_000) -> dict[str, bytes]:
    blob = bytes((i * (version + 3)) & 0xFF for i in range(big))  # several CHUNKs long
    return {
        "main.py": f"VERSION = {version}\nprint('app v{version}')\n".encode(),
        "boot.py": f"# boot v{version}\n".encode(),
        "lib/blob.bin": blob,
        "lib/util.py": f"def version():\n    return {version}\n".encode(),
        "board.json": b'{"name": "virtual"}',
    }


def cut_at(phase: str, path: str = "", occurrence: int = 1):
    """A deploy hook raising DeployCutOff the `occurrence`-th time (phase, path) is reached."""
    seen = {"n": 0}

    def hook(p: str, f: str) -> None:
        if p == phase and (not path or f == path):
            seen["n"] += 1
            if seen["n"] == occurrence:
                raise DeployCutOff(f"cut at {phase} {f}")

    return hook


def board_files(flash_dir) -> dict[str, bytes]:
    """Files of a board folder (Path) or of a virtual board's filesystem (`board.fs`), .staging left out."""
    root = flash_dir if hasattr(flash_dir, "volume") else Path(flash_dir)
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in root.rglob("*") if p.is_file() and ".staging" not in p.parts}


def each_file_old_or_new(flash_dir, old: dict[str, bytes], new: dict[str, bytes]) -> bool:
    files = board_files(flash_dir)
    return all(files.get(p) in (old.get(p), new.get(p)) for p in set(old) | set(new))
