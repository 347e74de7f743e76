"""The virtual board's filesystem: a littlefs volume in an image file of the board's flash size.

A real board keeps its files in a littlefs v2 volume on its own flash, so nothing on it can name
a file of the computer it is plugged into. The virtual board does the same: the VM mounts
`<board dir>/filesystem.img` as `/` (boards/virtual/shim/_vflash.py) after unmounting the host's
filesystem, and this module is the host's side of that image (littlefs-python, the same littlefs
2.11 and on-disk version 2.1 as MicroPython v1.28, same block geometry).

Geometry, from MicroPython v1.28's sources:
- rp2040: ports/rp2 mounts `VfsLfs2(rp2.Flash(), progsize=256)` on MICROPY_HW_FLASH_STORAGE_BYTES
  = 1408 KiB of a Pico's 2 MiB flash (352 erase blocks of 4 KiB); a blank flash is formatted at boot.
- esp32: ports/esp32 mounts the "vfs" partition with `VfsLfs2` defaults (read/prog 32 bytes); on a
  4 MiB module main.c makes it everything after the 2 MiB app area, 2 MiB (512 blocks); a blank
  partition gets inisetup's boot.py, an unreadable one the "filesystem appears to be corrupted" loop.

Host access never changes the volume under a running VM: littlefs keeps allocation state and a
cache in RAM, so a write behind its back could be overwritten. While the VM is on, host writes
are applied to a private view of the image (what `read` and `listdir` show at once) and reach the
image when the VM stops, i.e. the board sees them at its next boot (any reset or power cycle).
"""
from __future__ import annotations

import errno
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from littlefs import LittleFS, LittleFSError, UserContext

IMAGE_NAME = "filesystem.img"
_MTIME_ATTR = 1  # MicroPython VfsLfs2 keeps mtime in user attribute 1: u64 LE ns since 1970


@dataclass(frozen=True)
class VolumeSpec:
    """One port's filesystem geometry (the arguments its `_boot.py` gives VfsLfs2)."""
    port: str  # "rp2" or "esp32": which boot-time behaviour the VM reproduces
    block_count: int
    prog_size: int
    block_size: int = 4096
    read_size: int = 32
    lookahead: int = 32

    @property
    def size(self) -> int:
        return self.block_size * self.block_count

    def env(self) -> str:
        """The VM's half (PAGERLESS_VB_FS_GEOMETRY): port,block_size,block_count,prog_size."""
        return f"{self.port},{self.block_size},{self.block_count},{self.prog_size}"


VOLUMES = {
    "rp2040": VolumeSpec("rp2", block_count=1408 * 1024 // 4096, prog_size=256),
    "esp32": VolumeSpec("esp32", block_count=2 * 1024 * 1024 // 4096, prog_size=32),
}


class VolumeError(Exception):
    """The image cannot be used: wrong size for the profile, or an old flash folder that does not fit."""


class _Snapshot(UserContext):
    """littlefs-python's in-memory device over a copy of the image; remembers which blocks changed."""

    def __init__(self, data: bytearray):
        super().__init__(buffer=data)
        self.dirty: set[int] = set()

    def prog(self, cfg, block, off, data):
        self.dirty.add(block)
        return super().prog(cfg, block, off, data)

    def erase(self, cfg, block):
        self.dirty.add(block)
        return super().erase(cfg, block)


@dataclass
class _View:
    base: bytes  # the image as it was read
    fs: LittleFS  # mounted over ctx: base plus the pending writes
    ctx: _Snapshot


def _oserror(exc: LittleFSError, path: str) -> OSError:
    code = -exc.code if exc.code < 0 else errno.EIO
    return OSError(code, os.strerror(code), path)  # ENOENT -> FileNotFoundError, and so on


def _norm(path: str | PurePosixPath) -> str:
    """A path inside the volume, "/"-rooted; ".." that would leave the volume is refused."""
    parts: list[str] = []
    for part in PurePosixPath(path).parts:
        if part in ("/", "."):
            continue
        if part == "..":
            if not parts:
                raise ValueError(f"{path!s}: outside the board's filesystem")
            parts.pop()
        else:
            parts.append(part)
    return "/" + "/".join(parts)


class FlashVolume:
    """The board's littlefs volume seen from the host. Paths are the board's ("main.py",
    "/lib/x.mpy"). Reads and writes raise FileNotFoundError, FileExistsError, OSError(ENOSPC)...
    as os does; `VolumePath` (volume_path.py) puts a pathlib face on it for tests."""

    def __init__(self, image: Path, spec: VolumeSpec):
        self.image = Path(image)
        self.spec = spec
        self._lock = threading.RLock()
        self._on = False  # a VM has the image mounted
        self._pending: list[tuple] = []  # host writes not yet in the image (made while the VM ran)
        self._view: _View | None = None

    # -- the runner's hooks -------------------------------------------------------------------
    def prepare(self, legacy_dir: Path | None = None) -> None:
        """Before the first boot: an erased image of the board's size, or the old flash folder
        (a board made before the volume existed) copied into a new one and kept as flash.migrated."""
        with self._lock:
            if self.image.exists():
                if self.image.stat().st_size != self.spec.size:
                    raise VolumeError(
                        f"{self.image} holds {self.image.stat().st_size // 1024} KiB, not the "
                        f"{self.spec.size // 1024} KiB this profile's flash has: use the profile it was "
                        "made with, or a new board folder")
                return
            tmp = self.image.with_suffix(".new")
            tmp.write_bytes(b"\xff" * self.spec.size)
            if legacy_dir is not None and legacy_dir.is_dir():
                self._migrate(legacy_dir, tmp)
            os.replace(tmp, self.image)
            if legacy_dir is not None and legacy_dir.is_dir():
                legacy_dir.rename(legacy_dir.with_name(legacy_dir.name + ".migrated"))

    def power_on(self) -> None:
        """The VM is about to mount the image: host writes made meanwhile go in first."""
        with self._lock:
            self._on = False
            self._commit()
            self._on = True

    def power_off(self) -> None:
        """The VM has stopped (its process is gone): the image is the host's until the next boot."""
        with self._lock:
            self._on = False
            self._commit()

    # -- reading --------------------------------------------------------------------------------
    def read(self, path: str) -> bytes:
        p = _norm(path)
        with self._lock:
            fs = self._fs()
            try:
                with fs.open(p, "rb") as f:
                    return f.read()
            except LittleFSError as exc:
                raise _oserror(exc, p) from None

    def stat(self, path: str) -> tuple[bool, int]:
        """(is a directory, size in bytes) of a path; FileNotFoundError when it is not there."""
        p = _norm(path)
        with self._lock:
            if p == "/":
                return True, 0
            try:
                st = self._fs().stat(p)
            except LittleFSError as exc:
                raise _oserror(exc, p) from None
            return st.type == 2, st.size

    def exists(self, path: str) -> bool:
        try:
            self.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return False
        return True

    def listdir(self, path: str = "/") -> list[str]:
        p = _norm(path)
        with self._lock:
            try:
                return sorted(self._fs().listdir(p))
            except LittleFSError as exc:
                raise _oserror(exc, p) from None

    def files(self, path: str = "/") -> dict[str, bytes]:
        """Every file under path, by its path relative to it ("lib/x.mpy")."""
        top = _norm(path)
        with self._lock:
            fs, out = self._fs(), {}
            for root, _dirs, names in fs.walk(top):
                for name in names:
                    full = root.rstrip("/") + "/" + name
                    with fs.open(full, "rb") as f:
                        out[full[len(top.rstrip("/")) + 1:]] = f.read()
            return out

    def usage(self) -> tuple[int, int]:
        """(bytes in the volume, bytes in use), as statvfs on the board counts them (whole blocks)."""
        with self._lock:
            return self.spec.size, self._fs().used_block_count * self.spec.block_size

    # -- writing ----------------------------------------------------------------------------------
    def write(self, path: str, data: bytes) -> None:
        self._apply(("write", _norm(path), bytes(data)))

    def mkdir(self, path: str, parents: bool = False, exist_ok: bool = False) -> None:
        self._apply(("mkdir", _norm(path), parents, exist_ok))

    def remove(self, path: str) -> None:
        self._apply(("remove", _norm(path)))

    def rmdir(self, path: str) -> None:
        self._apply(("rmdir", _norm(path)))

    def rename(self, src: str, dst: str) -> None:
        self._apply(("rename", _norm(src), _norm(dst)))

    def write_tree(self, tree: dict[str, bytes]) -> None:
        """Write many files (parents made as needed) in one go."""
        with self._lock:
            for rel, data in tree.items():
                parent = str(PurePosixPath(_norm(rel)).parent)
                if parent != "/":
                    self.mkdir(parent, parents=True, exist_ok=True)
                self.write(rel, data)

    # -- machinery --------------------------------------------------------------------------------
    def _config(self) -> dict:
        s = self.spec
        return dict(block_size=s.block_size, block_count=s.block_count, read_size=s.read_size,
                    prog_size=s.prog_size, cache_size=min(s.block_size, 4 * max(s.read_size, s.prog_size)),
                    lookahead_size=s.lookahead, block_cycles=100)

    def _read_image(self) -> bytes:
        """The image's bytes; while a VM runs, two equal reads in a row (not one torn by its writes)."""
        if not self.image.exists():
            self.prepare()
        data = self.image.read_bytes()
        for _ in range(50 if self._on else 0):
            again = self.image.read_bytes()
            if again == data:
                break
            data = again
        return data

    def _fs(self) -> LittleFS:
        """The host's current view: the image as it is now, plus any writes still pending.
        Compared by content: a file's mtime ticks too coarsely to tell a VM's writes apart."""
        for attempt in range(20):
            base = self._read_image()
            if self._view is not None and self._view.base == base:
                return self._view.fs
            ctx = _Snapshot(bytearray(base))
            fs = LittleFS(context=ctx, mount=False, **self._config())
            try:
                fs.mount()
            except LittleFSError:
                if base.count(0xFF) != len(base):
                    if self._on:  # a commit under way: a later copy is consistent
                        time.sleep(0.01)
                        continue
                    raise VolumeError(f"{self.image} is not a littlefs volume the board can mount") from None
                fs.format()  # erased flash, as a board's first boot finds it
                fs.mount()
            self._view = _View(base, fs, ctx)
            for op in self._pending:
                self._run(fs, op, lenient=True)
            return fs
        raise VolumeError(f"{self.image} could not be read consistently while the board wrote to it")

    def _apply(self, op: tuple) -> None:
        with self._lock:
            self._run(self._fs(), op, lenient=False)
            if self._on:
                self._pending.append(op)
            else:
                self._flush()

    def _commit(self) -> None:
        if self._pending:
            self._view = None
            self._fs()  # the image as the VM left it, with the pending writes replayed onto it
            self._pending.clear()
            self._flush()

    def _flush(self) -> None:
        """Write the blocks the view changed into the image (no VM has it mounted)."""
        view = self._view
        if view is None or not view.ctx.dirty:
            return
        bs, buf = self.spec.block_size, view.ctx.buffer
        with open(self.image, "r+b") as f:
            for block in sorted(view.ctx.dirty):
                f.seek(block * bs)
                f.write(buf[block * bs:(block + 1) * bs])
        view.ctx.dirty.clear()
        view.base = bytes(buf)

    def _migrate(self, legacy_dir: Path, image: Path) -> None:
        tree = {p.relative_to(legacy_dir).as_posix(): p.read_bytes()
                for p in sorted(legacy_dir.rglob("*")) if p.is_file()}
        try:
            FlashVolume(image, self.spec).write_tree(tree)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise VolumeError(f"{legacy_dir} holds more than the board's {self.spec.size // 1024} KiB "
                                  "filesystem: remove files from it, then start the board again") from None
            raise

    def _run(self, fs: LittleFS, op: tuple, lenient: bool) -> None:
        """One write on a view. `lenient` replays a pending write onto the image as the VM left
        it: what the VM changed meanwhile (a file already gone, a folder already there) is no error."""
        kind, path = op[0], op[1]
        try:
            if kind == "write":
                with fs.open(path, "wb") as f:
                    f.write(op[2])
                fs.setattr(path, _MTIME_ATTR, time.time_ns().to_bytes(8, "little"))
            elif kind == "mkdir":
                if op[2] and (op[3] or lenient):
                    fs.makedirs(path, exist_ok=True)
                elif op[2]:
                    parent = str(PurePosixPath(path).parent)
                    if parent != "/":
                        fs.makedirs(parent, exist_ok=True)
                    fs.mkdir(path)
                else:
                    fs.mkdir(path)
            elif kind == "remove":
                if fs.stat(path).type == 2:
                    raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
                fs.remove(path)
            elif kind == "rmdir":
                if fs.stat(path).type != 2:
                    raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
                fs.remove(path)
            elif kind == "rename":
                fs.rename(path, op[2])
        except LittleFSError as exc:
            if exc.code == -errno.ENOSPC or not lenient:
                raise _oserror(exc, path) from None
        except OSError:
            if not lenient:
                raise
