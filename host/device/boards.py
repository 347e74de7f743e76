"""Board definitions (`boards/<name>/board.json`), validated once on load and read as typed fields.

`load_board(name)` returns a frozen `BoardDefinition`; the flasher, the deploy, the monitor, the
virtual board, the HIL plugin and the benches read a board through it and nothing else. A file
with mistakes raises `BoardDefinitionError` with one line per mistake (file, field, what is wrong,
what is expected), every mistake at once, so one edit fixes a board.json rather than one run per
typo. The parsed dict stays on `BoardDefinition.raw` only for what reaches the device verbatim
(deploy ships board.json, which the firmware reads with its own small reader, firmware/hardware.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from firmware import wire
from host.device.json_fields import FieldReader, describe
from host.device.mcu import ESP_CHIP_NAMES, UF2_FAMILY_BY_MCU
from host.errors import BoardDefinitionError
from host.paths import BOARDS_DIR, ROOT

FLASH_METHODS = ("esptool", "uf2", "virtual")
# mpy-cross -march values (py/persistentcode.h MP_NATIVE_ARCH_*)
MPY_ARCHS = ("x86", "x64", "armv6", "armv6m", "armv7m", "armv7em", "armv7emsp", "armv7emdp", "xtensa",
             "xtensawin", "rv32imc", "rv64imc")
UNLIMITED = "unlimited"  # a tool's choice of no pacing at all, never a rate a link section defines
# machine.reset_cause() constants -> the wire's reset causes (firmware/main.py _reset_cause, wire.RC_*)
RESET_CAUSE_CODES = {"PWRON_RESET": wire.RC_POWER_ON, "HARD_RESET": wire.RC_HARD, "WDT_RESET": wire.RC_WATCHDOG,
                     "DEEPSLEEP_RESET": wire.RC_DEEPSLEEP, "SOFT_RESET": wire.RC_SOFT}
# the ways a board restarts that a test can cause: the firmware's machine.reset() (its REBOOT command),
# the reset button / RUN pin, and its watchdog running out
RESET_EVENTS = ("machine_reset", "reset_button", "watchdog")


@dataclass(frozen=True)
class UsbId:
    vid: int
    pid: int
    vendor: str = ""

    def __str__(self) -> str:
        return f"{self.vid:04X}:{self.pid:04X}"

    def matches(self, vid: int | None, pid: int | None) -> bool:
        return vid == self.vid and pid == self.pid


@dataclass(frozen=True)
class EsptoolFlash:
    """Written with esptool at `offset`; `baud` None means the ROM loader's own rate."""

    method: ClassVar[str] = "esptool"
    chip: str
    chip_id: int
    offset: int
    flash_size: int
    baud: int | None = None


@dataclass(frozen=True)
class Uf2Flash:
    """Copied as a .uf2 file to the bootloader's mass-storage drive named `drive_label`."""

    method: ClassVar[str] = "uf2"
    family_id: int
    flash_base: int
    flash_size: int
    drive_label: str = "RPI-RP2"


@dataclass(frozen=True)
class VirtualFlash:
    """Nothing to flash: the virtual board runs the unix port; only deploy applies."""

    method: ClassVar[str] = "virtual"


FlashSpec = EsptoolFlash | Uf2Flash | VirtualFlash
_Flash = TypeVar("_Flash", EsptoolFlash, Uf2Flash, VirtualFlash)


@dataclass(frozen=True)
class I2CBus:
    id: int
    sda: int | None = None
    scl: int | None = None
    freq: int = 400_000
    timeout_us: int = 50_000


@dataclass(frozen=True)
class AdcInput:
    name: str
    pin: int
    vref_mv: int = 3300


@dataclass(frozen=True)
class SensorWiring:
    """One sensor: on an I2C bus at an address, or (`adc` set) on a named ADC input."""

    kind: str
    bus: int | None = None
    address: int | None = None
    adc: str | None = None


@dataclass(frozen=True)
class LinkSpec:
    """The named line rates (bytes/s) a simulated link can be paced at, and the one it starts with."""

    default_rate: str
    rates: dict[str, int]

    @property
    def default_bytes_per_s(self) -> int:
        return self.rates[self.default_rate]


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
    heap = _heap(r, data, "", "heap")
    flash = _flash(r, data, mcu)
    virtual = isinstance(flash, VirtualFlash)
    profiles = r.obj(data, "", "heap_profiles", required=virtual)
    i2c = _i2c(r, data)
    adc = _adc(r, data)
    output = r.obj(data, "", "output", required=False)
    if output is not None:
        r.known(output, "output", ("kind",))
    board = BoardDefinition(
        name=name, title=r.text(data, "", "title"), mcu=mcu, heap=heap, mpy_arch=mpy_arch,
        usb=_usb(r, data, "usb", required=True), bootloader_usb=_usb(r, data, "bootloader_usb", required=False),
        usb_alternates=tuple(u for at, entry in r.items(data, "usb_alternates")
                             if (u := _usb_entry(r, entry, at)) is not None),
        flash=flash, wdt_timeout_ms=r.integer(data, "", "wdt_timeout_ms", lo=1),
        heap_profiles={k: _heap(r, profiles, "heap_profiles", k) for k in (profiles or {})},
        heap_grows=r.take(data, "", "heap_grows", lambda v: isinstance(v, bool), "true or false", False, False),
        i2c=i2c, adc=adc, sensors=_sensors(r, data, i2c, adc),
        output=None if output is None else r.text(output, "output", "kind"),
        led=r.integer(data, "", "led", required=False, lo=0), link=_link(r, data, required=virtual),
        reset_causes=_reset_causes(r, data), path=path, raw=data)
    if r.problems:
        raise BoardDefinitionError(*r.problems)
    return board


_TOP_LEVEL = ("name", "title", "mcu", "mpy_arch", "heap", "heap_grows", "heap_profiles", "usb", "bootloader_usb", "usb_alternates",
              "flash",
              "i2c", "adc", "sensors", "output", "led", "wdt_timeout_ms", "link", "reset_causes")
_FLASH_FIELDS = {"esptool": ("method", "chip", "chip_id", "offset", "flash_size", "baud"),
                 "uf2": ("method", "family_id", "flash_base", "flash_size", "drive_label"),
                 "virtual": ("method",)}


def _usb(r: FieldReader, data: dict, key: str, *, required: bool) -> UsbId | None:
    usb = r.obj(data, "", key, required=required)
    if usb is None:
        return None
    return _usb_entry(r, usb, key)


def _usb_entry(r: FieldReader, usb: dict, key: str) -> UsbId:
    r.known(usb, key, ("vid", "pid", "vendor"))
    return UsbId(r.integer(usb, key, "vid", lo=0, hi=0xFFFF), r.integer(usb, key, "pid", lo=0, hi=0xFFFF),
                 r.text(usb, key, "vendor", required=False, default=""))


def _flash(r: FieldReader, data: dict, mcu: str | None) -> FlashSpec | None:
    spec = r.obj(data, "", "flash")
    if spec is None:
        return None
    method = r.text(spec, "flash", "method")
    if method is None:
        return None
    if method not in FLASH_METHODS:
        r.problem("flash.method", f"is {method!r}", f"one of {', '.join(FLASH_METHODS)}")
        return None
    r.known(spec, "flash", _FLASH_FIELDS[method])
    if method == "virtual":
        return VirtualFlash()
    if method == "esptool":
        return _esptool(r, spec)
    flash = Uf2Flash(family_id=r.integer(spec, "flash", "family_id", lo=0, hi=0xFFFFFFFF),
                     flash_base=r.integer(spec, "flash", "flash_base", lo=0),
                     flash_size=r.integer(spec, "flash", "flash_size", lo=1),
                     drive_label=r.text(spec, "flash", "drive_label", required=False, default="RPI-RP2"))
    _check_uf2_family(r, flash.family_id, mcu)
    return flash


def _esptool(r: FieldReader, spec: dict) -> EsptoolFlash:

    flash = EsptoolFlash(chip=r.text(spec, "flash", "chip"), chip_id=r.integer(spec, "flash", "chip_id", lo=0),
                         offset=r.integer(spec, "flash", "offset", lo=0),
                         flash_size=r.integer(spec, "flash", "flash_size", lo=1),
                         baud=r.integer(spec, "flash", "baud", required=False, lo=1))
    if flash.chip_id is None or flash.chip is None:
        return flash
    chip_name = ESP_CHIP_NAMES.get(flash.chip_id)
    if chip_name is None or flash.chip_id == 0xFFFF:
        known = ", ".join(f"{v} {k}" for k, v in ESP_CHIP_NAMES.items() if k != 0xFFFF)
        r.problem("flash.chip_id", f"is {flash.chip_id}, not an ESP chip id", f"one of {known}")
    elif chip_name.lower().replace("-", "") != flash.chip.lower().replace("-", ""):
        r.problem("flash.chip_id", f"is {flash.chip_id} ({chip_name}) but flash.chip is {flash.chip!r}",
                  "the two to name the same chip")
    return flash


def _check_uf2_family(r: FieldReader, family: int | None, mcu: str | None) -> None:
    """A wrong family id makes the bootloader ignore every block: catch a typo'd board.json early."""

    known = UF2_FAMILY_BY_MCU.get(str(mcu))
    if family is not None and known is not None and family != known:
        r.problem("flash.family_id", f"is {family:#010x}, not the UF2 family of {mcu}",
                  f"{known:#010x} ({known})")


def _i2c(r: FieldReader, data: dict) -> tuple[I2CBus, ...]:
    buses: list[I2CBus] = []
    for at, bus in r.items(data, "i2c"):
        r.known(bus, at, ("id", "sda", "scl", "freq", "timeout_us"))
        b = I2CBus(id=r.integer(bus, at, "id", lo=0), sda=r.integer(bus, at, "sda", required=False, lo=0),
                   scl=r.integer(bus, at, "scl", required=False, lo=0),
                   freq=r.integer(bus, at, "freq", required=False, lo=1, default=400_000),
                   timeout_us=r.integer(bus, at, "timeout_us", required=False, lo=1, default=50_000))
        if (b.sda is None) != (b.scl is None):
            r.problem(at, "has only one of sda and scl", "both pins, or neither (the port's default pins)")
        if b.id is not None and any(o.id == b.id for o in buses):
            r.problem(f"{at}.id", f"bus {b.id} is defined twice", "one entry per bus id")
        buses.append(b)
    return tuple(buses)


def _adc(r: FieldReader, data: dict) -> tuple[AdcInput, ...]:
    inputs: list[AdcInput] = []
    for at, adc in r.items(data, "adc"):
        r.known(adc, at, ("name", "pin", "vref_mv"))
        a = AdcInput(name=r.text(adc, at, "name"), pin=r.integer(adc, at, "pin", lo=0),
                     vref_mv=r.integer(adc, at, "vref_mv", required=False, lo=1, default=3300))
        if a.name is not None and any(o.name == a.name for o in inputs):
            r.problem(f"{at}.name", f"ADC input {a.name!r} is defined twice", "one entry per name")
        inputs.append(a)
    return tuple(inputs)


def _sensors(r: FieldReader, data: dict, i2c: tuple[I2CBus, ...], adc: tuple[AdcInput, ...]) -> tuple[SensorWiring, ...]:
    kinds = _registered_kinds()
    seen: dict[str, str] = {}
    wired: list[SensorWiring] = []
    for at, s in r.items(data, "sensors"):
        r.known(s, at, ("kind", "bus", "address", "adc"))
        kind = r.text(s, at, "kind")
        if kind is not None and kinds is not None and kind not in kinds:
            r.problem(f"{at}.kind", f"is {kind!r}, not a known sensor kind", f"one of {', '.join(kinds)}")
        on_adc, on_i2c = "adc" in s, "address" in s or "bus" in s
        if on_adc == on_i2c:
            r.problem(at, "has both adc and bus/address" if on_adc else "has neither adc nor address",
                      "an I2C sensor (address, optional bus) or an analog one (adc)")
            continue
        if on_adc:
            w = SensorWiring(kind=kind, adc=r.text(s, at, "adc"))
            if w.adc is not None and w.adc not in {a.name for a in adc}:
                r.problem(f"{at}.adc", f"ADC input {w.adc!r} is not defined",
                          f"one of the adc names ({', '.join(a.name for a in adc) or 'none defined'})")
            ids = {f"ADC input {w.adc!r}": w.adc}
        else:
            w = SensorWiring(kind=kind, bus=r.integer(s, at, "bus", required=False, lo=0, default=0),
                             address=r.integer(s, at, "address", lo=0x08, hi=0x77,
                                               expected="a 7-bit I2C address (8..119)"))
            if w.bus is not None and w.bus not in {b.id for b in i2c}:
                r.problem(f"{at}.bus", f"bus {w.bus} is not defined",
                          f"one of the i2c ids ({', '.join(str(b.id) for b in i2c) or 'none defined'})")
            ids = {f"kind {kind!r} on I2C": kind,
                   f"address {w.address or 0:#04x} on bus {w.bus}": None if w.address is None else (w.bus, w.address)}
        for what, ident in ids.items():
            if ident is not None and what in seen:
                r.problem(at, f"duplicate sensor: {what} is already wired at {seen[what]}",
                          "each I2C kind, bus address and ADC input wired once (the firmware finds sensors "
                          "by kind or ADC name)")
            elif ident is not None:
                seen[what] = at
        wired.append(w)
    return tuple(wired)


def _registered_kinds() -> list[str] | None:
    """The host's sensor registry, when host.sensors offers one; None accepts any kind name."""
    import host.sensors

    kinds = getattr(host.sensors, "kinds", None)
    return list(kinds()) if callable(kinds) else None


def _link(r: FieldReader, data: dict, *, required: bool) -> LinkSpec | None:
    link = r.obj(data, "", "link", required=required)
    if link is None:
        return None
    r.known(link, "link", ("default_rate", "rates"))
    rates = r.obj(link, "link", "rates") or {}
    for name in rates:
        r.integer(rates, "link.rates", name, lo=1, expected="a rate in bytes/s (an integer > 0)")
        if name == UNLIMITED:
            r.problem(f"link.rates.{name}", "is a rate name the tools reserve", "another name ('unlimited' "
                      "means no pacing)")
    default = r.text(link, "link", "default_rate")
    if default is not None and rates and default not in rates:
        r.problem("link.default_rate", f"is {default!r}", f"one of the rates ({', '.join(rates)})")
    return LinkSpec(default_rate=default, rates=dict(rates))


def _reset_causes(r: FieldReader, data: dict) -> dict[str, str]:
    causes = r.obj(data, "", "reset_causes", required=False) or {}
    r.known(causes, "reset_causes", RESET_EVENTS)
    names = ", ".join(RESET_CAUSE_CODES)
    return {e: v for e in RESET_EVENTS if e in causes and
            (v := r.take(causes, "reset_causes", e, lambda x: isinstance(x, str) and x in RESET_CAUSE_CODES, f"one of {names}")) is not None}


def _heap(r: FieldReader, obj: dict, at: str, key: str) -> Any:
    return r.take(obj, at, key, _is_heap_size, "a heap size such as '192k' or '1m'")


def _is_heap_size(v: Any) -> bool:
    """What the unix port's `-X heapsize=` takes: digits with an optional k or m."""
    return isinstance(v, str) and (v.isdigit() or v[:-1].isdigit() and v[-1] in "kKmM")


def _shown(path: Path) -> str:
    """`path` relative to the repository when it is inside it: shorter lines, same meaning."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)
