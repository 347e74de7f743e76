"""The sections of a board.json (USB ids, flash, I2C buses, ADC inputs, sensor wiring, link rates,
reset causes, heap sizes): each one's typed value and its validator.  `host.device.boards` puts them
together into a `BoardDefinition`; a validator reports every mistake it finds to the `FieldReader`
and returns what it could read, so one pass names all the mistakes of a file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from firmware import wire
from host.device.json_fields import FieldReader
from host.device.mcu import ESP_CHIP_NAMES, UF2_FAMILY_BY_MCU

FLASH_METHODS = ("esptool", "uf2", "virtual")
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


@dataclass(frozen=True)
class I2CBus:
    id: int
    sda: int | None = None
    scl: int | None = None
    freq: int = 400_000
    timeout_us: int = 50_000


@dataclass(frozen=True)
class AdcInput:
    """An ADC input; with `dma_ring_bytes` its converter can run on its own clock into a DMA ring
    of that size (firmware/adcring.py: the RP2040's, `channel` 0..3 for GPIO26..29)."""

    name: str
    pin: int
    vref_mv: int = 3300
    channel: int | None = None
    dma_ring_bytes: int | None = None


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


_FLASH_FIELDS = {"esptool": ("method", "chip", "chip_id", "offset", "flash_size", "baud"),
                 "uf2": ("method", "family_id", "flash_base", "flash_size", "drive_label"),
                 "virtual": ("method",)}


def usb_id(r: FieldReader, data: dict, key: str, *, required: bool) -> UsbId | None:
    usb = r.obj(data, "", key, required=required)
    if usb is None:
        return None
    return usb_entry(r, usb, key)


def usb_entry(r: FieldReader, usb: dict, key: str) -> UsbId:
    r.known(usb, key, ("vid", "pid", "vendor"))
    return UsbId(r.integer(usb, key, "vid", lo=0, hi=0xFFFF), r.integer(usb, key, "pid", lo=0, hi=0xFFFF),
                 r.text(usb, key, "vendor", required=False, default=""))


def flash_spec(r: FieldReader, data: dict, mcu: str | None) -> FlashSpec | None:
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


def i2c_buses(r: FieldReader, data: dict) -> tuple[I2CBus, ...]:
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


_RING_SIZES = tuple(1 << k for k in range(6, 16))  # firmware/adcring.py's 64..32768


def adc_inputs(r: FieldReader, data: dict) -> tuple[AdcInput, ...]:
    inputs: list[AdcInput] = []
    for at, adc in r.items(data, "adc"):
        r.known(adc, at, ("name", "pin", "vref_mv", "channel", "dma_ring_bytes"))
        ring = r.take(adc, at, "dma_ring_bytes", lambda v: type(v) is int and v in _RING_SIZES, "a power of two in 64..32768",
                      False, None)
        a = AdcInput(name=r.text(adc, at, "name"), pin=r.integer(adc, at, "pin", lo=0),
                     vref_mv=r.integer(adc, at, "vref_mv", required=False, lo=1, default=3300),
                     channel=r.integer(adc, at, "channel", required=ring is not None, lo=0, hi=3),
                     dma_ring_bytes=ring)
        if a.name is not None and any(o.name == a.name for o in inputs):
            r.problem(f"{at}.name", f"ADC input {a.name!r} is defined twice", "one entry per name")
        inputs.append(a)
    return tuple(inputs)


def sensor_wiring(r: FieldReader, data: dict, i2c: tuple[I2CBus, ...], adc: tuple[AdcInput, ...]) -> tuple[SensorWiring, ...]:
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


def link_spec(r: FieldReader, data: dict, *, required: bool) -> LinkSpec | None:
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


def reset_cause_names(r: FieldReader, data: dict) -> dict[str, str]:
    causes = r.obj(data, "", "reset_causes", required=False) or {}
    r.known(causes, "reset_causes", RESET_EVENTS)
    names = ", ".join(RESET_CAUSE_CODES)
    return {e: v for e in RESET_EVENTS if e in causes and
            (v := r.take(causes, "reset_causes", e, lambda x: isinstance(x, str) and x in RESET_CAUSE_CODES, f"one of {names}")) is not None}


def heap_size(r: FieldReader, obj: dict, at: str, key: str) -> Any:
    return r.take(obj, at, key, _is_heap_size, "a heap size such as '192k' or '1m'")


def _is_heap_size(v: Any) -> bool:
    """What the unix port's `-X heapsize=` takes: digits with an optional k or m."""
    return isinstance(v, str) and (v.isdigit() or v[:-1].isdigit() and v[-1] in "kKmM")
