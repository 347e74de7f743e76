"""Deploy the app to a MicroPython board: copy only what changed, verify, install atomically.

Protocol (all through the raw REPL, see host/raw_repl.py):

1. Finish or discard an earlier deploy: a committed `.staging/.commit` is rolled forward, any
   other leftover `.staging/` is deleted.
2. Ask the board for the SHA-256 of every target file (and of the `.py`/`.mpy` twin that would
   shadow it); files whose hash matches are skipped.
3. Copy changed files under `.staging/` (base64 chunks), then check every staged file's SHA-256.
4. Commit: write the install list to `.staging/.commit` (atomically, by rename), then rename each
   staged file into place, `boot.py` next to last and `main.py` last, and delete shadowing twins.
5. Soft-reset so boot.py and main.py run.

A deploy cut off before step 4 leaves the old files untouched; one cut off during step 4 leaves
every file whole (old or new), with main.py still the old one until the very last rename, and the
next deploy (or `flash.py deploy` with nothing changed) finishes the install.
Paths are relative to the board's working directory, as mpremote's `:path` are (`/` on a board,
the flash folder on the virtual board).
"""

from __future__ import annotations

import base64
import hashlib
import time
from dataclasses import dataclass, field
from typing import Callable

from host.device.raw_repl import RawRepl
from host.paths import FIRMWARE_DIR
from host.errors import VerificationError
from host.flashing.progress import Reporter

STAGING = ".staging"
COMMIT = ".commit"
CHUNK = 3 * 1024  # raw bytes per exec; ~4 KiB of base64 keeps the board's parse heap small

Hook = Callable[[str, str], None]

# The board-side half of the protocol lives in firmware/install.py, which also ships with the app
# so that boot.py can finish a committed install after a power cut: one copy of the logic.
_DEVICE_LIB = (FIRMWARE_DIR / "install.py").read_text()


@dataclass
class DeployResult:
    copied: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    bytes_copied: int = 0
    rolled_forward: bool = False
    seconds: float = 0.0


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _twin(path: str) -> str | None:
    if path.endswith(".py"):
        return path[:-3] + ".mpy"
    if path.endswith(".mpy"):
        return path[:-4] + ".py"
    return None


def _install_order(paths: list[str]) -> list[str]:
    """Everything else first, then boot.py, then main.py: main.py switches last."""
    rank = {"boot.py": 1, "main.py": 2}
    return sorted(paths, key=lambda p: (rank.get(p, 0), p))


class Deployer:
    """One deploy over an open RawRepl. Use `deploy_tree()` unless you hold the session."""

    def __init__(self, session: RawRepl, reporter: Reporter | None = None, hook: Hook | None = None,
                 step_timeout: float = 30.0) -> None:
        self.s = session
        self.step_timeout = step_timeout  # one raw-REPL step; an emulated board needs minutes
        self.reporter = reporter or Reporter()
        self.hook = hook or (lambda phase, path: None)
        self._lib_loaded = False

    def _run(self, code: str, timeout: float | None = None) -> str:
        timeout = self.step_timeout if timeout is None else timeout
        if not self._lib_loaded:
            code = _DEVICE_LIB + code
            self._lib_loaded = True
        return self.s.exec(code, timeout=timeout).decode(errors="replace")

    def prepare(self) -> bool:
        """Roll a committed earlier install forward, drop uncommitted leftovers. True if rolled forward."""
        out = self._run(
            "r=0\nif _ex(S+'/.commit'):\n _install();r=1\n_rm(S)\nprint(r)\n")
        return out.strip().endswith("1")

    def remote_hashes(self, paths: list[str]) -> dict[str, str]:
        """SHA-256 hex of each path on the board ('-' when absent)."""
        if not paths:
            return {}
        out = self._run("for p in %r:print(_h(p))\n" % (tuple(paths),))
        lines = out.split()
        if len(lines) != len(paths):
            from host.errors import DeviceError

            raise DeviceError(f"hash listing returned {len(lines)} lines for {len(paths)} files")
        return dict(zip(paths, lines))

    def stage(self, files: dict[str, bytes]) -> None:
        dirs = sorted({STAGING + "/" + p.rsplit("/", 1)[0] for p in files if "/" in p} | {STAGING})
        self._run("for d in %r:\n _mk(d+'/x')\n" % (tuple(dirs),))
        total = sum(len(d) for d in files.values())
        with self.reporter.task(f"Copying {len(files)} file{'' if len(files) == 1 else 's'}", total) as task:
            for path, data in files.items():
                dest = f"{STAGING}/{path}"
                chunks = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)] or [b""]
                for n, chunk in enumerate(chunks):
                    code = ""
                    if n == 0:
                        code += "f=open(%r,'wb')\nw=f.write\nA=binascii.a2b_base64\n" % dest
                    if chunk:
                        code += "w(A(%r))\n" % base64.b64encode(chunk).decode()
                    if n == len(chunks) - 1:
                        code += "f.close()\n"
                    self.hook("chunk", path)
                    self._run(code)
                    task.advance(len(chunk))
        self.hook("copied", "")

    def verify_staged(self, files: dict[str, bytes]) -> None:
        got = self.remote_hashes([f"{STAGING}/{p}" for p in files])
        bad = [p for p in files if got[f"{STAGING}/{p}"] != _sha(files[p])]
        if bad:
            self._run("_rm(S)\n")
            raise VerificationError(
                f"{len(bad)} file(s) differ on the board after copying ({', '.join(bad[:3])}); nothing installed")
        self.hook("staged", "")

    def commit(self, paths: list[str], remove: list[str]) -> None:
        order = _install_order(paths)
        mains = [p for p in order if p in ("boot.py", "main.py")]
        lines = [p for p in order if p not in mains] + ["-" + r for r in remove] + mains
        text = "\n".join(lines)
        self._run("f=open(S+'/.commit.tmp','w')\nf.write(%r)\nf.close()\nos.rename(S+'/.commit.tmp',S+'/.commit')\n"
                  % text)
        self.hook("committed", "")
        self._run("_install()\n")

    def deploy(self, tree: dict[str, bytes], *, reset: bool = True) -> DeployResult:
        t0 = time.monotonic()
        result = DeployResult()
        result.rolled_forward = self.prepare()
        if result.rolled_forward:
            self.reporter.info("Finished an interrupted earlier install")
        twins = {p: t for p in tree if (t := _twin(p)) is not None and t not in tree}
        remote = self.remote_hashes(list(tree) + sorted(set(twins.values())))
        changed = {p: d for p, d in tree.items() if remote[p] != _sha(d)}
        result.unchanged = [p for p in tree if p not in changed]
        result.removed = sorted(t for t in set(twins.values()) if remote.get(t, "-") != "-")
        if changed or result.removed:
            self.reporter.info(f"{len(changed)} changed, {len(result.unchanged)} unchanged"
                               + (f", {len(result.removed)} to remove" if result.removed else ""))
            if changed:
                self.stage(changed)
                self.verify_staged(changed)
            else:
                self._run("_mk(S+'/x')\n")
            self.commit(list(changed), result.removed)
            final = self.remote_hashes(list(changed))
            bad = [p for p in changed if final[p] != _sha(changed[p])]
            if bad:
                raise VerificationError(f"installed file(s) differ from the source: {', '.join(bad[:3])}")
            result.copied = list(changed)
            result.bytes_copied = sum(len(d) for d in changed.values())
        else:
            self.reporter.info(f"Nothing changed ({len(tree)} files up to date)")
        if reset:
            self.s.soft_reset()
        result.seconds = time.monotonic() - t0
        return result


def deploy_tree(port: str, tree: dict[str, bytes], *, reporter: Reporter | None = None, reset: bool = True,
                hook: Hook | None = None, attempts: int = 4, timeout: float = 5.0,
                step_timeout: float = 30.0) -> DeployResult:
    """Deploy `tree` (device path -> bytes) to the board on `port`; see the module docstring."""
    with RawRepl(port, attempts=attempts, timeout=timeout) as session:
        return Deployer(session, reporter, hook, step_timeout).deploy(tree, reset=reset)
