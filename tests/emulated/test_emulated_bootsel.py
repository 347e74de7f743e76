"""`host/flash.py firmware` against the emulated RP2040: machine.bootloader() over the raw REPL,
the RPI-RP2 drive the project supplies (host/emulated_rp2040/bootsel.py), the copy, and the board
back on a new serial port running the new image. Skipped without a UF2 ($PAGERLESS_RP2_UF2 or
--rp2-image)."""
from __future__ import annotations

import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from host.device import ports
from host.emulated_rp2040.image import RP2040_FAMILY, uf2_blocks

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
RP2350_ARM_FAMILY = 0xE48BFF59
MARKER = b"PAGERLESS-BOOTSEL-MARK\0\0"


def _block(addr: int, payload: bytes, no: int, total: int, family: int) -> bytes:
    head = struct.pack("<8I", 0x0A324655, 0x9E5D5157, 0x2000, addr, len(payload), no, total, family)
    return head + payload.ljust(476, b"\0") + struct.pack("<I", 0x0AB16F30)


def _with_marker(uf2: bytes) -> tuple[bytes, int]:
    """The image plus one block writing MARKER in the gap between the firmware and the filesystem:
    the board can only read it back if the new image was programmed."""
    end = max(addr + len(p) for addr, p in uf2_blocks(uf2))
    addr = (end + 0xFFF) & ~0xFFF
    total = len(uf2) // 512 + 1
    blocks = [bytearray(uf2[i:i + 512]) for i in range(0, len(uf2), 512)]
    for b in blocks:
        struct.pack_into("<I", b, 24, total)
    return b"".join(blocks) + _block(addr, MARKER.ljust(256, b"\0"), total - 1, total, RP2040_FAMILY), addr


def _flash(env: dict, image: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "host" / "flash.py"), "firmware", "--board", "rp2040_pico",
                           "--image", str(image), "--port", "emulated_rp2040", "--timeout", "60"],
                          capture_output=True, text=True, env=env, timeout=240)


def test_flash_firmware_reboots_into_bootsel_and_the_board_comes_back_on_the_new_image(
        erp_factory, tmp_path, tool_env, board_exec, exec_when_back, pagerless_home, rp2_image):
    erp = erp_factory(name="emulated_rp2040")
    exec_when_back(erp.port, "f = open('keep.txt', 'w')\nf.write('kept')\nf.close()")
    port_before = erp.port

    foreign = tmp_path / "rp2350.uf2"
    foreign.write_bytes(_block(0x10000000, b"\x00" * 256, 0, 1, RP2350_ARM_FAMILY))
    refused = _flash(tool_env, foreign)
    assert refused.returncode == 2 and "family" in refused.stderr, refused.stderr
    assert erp.port == port_before and erp.flashed_images == 0  # refused before the board was touched

    new, marker_addr = _with_marker(rp2_image.read_bytes())
    image = tmp_path / "new.uf2"
    image.write_bytes(new)
    t0 = time.monotonic()
    done = _flash(tool_env, image)
    wall = time.monotonic() - t0
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Board is back on" in done.stdout + done.stderr
    assert erp.flashed_images == 1 and not erp.bootsel.shown
    assert not (pagerless_home / "drives" / "emulated_rp2040").exists()  # the drive unmounted
    port_after = ports.resolve_port("emulated_rp2040", None)
    assert port_after == erp.port and erp.link.stats.reconnects == 1  # re-enumerated (Linux may reuse the name)
    out = exec_when_back(port_after, f"import machine\nprint(bytes(machine.mem8[{marker_addr:#x} + i]"
                                     f" for i in range({len(MARKER)})))\nprint(open('keep.txt').read())")
    assert repr(MARKER) in out and "kept" in out  # the new image runs; littlefs survived the update
    print(f"flash.py firmware (BOOTSEL, copy, re-enumeration): {wall:.1f} s wall")


def test_the_drive_ignores_a_foreign_family_uf2_as_the_boot_rom_does(erp_factory, tmp_path, pagerless_home,
                                                                      exec_when_back, rp2_image):
    from host.flashing.uf2 import enter_bootloader_via_mpremote, find_rp2_drive, default_mount_roots

    erp = erp_factory(name="erp-drive")
    enter_bootloader_via_mpremote(erp.port)
    end = time.monotonic() + 30
    drive = None
    while drive is None and time.monotonic() < end:
        drive = find_rp2_drive(default_mount_roots())
        time.sleep(0.05)
    assert drive == pagerless_home / "drives" / "erp-drive"
    assert {p.name for p in drive.iterdir()} == {"INFO_UF2.TXT", "INDEX.HTM"}
    assert ports.read_virtual_board("erp-drive") is None  # no serial port while in BOOTSEL
    (drive / "other.uf2").write_bytes(_block(0x10000000, b"\x00" * 256, 0, 1, RP2350_ARM_FAMILY))
    time.sleep(1.0)
    assert drive.is_dir() and erp.flashed_images == 0 and "other.uf2" in erp.bootsel.ignored
    (drive / "NEW.UF2").write_bytes(rp2_image.read_bytes())
    while erp.flashed_images == 0 and time.monotonic() < end + 30:
        time.sleep(0.05)
    assert erp.flashed_images == 1 and not drive.exists()
    vb = None
    while vb is None and time.monotonic() < end + 60:
        vb = ports.read_virtual_board("erp-drive")
        time.sleep(0.1)
    assert "rp2" in exec_when_back(vb.port, "import sys\nprint(sys.platform)")
