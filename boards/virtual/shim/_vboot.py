"""Power-on sequence of the virtual board: boot.py, then main.py unless the REPL asked otherwise.

The runner starts the VM with `-i -c "import _vboot"`, so the REPL follows as on a real board.
A real port runs main.py only after a power-on or a soft reset from the friendly REPL; after a
soft reset from the raw REPL (mpremote) it runs boot.py only. PAGERLESS_VB_MAIN carries that.

First the board's flash volume replaces the host's filesystem (_vflash). The shim modules live
in a host folder, so every one of them is imported before that, as a board has its `machine`
built in: once the volume is `/`, no import can reach the host.
"""
import os
import sys

import __main__
import micropython


def _import_shims():
    here = __file__.rsplit("/", 1)[0]
    names = [n[:-3] for n in os.listdir(here) if n.endswith(".py") and n != "_vboot.py"]
    names.sort(key=lambda n: n != "machine")
    for name in names:
        try:
            __import__(name)
        except ImportError:  # a module this profile's port lacks (rp2 on esp32): absent, as there
            pass
        except Exception as e:  # noqa: BLE001  (the board still boots, as with a broken frozen module)
            sys.print_exception(e)


def _run(name):
    try:
        f = open(name)
    except OSError:
        return
    with f:
        src = f.read()
    try:
        # in the REPL's globals, as pyexec_file does: what main.py defines stays at the REPL
        exec(compile(src, name, "exec"), __main__.__dict__)
    except SystemExit:
        raise
    except BaseException as e:  # a real board prints the traceback and goes on to the REPL
        sys.print_exception(e)


_import_shims()
import _vflash  # noqa: E402

_vflash.mount()
sys.path[:] = ["", ".frozen", "/lib"]  # a board's: the shims' host folder is gone
# Ctrl-C was off since the VM started (host/virtual_board/vm_launch.py): a board mounts its flash
# in C before any Python runs, so nothing can stop it half way; from here on boot.py and main.py
# can be interrupted as on a board
micropython.kbd_intr(3)
del _import_shims, _vflash
_run("boot.py")
if os.getenv("PAGERLESS_VB_MAIN") == "1":
    _run("main.py")
del _run
