"""`os` as the profile's port has it: the built-in extended with `uname()` (see _vport.py), less the
unix port's ways out to the host (`system`, `putenv`, `unsetenv`), which no board has. `uos` names
this same module, as on the ports."""
import sys

_path = sys.path
sys.path = ()
try:
    from os import *  # noqa: F401,F403
finally:
    sys.path = _path
    del _path

_getenv = getenv  # noqa: F405  (the shim reads its profile from the runner's environment)
del system, putenv, unsetenv  # noqa: F821
sys.modules["uos"] = sys.modules[__name__]


def uname():
    from collections import namedtuple

    esp = _getenv("PAGERLESS_VB_PROFILE") == "esp32"
    v = sys.implementation.version
    release = "%d.%d.%d" % (v[0], v[1], v[2])
    name = "esp32" if esp else "rp2"
    machine = "Generic ESP32 module with ESP32" if esp else "Raspberry Pi Pico with RP2040"
    t = namedtuple("uname_result", ("sysname", "nodename", "release", "version", "machine"))
    return t(name, name, release, "v%s on 2026-01-01 (virtual board)" % release, machine)
