"""What the virtual board's VM says it is, and its text output, as the profile's port has them.

Imported once by _vboot, before boot.py. The unix port's `sys` and `micropython` are built in and
fixed (`sys.platform` is 'linux', no `micropython.alloc_emergency_exception_buf`), but `import`
looks in `sys.modules` first, so this module puts `_vsys` and `_vmicropython` there: copies of
the built-ins with the port's values, the same objects otherwise (`sys.path`, `sys.modules`,
`sys.stdin`, ...). `os` is an extensible built-in; `os.py` beside this file adds `uname()`.

Text output: a port's `print()`, REPL results and `sys.stdout.write` go through
`mp_hal_stdout_tx_strn_cooked`, which turns every "\\n" into "\\r\\n"; `sys.stdout.buffer` is
raw. The unix port writes both raw ("the terminal does some postprocessing"), and a pty that
cooked them would cook the firmware's binary frames and mpremote's mount protocol too. So the
text paths are cooked here, above the fd: `builtins.print`, `builtins.__repl_print__` (how the
friendly REPL prints a result), `sys.stdout` (a cooking wrapper whose `buffer` is the raw one)
and `sys.print_exception`. What the unix port prints from C stays "\\n" (docs/virtual-board.md).
"""
import builtins
import io
import sys

import _vmicropython
import _vsys

_print = builtins.print
_write = _vsys.stdout.write


def _rprint(o):
    if o is not None:
        _vsys.stdout.write(repr(o))
        _write("\n")
        builtins._ = o


def _cprint(*args, sep=" ", end="\n", file=None):
    if file is not None and file is not _vsys.stdout:
        _print(*args, sep=sep, end=end, file=file)
        return
    w = _write
    first = True
    for a in args:
        if not first:
            w(sep)
        first = False
        w(a if isinstance(a, str) else str(a))
    w(end)


def _print_exception(exc, file=None):
    if file is not None and file is not _vsys.stdout:
        sys.print_exception(exc, file)
        return
    s = io.StringIO()
    sys.print_exception(exc, s)
    _write(s.getvalue())


_vsys.print_exception = _print_exception
builtins.print = _cprint
builtins.__repl_print__ = _rprint
sys.modules["sys"] = _vsys
sys.modules["micropython"] = _vmicropython
