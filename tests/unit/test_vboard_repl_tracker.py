"""The virtual board's REPL tracker (host/virtual_board/repl_tracker.py): after a soft reset from
the raw REPL it hides the unix port's friendly banner and re-enters the raw REPL; any other boot
passes the VM's output through untouched."""
from __future__ import annotations

from host.virtual_board.repl_tracker import ReplTracker

BANNER = b"MicroPython v1.28.0 on 2026-01-01; linux [GCC 12] version\r\nUse Ctrl-D to exit, Ctrl-E for paste mode\r\n"
RAW = b"raw REPL; CTRL-B to exit\r\n>"


def tracker():
    sent = []
    return ReplTracker(sent.append), sent


def test_soft_reset_from_the_raw_repl_hides_the_banner_and_comes_back_raw():
    t, sent = tracker()
    t.booting(raw_after=True)
    assert t.watch(b"boot.py says hi\r\n" + BANNER) == b"boot.py says hi\r\n"
    assert t.watch(b">>> ") == b"" and sent == [b"\x01"]
    assert t.watch(b"\r\n" + RAW) == RAW and t.mode == "raw"
    assert t.watch(b"OK") == b"OK"


def test_a_reset_during_the_banner_hunt_passes_the_new_boots_output():
    """Seen on a loaded machine: the HIL reset button pressed after a deploy's soft reset had
    printed its banner but not yet the raw REPL's; the new boot's frames were all swallowed."""
    t, _ = tracker()
    t.booting(raw_after=True)
    t.watch(BANNER)  # the soft reset's VM got as far as its banner
    t.booting(raw_after=False)  # the reset button: main.py runs and streams frames
    frame = bytes(range(1, 200)) + b"\x00"
    assert t.watch(frame) == frame and t.mode == "friendly"
