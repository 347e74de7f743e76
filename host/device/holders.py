"""Who holds a serial port: the one "port is busy" message every tool prints, naming the holder.

The monitor, the HIL capture, mpremote and esptool all open ports exclusively (a `flock` on the
device), so a second program gets EAGAIN. mpremote reports that as "failed to access" and esptool as
"the port is busy or doesn't exist"; `probe_busy` asks the port itself so both tools say the same
thing as the monitor. On Linux the holder is found by scanning `/proc/*/fd` for the device's inode
(only processes we may inspect: ours, or every one as root); elsewhere the message names no one.
"""
from __future__ import annotations

import errno
import os
from dataclasses import dataclass

BUSY = "port is busy (another monitor or program has it open)"


@dataclass(frozen=True, slots=True)
class Holder:
    pid: int
    command: str   # short: the program and its first argument


def _command(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        argv = []
    if not argv:
        return "?"
    words = [os.path.basename(argv[0])]
    if words[0].startswith("python") and len(argv) > 1:  # the script or module says more than "python3"
        words += argv[1:3] if argv[1] == "-m" else [os.path.basename(argv[1])]
    return " ".join(words)[:60]


def port_holders(path: str) -> list[Holder]:
    """Processes other than this one with `path` open (Linux; [] where /proc cannot tell)."""
    try:
        st = os.stat(path)
    except OSError:
        return []
    key = (st.st_dev, st.st_ino)
    me = os.getpid()
    found = []
    try:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return []
    for pid in pids:
        if pid == me:
            continue
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                s = os.stat(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if (s.st_dev, s.st_ino) == key:
                found.append(Holder(pid, _command(pid)))
                break
    return found


def busy_message(path: str) -> str:
    """`<path>: port is busy (another monitor or program has it open)`, with the holders if known."""
    held = port_holders(path)
    who = "; held by " + ", ".join(f"{h.command} (pid {h.pid})" for h in held) if held else ""
    return f"{path}: {BUSY}{who}"


def is_busy_error(exc: BaseException) -> bool:
    """Whether an open failed because someone else holds the port (flock or the driver's EBUSY)."""
    err = getattr(exc, "errno", None)
    return err in (errno.EBUSY, errno.EAGAIN, errno.EWOULDBLOCK) or "exclusively lock" in str(exc)


def probe_busy(path: str) -> str | None:
    """Open `path` exclusively for a moment: the busy message if another program holds it, else None.

    For a library that lost the cause of its failed open. Device paths only (a URL such as
    rfc2217:// has nothing to lock); DTR and RTS are kept low so an ESP board is not reset."""
    if "://" in path:
        return None
    import serial

    port = serial.Serial(None, exclusive=True)
    port.port = path
    port.dtr = False
    port.rts = False
    try:
        port.open()
    except (serial.SerialException, OSError) as exc:
        return busy_message(path) if is_busy_error(exc) else None
    port.close()
    return None
