#!/usr/bin/env python3
"""One entry point for a fresh clone: makes/updates .venv from pyproject.toml, then runs the job.

Only the standard library is used here, so this works on a machine with nothing but Python 3.11+.

    python3 dev.py demo     start a virtual board, deploy the firmware, watch it live
    python3 dev.py test     run the whole test suite on two parallel virtual boards (what CI runs)
    python3 dev.py bench    run every benchmark in bench/ and print the tables
    python3 dev.py setup    only create/refresh .venv
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".pagerless-deps"


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def setup() -> Path:
    """Create .venv if needed and install the declared dependencies when pyproject.toml changed."""
    py = venv_python()
    if not py.exists():
        print("dev.py: creating .venv", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    # the project itself installs editable (console scripts, the pytest11 HIL plugin) with its
    # test extras; redone whenever pyproject.toml changes
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if not STAMP.exists() or STAMP.read_text() != digest:
        print("dev.py: installing pagerless and its dependencies into .venv", flush=True)
        subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "-e", f"{ROOT}[test]"], check=True)
        STAMP.write_text(digest)
    return py


def run(py: Path, *args: str) -> int:
    env = dict(os.environ)
    env["PATH"] = f"{py.parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.call([str(py), *args], cwd=ROOT, env=env)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(__doc__.strip())
        return 0
    cmd, rest = argv[0], argv[1:]
    try:
        py = setup()
    except subprocess.CalledProcessError as exc:
        print(f"dev.py: setup failed ({exc}); see the pip output above", file=sys.stderr)
        return 2
    if cmd == "setup":
        return 0
    if cmd == "test":
        # two xdist workers, each with its own virtual board (tests/unit/test_hil_plugin.py proves
        # the boards are separate); whole files per worker, so both boards run HIL files (and
        # the suite is ~20 % faster than per-test scheduling); `-n 0` runs in one process
        return run(py, "-m", "pytest", "-n", "2", "--dist", "loadfile", *rest)
    if cmd == "demo":
        return run(py, "-m", "host.demo", *rest)
    if cmd == "bench":
        return run(py, "-m", "bench", *rest)
    print(f"dev.py: unknown command {cmd!r}; try: python3 dev.py --help", file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
