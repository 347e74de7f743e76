"""Where the repository's non-Python parts live, for every host part: one definition.

The host tools run from the checkout (an editable install), beside the firmware they deploy and
the board definitions they read.
"""
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE_DIR = ROOT / "firmware"
BOARDS_DIR = ROOT / "boards"
