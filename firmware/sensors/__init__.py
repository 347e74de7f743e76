"""On-board sensor drivers, one module per kind, found by name (see docs/architecture.md).

``sensors/<kind>.py`` holds one driver class, bus injected (micropython-lib style), and ends with
``DRIVER = <class>``. The class carries everything the rest of the firmware and the host need as
data: the wire layout (``SAMPLE_FORMAT``, ``CHANNELS``), ``MIN_PERIOD_US`` and its default stream
``DEFAULT_STREAM = (name, period_us, batch)``. No list of kinds is kept anywhere: a new file is a
new kind. The host imports this package as ``firmware.sensors`` and uses the same two functions.

Both run at boot or on a sensor's recovery (they allocate). No importlib on MicroPython:
``__import__`` with a non-empty fromlist returns the submodule itself on both ports.
"""


def kinds():
    """The kinds whose driver module (.py or .mpy) is in this folder, sorted."""
    import os

    dirs = __path__
    if isinstance(dirs, str):  # MicroPython: a package's __path__ is one string
        dirs = (dirs,)
    out = []
    for d in dirs:
        try:
            names = os.listdir(d)
        except OSError:
            continue
        for f in names:
            dot = f.rfind(".")
            if dot > 0 and f[dot + 1:] in ("py", "mpy") and f[0] != "_" and f[:dot] not in out:
                out.append(f[:dot])
    out.sort()
    return out


def driver(kind):
    """The driver class of ``kind`` (its module's ``DRIVER``); LookupError for an unknown kind.

    An ImportError raised inside an existing driver module is that module's bug and propagates.
    """
    if not isinstance(kind, str) or not kind or kind[0] == "_" or "." in kind or "/" in kind:
        raise LookupError("unknown sensor kind %r" % (kind,))
    try:
        module = __import__(__name__ + "." + kind, None, None, ("DRIVER",))
    except ImportError:
        if kind in kinds():
            raise
        raise LookupError("unknown sensor kind %r (known: %s)" % (kind, ", ".join(kinds())))
    return module.DRIVER
