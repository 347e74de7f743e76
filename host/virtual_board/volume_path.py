"""A pathlib face on the board's filesystem volume, for tests and tools that used to write a folder.

`board.fs / "main.py"` is a VolumePath: `write_text`, `read_bytes`, `exists`, `mkdir(parents=...)`,
`unlink`, `rename`, `iterdir`, `rglob` behave as pathlib's do, on the littlefs image
(host/virtual_board/flash_volume.py says when a write made while the board runs reaches it).
It is not an os.PathLike: nothing can hand it to open() or shutil and reach the host's disk.
"""
from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from host.virtual_board.flash_volume import FlashVolume


class VolumePath:
    def __init__(self, volume: FlashVolume, path: str | PurePosixPath = "/"):
        self.volume = volume
        self._p = PurePosixPath("/") / PurePosixPath(path)

    def __truediv__(self, other: str) -> "VolumePath":
        return VolumePath(self.volume, self._p / other)

    def __eq__(self, other) -> bool:
        return isinstance(other, VolumePath) and other.volume is self.volume and other._p == self._p

    def __hash__(self) -> int:
        return hash(self._p)

    def __str__(self) -> str:
        return f":{self._p}"  # mpremote's spelling of a path on the board

    def __repr__(self) -> str:
        return f"VolumePath({self.volume.image.name}{self})"

    @property
    def name(self) -> str:
        return self._p.name

    @property
    def parts(self) -> tuple[str, ...]:
        return self._p.parts

    @property
    def parent(self) -> "VolumePath":
        return VolumePath(self.volume, self._p.parent)

    def as_posix(self) -> str:
        return str(self._p)

    def relative_to(self, other: "VolumePath") -> PurePosixPath:
        return self._p.relative_to(other._p)

    # -- queries ------------------------------------------------------------------------------
    def exists(self) -> bool:
        return self.volume.exists(str(self._p))

    def is_dir(self) -> bool:
        return self.exists() and self.volume.stat(str(self._p))[0]

    def is_file(self) -> bool:
        return self.exists() and not self.volume.stat(str(self._p))[0]

    def read_bytes(self) -> bytes:
        return self.volume.read(str(self._p))

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read_bytes().decode(encoding)

    def iterdir(self) -> Iterator["VolumePath"]:
        for name in self.volume.listdir(str(self._p)):
            yield self / name

    def rglob(self, pattern: str) -> Iterator["VolumePath"]:
        """Every file and folder below, matched on the name as pathlib's rglob does."""
        for child in list(self.iterdir()):
            if fnmatch.fnmatchcase(child.name, pattern):
                yield child
            if child.is_dir():
                yield from child.rglob(pattern)

    # -- changes --------------------------------------------------------------------------------
    def write_bytes(self, data: bytes) -> int:
        self.volume.write(str(self._p), data)
        return len(data)

    def write_text(self, text: str, encoding: str = "utf-8") -> int:
        return self.write_bytes(text.encode(encoding))

    def mkdir(self, parents: bool = False, exist_ok: bool = False) -> None:
        self.volume.mkdir(str(self._p), parents=parents, exist_ok=exist_ok)

    def unlink(self, missing_ok: bool = False) -> None:
        try:
            self.volume.remove(str(self._p))
        except FileNotFoundError:
            if not missing_ok:
                raise

    def rmdir(self) -> None:
        self.volume.rmdir(str(self._p))

    def copy_from(self, src: Path) -> None:
        """A host file, or a folder's files (no __pycache__), copied here, as `mpremote fs cp -r`."""
        src = Path(src)
        if src.is_file():
            self.write_bytes(src.read_bytes())
            return
        tree = {(self._p / p.relative_to(src).as_posix()).as_posix(): p.read_bytes()
                for p in sorted(src.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}
        self.mkdir(parents=True, exist_ok=True)
        self.volume.write_tree(tree)

    def rename(self, target: "VolumePath | str") -> "VolumePath":
        dst = target if isinstance(target, VolumePath) else self.parent / str(target)
        self.volume.rename(str(self._p), str(dst._p))
        return dst
