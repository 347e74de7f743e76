"""`sys` as the profile's port has it (see _vport.py): the built-in's objects, the port's platform
and a text `stdout` that turns "\\n" into "\\r\\n" as a port's does, its `buffer` left raw."""
import io
import os

from sys import *  # noqa: F401,F403  (argv, path, modules, stdin, exit, ... the same objects)
from sys import stdout as _stdout

platform = "esp32" if os.getenv("PAGERLESS_VB_PROFILE") == "esp32" else "rp2"
_raw = _stdout.write


class _Cooked(io.IOBase):
    """sys.stdout: text cooked as mp_hal_stdout_tx_strn_cooked does, `buffer` raw."""

    buffer = _stdout.buffer

    def write(self, s):
        if not isinstance(s, str):
            s = str(s, "utf-8") if isinstance(s, (bytes, bytearray)) else s
        w = _raw
        start = 0
        i = s.find("\n")
        while i >= 0:
            if i > start:
                w(s[start:i])
            w("\r\n")
            start = i + 1
            i = s.find("\n", start)
        if start < len(s):
            w(s[start:] if start else s)
        return len(s)

    def flush(self):
        pass

    def fileno(self):
        return 1

    def ioctl(self, req, arg):
        """select.poll() on sys.stdout works as on the built-in: its fd (MP_STREAM_GET_FILENO)."""
        if req == 10:
            return 1
        if req == 3:  # MP_STREAM_POLL
            import select

            p = select.poll()
            p.register(_stdout, arg)
            r = p.poll(0)
            return r[0][1] if r else 0
        return 0


stdout = _Cooked()
