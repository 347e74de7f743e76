"""Board definitions (`boards/<name>/board.json`), validated once on load and read as typed fields.

`load_board(name)` returns a frozen `BoardDefinition`; the flasher, the deploy, the monitor, the
virtual board, the HIL plugin and the benches read a board through it and nothing else. A file
with mistakes raises `BoardDefinitionError` with one line per mistake (file, field, what is wrong,
what is expected), every mistake at once, so one edit fixes a board.json rather than one run per
typo. The parsed dict stays on `BoardDefinition.raw` only for what reaches the device verbatim
(deploy ships board.json, which the firmware reads with its own small reader, firmware/hardware.py).
Each section's type and validator is in `host.device.board_sections` (re-exported here).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from host.device.board_sections import (FLASH_METHODS, RESET_CAUSE_CODES, RESET_EVENTS, UNLIMITED, AdcInput,
                                        EsptoolFlash, FlashSpec, I2CBus, LinkSpec, SensorWiring, Uf2Flash, UsbId,
                                        VirtualFlash, adc_inputs, flash_spec, heap_size, i2c_buses, link_spec,
                                        reset_cause_names, sensor_wiring, usb_entry, usb_id)
from host.device.json_fields import FieldReader, describe
from host.errors import BoardDefinitionError
from host.paths import BOARDS_DIR, ROOT

__all__ = ["BOARDS_DIR", "FLASH_METHODS", "MPY_ARCHS", "RESET_CAUSE_CODES", "RESET_EVENTS", "UNLIMITED",
           "AdcInput", "BoardDefinition", "EsptoolFlash", "FlashSpec", "I2CBus", "LinkSpec", "SensorWiring",
           "Uf2Flash", "UsbId", "VirtualFlash", "board_names", "board_path", "load_board", "load_board_file",
           "parse_board"]

# mpy-cross -march values (py/persistentcode.h MP_NATIVE_ARCH_*)
MPY_ARCHS = ("x86", "x64", "armv6", "armv6m", "armv7m", "armv7em", "armv7emsp", "armv7emdp", "xtensa",
             "xtensawin", "rv32imc", "rv64imc")
_Flash = TypeVar("_Flash", EsptoolFlash, Uf2Flash, VirtualFlash)


@dataclass(frozen=True)
class BoardDefinition:
    name: str
    title: str
    mcu: str
    heap: str
    usb: UsbId
    flash: FlashSpec
    wdt_timeout_ms: int
    mpy_arch: str | None = None
    heap_profiles: dict[str, str] = field(default_factory=dict)
    # the port's GC heap grows on demand (ESP32 since v1.21: MICROPY_GC_SPLIT_HEAP_AUTO starts at 64k
    # and adds regions from the IDF heap), so `heap` is a typical size, not a fixed pool
    heap_grows: bool = False
    bootloader_usb: UsbId | None = None
    usb_alternates: tuple[UsbId, ...] = ()  # other ids the same board enumerates as (USB-UART bridge variants)
    i2c: tuple[I2CBus, ...] = ()
    adc: tuple[AdcInput, ...] = ()
    sensors: tuple[SensorWiring, ...] = ()
    output: str | None = None
    led: int | None = None
    link: LinkSpec | None = None
    # what the port's machine.reset_cause() reports after each RESET_EVENTS restart (a machine constant
    # name): an RP2040 says WDT_RESET after machine.reset() and PWRON_RESET after its RUN pin
    reset_causes: dict[str, str] = field(default_factory=dict)
    path: Path | None = field(default=None, compare=False)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def flash_method(self) -> str:
        return self.flash.method

    def flash_as(self, kind: type[_Flash]) -> _Flash:
        """The flash section as `kind`; BoardDefinitionError when this board is flashed another way."""
        if not isinstance(self.flash, kind):
            raise BoardDefinitionError(f"board {self.name!r} has flash method {self.flash_method!r}, "
                                       f"not {kind.method!r}")
        return self.flash

    def adc_input(self, name: str) -> AdcInput:
        return next(a for a in self.adc if a.name == name)

    def reset_cause(self, event: str) -> int:
        """The wire reset cause (HELLO, STATUS, BOOT event) the board reports after `event`
        (one of RESET_EVENTS); BoardDefinitionError when its board.json does not say."""
        name = self.reset_causes.get(event)
        if name is None:
            raise BoardDefinitionError(f"board {self.name!r} does not state reset_causes.{event} in its board.json "
                                       f"(the machine.reset_cause() name its port reports, e.g. 'WDT_RESET')")
        return RESET_CAUSE_CODES[name]


def board_names(boards_dir: Path | None = None) -> list[str]:
    """Names of the boards that have a board.json, sorted."""
    boards_dir = BOARDS_DIR if boards_dir is None else boards_dir
    return sorted(p.parent.name for p in boards_dir.glob("*/board.json"))


def board_path(name: str, boards_dir: Path | None = None) -> Path:
    boards_dir = BOARDS_DIR if boards_dir is None else boards_dir
    return boards_dir / name / "board.json"


def load_board(name: str, boards_dir: Path | None = None) -> BoardDefinition:
    """The validated definition of board `name`; BoardDefinitionError names the choices or every mistake."""
    boards_dir = BOARDS_DIR if boards_dir is None else boards_dir
    path = board_path(name, boards_dir)
    if not path.is_file():
        known = ", ".join(board_names(boards_dir)) or "none"
        raise BoardDefinitionError(f"unknown board {name!r} (known boards: {known})")
    return load_board_file(path, folder_name=name)


def load_board_file(path: Path, *, folder_name: str | None = None) -> BoardDefinition:
    """The validated definition in `path`; `folder_name`, when given, is the name the file must carry."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BoardDefinitionError(f"cannot read {path}: {exc}") from None
    return parse_board(data, _shown(path), path=path, folder_name=folder_name)


def parse_board(data: Any, where: str, *, path: Path | None = None,
                folder_name: str | None = None) -> BoardDefinition:
    """Validate a parsed board.json; `where` starts each problem line (usually the file's path)."""
    r = FieldReader(where)
    if not isinstance(data, dict):
        r.problem("(top level)", f"is {describe(data)}", "a JSON object")
        raise BoardDefinitionError(*r.problems)
    r.known(data, "", _TOP_LEVEL)
    name = r.text(data, "", "name")
    if name is not None and folder_name is not None and name != folder_name:
        r.problem("name", f"is {name!r}", f"{folder_name!r}, the name of its folder")
    mcu = r.text(data, "", "mcu")
    mpy_arch = r.text(data, "", "mpy_arch", required=False)
    if mpy_arch is not None and mpy_arch not in MPY_ARCHS:
        r.problem("mpy_arch", f"is {mpy_arch!r}", f"an mpy-cross arch ({', '.join(MPY_ARCHS)})")
    heap = heap_size(r, data, "", "heap")
    flash = flash_spec(r, data, mcu)
    virtual = isinstance(flash, VirtualFlash)
    profiles = r.obj(data, "", "heap_profiles", required=virtual)
    i2c = i2c_buses(r, data)
    adc = adc_inputs(r, data)
    output = r.obj(data, "", "output", required=False)
    if output is not None:
        r.known(output, "output", ("kind",))
    board = BoardDefinition(
        name=name, title=r.text(data, "", "title"), mcu=mcu, heap=heap, mpy_arch=mpy_arch,
        usb=usb_id(r, data, "usb", required=True), bootloader_usb=usb_id(r, data, "bootloader_usb", required=False),
        usb_alternates=tuple(u for at, entry in r.items(data, "usb_alternates")
                             if (u := usb_entry(r, entry, at)) is not None),
        flash=flash, wdt_timeout_ms=r.integer(data, "", "wdt_timeout_ms", lo=1),
        heap_profiles={k: heap_size(r, profiles, "heap_profiles", k) for k in (profiles or {})},
        heap_grows=r.take(data, "", "heap_grows", lambda v: isinstance(v, bool), "true or false", False, False),
        i2c=i2c, adc=adc, sensors=sensor_wiring(r, data, i2c, adc),
        output=None if output is None else r.text(output, "output", "kind"),
        led=r.integer(data, "", "led", required=False, lo=0), link=link_spec(r, data, required=virtual),
        reset_causes=reset_cause_names(r, data), path=path, raw=data)
    if r.problems:
        raise BoardDefinitionError(*r.problems)
    return board


_TOP_LEVEL = ("name", "title", "mcu", "mpy_arch", "heap", "heap_grows", "heap_profiles", "usb", "bootloader_usb", "usb_alternates",
              "flash",
              "i2c", "adc", "sensors", "output", "led", "wdt_timeout_ms", "link", "reset_causes")


def _shown(path: Path) -> str:
    """`path` relative to the repository when it is inside it: shorter lines, same meaning."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)
