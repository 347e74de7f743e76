"""Write a MicroPython image to an ESP32-family board with esptool (5.x) used as a library.

Order: validate the image against the board (nothing written on failure), connect (esptool's
DTR/RTS reset into download mode), check the detected chip is the board's, optionally erase,
write, verify by the ROM's/stub's flash MD5, then reset into the new firmware (RTS pulse).
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from typing import Any, Iterator

from host.device.boards import BoardDefinition, EsptoolFlash
from host.device.holders import probe_busy
from host.errors import BoardNotFound, DeviceError, FlashError, PortBusyError, VerificationError
from host.flashing.progress import Reporter, Task
from host.flashing.images import validate_esp_image

ROM_BAUD = 115200


@dataclass(frozen=True)
class EspFlashResult:
    chip: str
    offset: int
    size: int
    md5: str


class _EsptoolLog:
    """Adapter installed as esptool's logger for the duration of a call: esptool's chatter goes to
    the reporter only in verbose mode, its progress bar drives ours."""

    def __init__(self, reporter: Reporter, verbose: bool) -> None:
        from esp_pylib.logger import EspLogBase

        outer = self

        class Log(EspLogBase):  # type: ignore[misc, valid-type]
            def print(self, *args: Any, **kwargs: Any) -> None:
                text = " ".join(str(a) for a in args).strip()
                if verbose and text:
                    reporter.info(text)

            def err(self, *args: Any, suggestion: str | None = None) -> None:
                reporter.warn(" ".join(str(a) for a in args))

            def warn(self, *args: Any, suggestion: str | None = None) -> None:
                reporter.warn(" ".join(str(a) for a in args))

            def note(self, *args: Any) -> None:
                self.print(*args)

            def hint(self, *args: Any) -> None:
                self.print(*args)

            def debug(self, *args: Any) -> None:
                pass

            def set_verbosity(self, mode: int | str) -> None:
                pass

            def progress_bar(self, cur_iter: int, total_iters: int, prefix: str = "", suffix: str = "",
                             bar_length: int = 30) -> None:
                if outer.task is not None:
                    outer.task.set_total(total_iters)
                    outer.task.advance(cur_iter - outer.done)
                    outer.done = cur_iter

        self.instance = Log()
        self.task: Task | None = None
        self.done = 0


@contextlib.contextmanager
def _esptool_logging(reporter: Reporter, verbose: bool) -> Iterator[_EsptoolLog]:
    from esp_pylib.logger import EspLog

    adapter = _EsptoolLog(reporter, verbose)
    saved = EspLog.instance
    EspLog.instance = adapter.instance
    try:
        yield adapter
    finally:
        EspLog.instance = saved


def flash_esp(board: BoardDefinition, image: bytes, port: str, *, baud: int | None = None,
              erase: bool = False, use_stub: bool = True, connect_attempts: int = 3,
              reporter: Reporter | None = None, verbose: bool = False) -> EspFlashResult:
    """Write `image` at the board's flash offset and verify it by MD5.

    Args:
        board: the board's definition (flashed with esptool: flash.chip_id, offset, flash_size, baud).
        image: the MicroPython .bin (as written at the offset; starts with the 0xE9 header).
        port: serial device (or pyserial URL) of the board in download mode.
        baud: transfer baud rate (None: the board's flash.baud); the ROM is reached at 115200 first.
        erase: erase the whole flash first (chip erase with the stub; region erase from the ROM).
        use_stub: upload esptool's flasher stub (faster, compressed); False talks to the ROM only.
        connect_attempts: esptool connection attempts. Each pulses DTR/RTS as esptool does (the
            auto-reset circuit of a DevKit, or the virtual ESP32's RFC 2217 port); a port without
            modem lines gets esptool's one warning and the board must already be in download mode
            (hold BOOT, tap EN). After a verified write, an RTS pulse resets the board into it.

    Raises:
        ImageError: the image is not for this board (nothing written).
        BoardNotFound / DeviceError: the port cannot be opened / the chip is not the board's.
        VerificationError: flash MD5 differs from the image's after writing.
    """
    from esptool.cmds import attach_flash, detect_chip, erase_flash, run_stub, write_flash
    from esptool.util import FatalError, NotImplementedInROMError

    reporter = reporter or Reporter()
    spec = board.flash_as(EsptoolFlash)
    chip_id, offset, flash_size = spec.chip_id, spec.offset, spec.flash_size
    info = validate_esp_image(image, chip_id, offset, flash_size)
    if baud is None:
        baud = ROM_BAUD if spec.baud is None else spec.baud

    with _esptool_logging(reporter, verbose) as log:
        try:
            esp = detect_chip(port, ROM_BAUD, connect_mode="default-reset", connect_attempts=connect_attempts)
        except FatalError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            busy = probe_busy(port) if "Could not open" in first else None
            if busy is not None:
                raise PortBusyError(busy) from None
            if "Could not open" in first:
                raise BoardNotFound(f"cannot open {port}: {first}") from None
            raise DeviceError(f"no ESP bootloader answering on {port}: {first} "
                              "(hold BOOT and tap EN to enter download mode)") from None
        try:
            if esp.IMAGE_CHIP_ID != chip_id:
                raise DeviceError(f"{port} has an {esp.CHIP_NAME}, board {board.name!r} is chip id {chip_id}; "
                                  "refusing to write")
            reporter.info(f"Connected to {esp.CHIP_NAME} on {port}")
            if use_stub:
                esp = run_stub(esp)
            if baud != ROM_BAUD:
                esp.change_baud(baud)
            attach_flash(esp)
            if erase:
                _erase(esp, flash_size, reporter, erase_flash, NotImplementedInROMError)
            with reporter.task(f"Writing {len(image)} bytes at {offset:#x}", len(image)) as task:
                log.task, log.done = task, 0
                try:
                    write_flash(esp, [(offset, image)], flash_size="keep", no_progress=False)
                except FatalError:
                    pass  # esptool's own MD5 check may fail here: ours below says why, by cause
                finally:
                    log.task = None
            expected = hashlib.md5(_padded(image)).hexdigest()
            actual = esp.flash_md5sum(offset, len(_padded(image)))
            if actual != expected:
                raise VerificationError(f"flash MD5 {actual} at {offset:#x} does not match image MD5 {expected}")
            reporter.info(f"Verified {len(image)} bytes at {offset:#x} (MD5 {expected})")
            esp.hard_reset()
            return EspFlashResult(chip=esp.CHIP_NAME, offset=offset, size=info.size, md5=expected)
        except FatalError as exc:
            raise DeviceError(f"esptool: {str(exc).strip().splitlines()[0]}") from None
        except OSError as exc:
            raise DeviceError(f"serial link to {port} failed: {exc}") from None
        finally:
            with contextlib.suppress(Exception):
                esp._port.close()


def _padded(image: bytes) -> bytes:
    """esptool pads images to 4 bytes before writing; the MD5 covers the padded length."""
    return image + b"\xff" * (-len(image) % 4)


def _erase(esp: Any, flash_size: int, reporter: Reporter, erase_flash: Any, not_in_rom: type) -> None:
    reporter.info("Erasing flash...")
    try:
        erase_flash(esp)
    except not_in_rom:
        # The ROM has no chip erase; FLASH_BEGIN erases the region it is told to, so ask for all of it.
        esp.flash_begin(flash_size, 0, logging=False)
    except FlashError:
        raise
