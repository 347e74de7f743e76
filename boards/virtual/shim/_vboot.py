"""Power-on sequence of the virtual board: boot.py, then main.py unless the REPL asked otherwise.

The runner starts the VM with `-i -c "import _vboot"`, so the REPL follows as on a real board.
A real port runs main.py only after a power-on or a soft reset from the friendly REPL; after a
soft reset from the raw REPL (mpremote) it runs boot.py only. PAGERLESS_VB_MAIN carries that.
"""
import os
import sys

import __main__


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


_run("boot.py")
if os.getenv("PAGERLESS_VB_MAIN") == "1":
    _run("main.py")
del _run
