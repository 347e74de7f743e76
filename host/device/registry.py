"""Where running virtual boards announce themselves, so tools can say `--port virtual`.

`$PAGERLESS_HOME` (default ~/.pagerless) holds, per board name, a symlink `<name>` to the current
pty and `<name>.json` with the port, the runner's pid, the board's folders, its serial identity
and its control socket. The port name changes when the link is cut and restored; the serial
does not, which is how the monitor finds the same board again.
"""
from __future__ import annotations

import json
import os
from pathlib import Path


def home() -> Path:
    return Path(os.environ.get("PAGERLESS_HOME") or Path.home() / ".pagerless")


def publish(name: str, entry: dict) -> None:
    h = home()
    h.mkdir(parents=True, exist_ok=True)
    tmp = h / f".{name}.json.tmp"
    tmp.write_text(json.dumps(entry, indent=1))
    os.replace(tmp, h / f"{name}.json")
    link = h / name
    tmp_link = h / f".{name}.link"
    if tmp_link.is_symlink() or tmp_link.exists():
        tmp_link.unlink()
    if entry.get("port"):
        os.symlink(entry["port"], tmp_link)
        os.replace(tmp_link, link)
    elif link.is_symlink():  # the port is gone: no stale name for a tool to open by mistake
        link.unlink()


def withdraw(name: str, pid: int) -> None:
    """Remove the entry if it is still ours (another runner may have taken the name since)."""
    entry = lookup(name)
    if entry is None or entry.get("pid") != pid:
        return
    h = home()
    for p in (h / name, h / f"{name}.json"):
        if p.is_symlink() or p.exists():
            p.unlink()


def lookup(name: str = "virtual") -> dict | None:
    """The entry of a running board, or None when there is none or its runner is gone."""
    try:
        entry = json.loads((home() / f"{name}.json").read_text())
    except (OSError, ValueError):
        return None
    try:
        os.kill(int(entry["pid"]), 0)
    except (OSError, KeyError, ValueError):
        return None
    return entry
