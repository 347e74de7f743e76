"""A virtual RPI-RP2 bootloader drive, and a fake MicroPython board that can be told to enter it.

`FakeRp2Drive(mount_root)`: `appear()` creates `<mount_root>/RPI-RP2/INFO_UF2.TXT`; a watcher
thread looks at every `.uf2` file copied there, and once a file holds all its blocks it validates
each one (magics, family, numbering, flash range) the way the boot ROM would, writes the payloads
into `flash` and "reboots": the folder disappears and `on_reboot` is called. Invalid blocks are
recorded in `rejected` and the drive stays (the ROM ignores blocks it does not like).

`FakeMicroPythonBoard`: a pty answering mpremote's raw REPL just enough for
`exec("import machine\\nmachine.bootloader()")`; on that command it calls `on_bootloader` and
goes silent, like a board that just reset.
"""

from __future__ import annotations

import os
import pty
import select
import shutil
import struct
import threading
import time
import tty
from pathlib import Path
from typing import Callable

INFO_UF2 = "UF2 Bootloader v3.0\nModel: Raspberry Pi RP2\nBoard-ID: RPI-RP2\n"
MAGIC0, MAGIC1, MAGIC_END = 0x0A324655, 0x9E5D5157, 0x0AB16F30
FLAG_FAMILY = 0x2000
RP2040_FAMILY = 0xE48BFF56
FLASH_BASE, FLASH_SIZE = 0x10000000, 2 * 1024 * 1024


class FakeRp2Drive:
    def __init__(self, mount_root: Path, on_reboot: Callable[[], None] | None = None,
                 poll: float = 0.01) -> None:
        self.mount_root = Path(mount_root)
        self.path = self.mount_root / "RPI-RP2"
        self.flash = bytearray(b"\xff") * FLASH_SIZE
        self.on_reboot = on_reboot
        self.poll = poll
        self.rejected: list[str] = []
        self.accepted_files: list[str] = []
        self.reboots = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def appear(self) -> Path:
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / "INFO_UF2.TXT").write_text(INFO_UF2)
        (self.path / "INDEX.HTM").write_text("<html>redirect</html>")
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._watch, name="fake-rp2-drive", daemon=True)
            self._thread.start()
        return self.path

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def written_files(self) -> list[Path]:
        return sorted(self.path.glob("*.uf2")) if self.path.exists() else []

    def _watch(self) -> None:
        seen_sizes: dict[Path, int] = {}
        while not self._stop.is_set():
            for f in self.written_files():
                try:
                    data = f.read_bytes()
                except OSError:
                    continue
                if seen_sizes.get(f) == len(data):
                    continue
                seen_sizes[f] = len(data)
                if self._consume(f.name, data):
                    self._reboot()
                    return
            time.sleep(self.poll)

    def _consume(self, name: str, data: bytes) -> bool:
        """Validate and program a complete image; False while incomplete or invalid."""
        if len(data) < 512 or len(data) % 512:
            return False
        _, _, _, _, _, _, num_blocks, _ = struct.unpack_from("<8I", data, 0)
        if len(data) // 512 < num_blocks:
            return False  # still being copied
        staged: list[tuple[int, bytes]] = []
        for i in range(len(data) // 512):
            m0, m1, flags, addr, size, block_no, nb, family = struct.unpack_from("<8I", data, i * 512)
            (mend,) = struct.unpack_from("<I", data, i * 512 + 508)
            problem = None
            if (m0, m1, mend) != (MAGIC0, MAGIC1, MAGIC_END):
                problem = "magic"
            elif not flags & FLAG_FAMILY or family != RP2040_FAMILY:
                problem = "family"
            elif block_no != i or nb != num_blocks:
                problem = "numbering"
            elif not (FLASH_BASE <= addr and addr + size <= FLASH_BASE + FLASH_SIZE) or size > 476:
                problem = "address"
            if problem:
                self.rejected.append(f"{name}: block {i}: {problem}")
                return False
            staged.append((addr, data[i * 512 + 32 : i * 512 + 32 + size]))
        for addr, payload in staged:
            self.flash[addr - FLASH_BASE : addr - FLASH_BASE + len(payload)] = payload
        self.accepted_files.append(name)
        return True

    def _reboot(self) -> None:
        self.reboots += 1
        shutil.rmtree(self.path, ignore_errors=True)
        if self.on_reboot is not None:
            self.on_reboot()


class FakeMicroPythonBoard:
    """Just enough raw REPL for mpremote to exec `machine.bootloader()`."""

    def __init__(self, on_bootloader: Callable[[], None] | None = None) -> None:
        self.on_bootloader = on_bootloader
        self.commands: list[bytes] = []
        self._master, self._slave = pty.openpty()
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._serve, name="fake-mpy-board", daemon=True)
        self.in_bootloader = False

    def start(self) -> "FakeMicroPythonBoard":
        self._thread.start()
        return self

    def stop(self) -> None:
        os.write(self._stop_w, b"x")
        self._thread.join(timeout=2)
        for fd in (self._master, self._slave, self._stop_r, self._stop_w):
            try:
                os.close(fd)
            except OSError:
                pass

    def _serve(self) -> None:
        buf = bytearray()
        collecting = False
        while True:
            ready, _, _ = select.select([self._master, self._stop_r], [], [])
            if self._stop_r in ready:
                return
            try:
                data = os.read(self._master, 4096)
            except OSError:
                return
            if self.in_bootloader:
                continue  # a rebooted board answers nothing on this port
            for b in data:
                if collecting:
                    if b == 0x04:
                        collecting = False
                        self._run(bytes(buf))
                        buf.clear()
                    else:
                        buf.append(b)
                    continue
                buf.append(b)
                if buf.endswith(b"\x05A\x01"):
                    os.write(self._master, b"R\x00")  # raw-paste not supported: plain raw REPL
                    buf.clear()
                    collecting = True
                elif buf.endswith(b"\x01"):  # Ctrl-A: (re)enter the raw REPL
                    os.write(self._master, b"raw REPL; CTRL-B to exit\r\n>")
                    buf.clear()
                elif buf.endswith(b"\r\x03") or buf.endswith(b"\r\x02"):
                    buf.clear()

    def _run(self, code: bytes) -> None:
        self.commands.append(code)
        os.write(self._master, b"OK")
        if b"machine.bootloader()" in code:
            self.in_bootloader = True
            if self.on_bootloader is not None:
                self.on_bootloader()
            return
        os.write(self._master, b"\x04\x04>")
