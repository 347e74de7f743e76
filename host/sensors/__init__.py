"""What the host knows about each sensor kind, one module per kind, found by name.

``host/sensors/<kind>.py`` describes the kind whose driver is ``firmware/sensors/<kind>.py``:

- ``CHANNEL_UNITS``: (name, unit) of each physical output, in order;
- ``convert(rec, calibration, config)``: the structured raw samples (see ``units.decode``), the
  driver's calibration bytes and its ``config()`` -> {name: float64 array}, raising UnitsError;
- ``CHIP``: the simulated chip the virtual board wires for that kind (``chip.I2CChip`` or
  ``chip.AnalogChip`` subclass).

The wire layout (``SAMPLE_FORMAT``, ``CHANNELS``) is defined once, on the firmware driver class,
and read from there (``SensorKind.driver``). Nothing lists the kinds: :func:`kinds` scans this
package, as ``firmware.sensors.kinds()`` scans the drivers' folder, so adding a kind is one file
on each side. ``units`` (generic conversion) and ``chip`` (chip base classes) are not kinds.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass

import firmware.sensors as drivers
from host.sensors.units import UnitsError

_NOT_KINDS = frozenset({"chip", "units"})


@dataclass(frozen=True)
class SensorKind:
    """One kind's description, as the host parts use it."""

    name: str
    driver: type  # the firmware driver class: SAMPLE_FORMAT, CHANNELS, DEFAULT_STREAM, ...
    channel_units: tuple[tuple[str, str], ...]
    convert: Callable[..., dict]
    chip: type


def kinds() -> list[str]:
    """The kinds described in this package, sorted."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__)
                  if not m.name.startswith("_") and m.name not in _NOT_KINDS)


def kind(name: str) -> SensorKind:
    """The description of ``name`` (imports ``host.sensors.<name>``); UnitsError when unknown."""
    if not isinstance(name, str) or not name.isidentifier() or name.startswith("_") or name in _NOT_KINDS:
        raise _unknown(name)
    module_name = f"{__name__}.{name}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name != module_name:
            raise
        raise _unknown(name) from None
    try:
        driver = drivers.driver(name)
    except LookupError:
        raise UnitsError(f"host/sensors/{name}.py has no driver firmware/sensors/{name}.py") from None
    try:
        return SensorKind(name, driver, tuple(module.CHANNEL_UNITS), module.convert, module.CHIP)
    except AttributeError as e:
        raise UnitsError(f"host/sensors/{name}.py is not a sensor description: {e}") from None


def _unknown(name: object) -> UnitsError:
    return UnitsError("unknown sensor kind %r (known: %s)" % (name, ", ".join(kinds())))
