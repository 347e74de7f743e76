"""Exceptions raised by the flashing and deploy tools, one class per cause.

The CLI (`host/flash.py`) is the only place that turns them into text and exit codes:
`VerificationError` exits 1 (the write happened but the board does not hold what we sent),
every other `FlashError` exits 2 (nothing was written, or the tool could not reach the board).
"""

from __future__ import annotations


class FlashError(Exception):
    """Base class: something stopped a flash or deploy. The message is one line for the user."""

    exit_code = 2


class BoardNotFound(FlashError):
    """No port (or several) matched what the user asked for, or a board did not (re)appear."""


class PortBusyError(FlashError):
    """Another program holds the board's port (the message names it where the OS can tell)."""


class BoardDefinitionError(FlashError, ValueError):
    """boards/<name>/board.json is missing, unreadable or wrong: `problems` holds one line per mistake."""

    def __init__(self, *problems: str) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class ImageError(FlashError, ValueError):
    """The firmware image would brick or confuse the board; refused before writing a byte."""


class DeviceError(FlashError):
    """The board answered, but not as expected (raw REPL refused, script failed, no bootloader)."""


class VerificationError(FlashError):
    """Data was written but the board's copy does not match (MD5 on flash, SHA-256 of a file)."""

    exit_code = 1
