"""Where the MicroPython UF2 comes from: a path given by the caller, else $PAGERLESS_RP2_UF2.

The project never ships the image (every RP2040 user already has it; docs/emulated-rp2040.md says
how to get or build it), so everything that needs one asks here and says the same thing when
there is none.
"""
from __future__ import annotations

import os
import struct
from pathlib import Path

from host.device.mcu import UF2_FAMILY_BY_MCU
from host.errors import ImageError

ENV_VAR = "PAGERLESS_RP2_UF2"
PYTEST_OPTION = "--rp2-image"
MISSING = (f"no MicroPython RP2040 UF2: set {ENV_VAR}=/path/to/micropython.uf2 (or pass {PYTEST_OPTION} "
           "to pytest, --image to the runner); docs/emulated-rp2040.md says how to get or build one")

_UF2_MAGIC = (0x0A324655, 0x9E5D5157, 0x0AB16F30)
_FLAG_NOT_MAIN_FLASH = 0x00000001
_FLAG_FAMILY = 0x00002000
RP2040_FAMILY = UF2_FAMILY_BY_MCU["rp2040"]


def image_path(given: str | os.PathLike | None = None) -> Path | None:
    """`given`, else $PAGERLESS_RP2_UF2, when it names an existing file; None otherwise."""
    raw = given if given not in (None, "") else os.environ.get(ENV_VAR)
    if raw in (None, ""):
        return None
    path = Path(raw).expanduser()
    return path if path.is_file() else None


def require_image(given: str | os.PathLike | None = None) -> Path:
    path = image_path(given)
    if path is None:
        where = f" ({given} does not exist)" if given else ""
        raise ImageError(MISSING + where)
    return path


def uf2_blocks(data: bytes, family: int = RP2040_FAMILY) -> list[tuple[int, bytes]]:
    """(flash address, payload) of every block of a UF2 for `family`; ImageError for anything else.

    A UF2 for another chip (an RP2350, an ESP32-S2) is refused whole, as the RP2040 boot ROM
    ignores its blocks: nothing is half-written.
    """
    if not data or len(data) % 512:
        raise ImageError(f"not a UF2 image ({len(data)} bytes is not a whole number of 512-byte blocks)")
    blocks = []
    for off in range(0, len(data), 512):
        m0, m1, flags, addr, size, _no, _count, fam = struct.unpack_from("<8I", data, off)
        (m_end,) = struct.unpack_from("<I", data, off + 508)
        if (m0, m1, m_end) != _UF2_MAGIC:
            raise ImageError(f"not a UF2 image (bad magic in block {off // 512})")
        if not flags & _FLAG_FAMILY or fam != family:
            raise ImageError(f"UF2 block {off // 512} is for family {fam:#010x}, not the RP2040's {family:#010x}")
        if size > 476:
            raise ImageError(f"UF2 block {off // 512} has an impossible payload size {size}")
        if flags & _FLAG_NOT_MAIN_FLASH:
            continue
        blocks.append((addr, data[off + 32:off + 32 + size]))
    return blocks
