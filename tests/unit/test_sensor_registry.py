"""One registry per side: adding a sensor kind is one driver file plus one host description.

The fourth kind here is made up (a TMP102-like thermometer) and written to temporary package
folders only: firmware config and hardware, the host's units and the virtual board all find it by
name, with no other edit. The end-to-end test adds its board.json wiring line and streams it.
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import struct
import sys
import types

import numpy as np
import pytest

import firmware.sensors
import host.sensors
from host.paths import ROOT
from host.sensors import units
from host.virtual_board.bus import Buses
from host.virtual_board.ipc import BusError

DRIVER_SRC = '''"""A TMP102-like I2C thermometer: 12-bit temperature register, left-justified, 0.0625 degC/LSB."""

try:
    from micropython import const
except ImportError:
    const = lambda x: x  # noqa: E731  (CPython)

_REG_TEMP = const(0x00)
_REG_CONFIG = const(0x01)
_CONFIG_RESET = const(0x60A0)
_ENODEV = const(19)


class TMP102:
    KIND = "tmp102"
    SAMPLE_FORMAT = ">h"
    SAMPLE_SIZE = const(2)
    CHANNELS = (("temperature", "raw"),)
    MIN_PERIOD_US = const(1000)  # the register always holds the newest conversion
    FREE_RUNNING = True
    DEFAULT_STREAM = ("temp", 20000, 5)

    def __init__(self, i2c, address=0x48):
        if not 0x48 <= address <= 0x4B:
            raise ValueError("TMP102 address must be 0x48..0x4b")
        self._i2c = i2c
        self._address = address
        self._config = bytearray(2)
        self.reset()

    def calibration(self):
        return b""

    def config(self):
        return {}

    def start(self):
        """Continuous conversion: nothing to start."""

    def read_into(self, buf):
        self._i2c.readfrom_mem_into(self._address, _REG_TEMP, buf)

    def reset(self):
        """Prove the chip: the configuration register reads its reset value."""
        c = self._config
        try:
            self._i2c.readfrom_mem_into(self._address, _REG_CONFIG, c)
        except OSError:
            raise OSError(_ENODEV, "TMP102 not found at 0x%02x" % self._address)
        if (c[0] << 8 | c[1]) != _CONFIG_RESET:
            raise OSError(_ENODEV, "no TMP102 at 0x%02x (config register)" % self._address)


DRIVER = TMP102
'''

HOST_SRC = '''"""TMP102-like thermometer: degC from the left-justified 12-bit code, and the simulated chip."""

from __future__ import annotations

import math
import time

import numpy as np

from host.sensors.chip import Clock, Drift, I2CChip

CHANNEL_UNITS = (("temperature_c", "degC"),)


def convert(rec: np.ndarray, calibration: bytes, config: dict) -> dict[str, np.ndarray]:
    return {"temperature_c": rec["temperature"].astype(np.float64) / 256.0}


class TMP102(I2CChip):
    KIND = "tmp102"
    DEFAULT_ADDRESS = 0x48
    ADDRESSES = (0x48, 0x49, 0x4A, 0x4B)

    def __init__(self, address: int = DEFAULT_ADDRESS, seed: int = 0, clock: Clock = time.monotonic) -> None:
        super().__init__(address, seed, clock)
        self._temp = Drift(self._rng("env", 0), 20.0, 25.0, ((0.5, 300.0),))
        self._regs = [0, 0x60A0, 0x4B00, 0x5000]
        self._ptr = 0
        self._truth = math.nan

    def write(self, data: bytes) -> None:
        self._ptr = data[0] & 3
        if len(data) >= 3 and self._ptr:
            self._regs[self._ptr] = data[1] << 8 | data[2]

    def read(self, n: int) -> bytes:
        if self._ptr == 0 and not self._frozen:
            code = round(self._temp(self._clock()) * 16)
            self._truth = code / 16
            self._regs[0] = (code & 0xFFF) << 4
        v = self._regs[self._ptr]
        return bytes((v >> 8, v & 0xFF) * n)[:n]

    def truth(self) -> dict[str, float]:
        return {"temperature_c": self._truth}


CHIP = TMP102
'''


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"pagerless_firmware_{name}", ROOT / "firmware" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def device_modules(monkeypatch):
    """firmware/config.py and hardware.py as on the board, where the drivers' package is ``sensors``."""
    monkeypatch.setitem(sys.modules, "sensors", firmware.sensors)
    monkeypatch.setitem(sys.modules, "machine", types.ModuleType("machine"))
    return _load("config"), _load("hardware")


@pytest.fixture
def fourth_kind(tmp_path, monkeypatch):
    """tmp102.py in a second folder of each package: the only two files of the new kind."""
    for pkg, src, sub in ((firmware.sensors, DRIVER_SRC, "fw"), (host.sensors, HOST_SRC, "host")):
        d = tmp_path / sub
        d.mkdir()
        (d / "tmp102.py").write_text(src)
        monkeypatch.setattr(pkg, "__path__", [*pkg.__path__, str(d)])
    importlib.invalidate_caches()
    yield tmp_path
    for pkg in (firmware.sensors, host.sensors):
        sys.modules.pop(pkg.__name__ + ".tmp102", None)
        pkg.__dict__.pop("tmp102", None)


class VirtualI2C:
    """machine.I2C's register reads over the virtual board's buses, as the shim forwards them."""

    def __init__(self, buses: Buses, bus_id: int = 0):
        self._buses = buses
        self._id = bus_id

    def readfrom_mem_into(self, addr: int, reg: int, buf) -> None:
        try:
            self._buses.write(self._id, addr, bytes((reg,)), more=True)
            buf[:] = self._buses.read(self._id, addr, len(buf))
        except BusError as e:
            raise OSError(e.errno, str(e)) from None


def test_firmware_and_host_list_the_same_kinds():
    assert firmware.sensors.kinds() == host.sensors.kinds() == units.kinds()
    assert {"analog", "bme280", "mpu6050", "sht31"} <= set(units.kinds())


@pytest.mark.parametrize("name", host.sensors.kinds())
def test_each_kind_is_described_once_and_coherently(name):
    k = host.sensors.kind(name)
    assert k.driver.KIND == k.chip.KIND == name
    stream, period_us, batch = k.driver.DEFAULT_STREAM
    assert isinstance(stream, str) and period_us >= k.driver.MIN_PERIOD_US and batch >= 1
    assert struct.calcsize(k.driver.SAMPLE_FORMAT) == k.driver.SAMPLE_SIZE
    assert [n for n, _ in k.driver.CHANNELS] == list(units.sample_dtype(name).names)
    config = {"accel_fs_g": 2, "gyro_fs_dps": 250, "vref_mv": 3300}
    calibration = host.sensors.bme280.TYPICAL_CALIBRATION if name == "bme280" else b""
    out = units.to_physical(name, bytes(k.driver.SAMPLE_SIZE), calibration, config)
    assert list(out) == [n for n, _ in units.channel_units(name)]


def test_unknown_kinds_are_named_errors(device_modules):
    config, hardware = device_modules
    with pytest.raises(units.UnitsError, match="unknown sensor kind 'tmp102'"):
        host.sensors.kind("tmp102")
    for not_a_kind in ("units", "chip", "_x", "../bme280", ""):
        with pytest.raises(units.UnitsError, match="unknown sensor kind"):
            host.sensors.kind(not_a_kind)
    with pytest.raises(hardware.HardwareError, match="unknown sensor kind 'tmp102'"):
        hardware.driver_class("tmp102")
    assert "tmp102" not in [s["sensor"] for s in config.defaults()["streams"]]


def test_a_fourth_kind_is_found_on_both_sides_with_no_other_edit(fourth_kind, device_modules):
    config, hardware = device_modules
    assert "tmp102" in firmware.sensors.kinds() == host.sensors.kinds()

    # firmware: the driver by name, its default stream with or without a board
    drv = hardware.driver_class("tmp102")
    assert drv.KIND == "tmp102"
    default = {"name": "temp", "sensor": "tmp102", "period_us": 20000, "batch": 5, "settings": {}}
    assert default in config.defaults()["streams"]
    board = {"sensors": [{"kind": "tmp102", "bus": 0, "address": 0x49}]}
    assert config.defaults(board)["streams"] == [default]

    # host: channels and units, the chip on the virtual bus, read by the driver, in physical units
    assert units.channel_units("tmp102") == [("temperature_c", "degC")]
    buses = Buses(seed=1)
    chip = host.sensors.kind("tmp102").chip(0x49, seed=1)
    buses.bus(0).attach(chip)
    dev = drv(VirtualI2C(buses), address=0x49)
    buf = bytearray(drv.SAMPLE_SIZE)
    dev.read_into(buf)
    out = units.to_physical("tmp102", bytes(buf), dev.calibration(), dev.config())
    assert out["temperature_c"][0] == chip.truth()["temperature_c"]
    assert 20.0 - 1 < out["temperature_c"][0] < 25.0 + 1
    with pytest.raises(OSError):
        drv(VirtualI2C(buses), address=0x48)  # nothing wired there


@pytest.mark.virtual_board
def test_a_fourth_kind_streams_from_the_virtual_board(fourth_kind, vboard_factory):
    """The two files plus the board.json wiring line: the board wires the chip, the firmware (no
    config.json) streams the driver's default stream, the host converts what arrives."""
    from firmware import wire
    from host.testkit.fwboard import VIRTUAL_BOARD_JSON, Reader, install

    definition = json.loads(VIRTUAL_BOARD_JSON.read_text())
    definition["sensors"].append({"kind": "tmp102", "bus": 0, "address": 0x48})
    board_json = fourth_kind / "board.json"
    board_json.write_text(json.dumps(definition))
    board = vboard_factory(board_json=board_json)
    assert board.chip("tmp102").KIND == "tmp102"

    install(board.fs, config=None)
    (board.fs / "board.json").write_text(board_json.read_text())
    (board.fs / "sensors" / "tmp102.py").write_text(DRIVER_SRC)
    r = Reader(board.port)
    try:
        n = len(board.boots)
        board.power_cycle()
        board.wait_boot(n + 1)
        r.wait(lambda: r.of(wire.T_HELLO) and any(
            f.stream == [s["kind"] for s in r.of(wire.T_HELLO)[0].hello()["streams"]].index("tmp102")
            for f in r.of(wire.T_DATA)), timeout=15, what="HELLO and DATA of the tmp102 stream")
    finally:
        r.close()
    streams = r.of(wire.T_HELLO)[0].hello()["streams"]
    s = next(s for s in streams if s["kind"] == "tmp102")
    assert (s["name"], s["period_us"], s["batch"]) == ("temp", 20000, 5)
    assert [c[0] for c in s["channels"]] == ["temperature"]
    mine = [f for f in r.of(wire.T_DATA) if f.stream == s["id"]]
    raw = b"".join(f.data().samples for f in mine)
    # a slot a busy host made the loop miss is marked missing (zeros in the frame): not a reading
    missing = np.array([f.data().is_missing(i) for f in mine for i in range(f.count)], dtype=bool)
    temps = units.to_physical("tmp102", raw, b"", s["config"])["temperature_c"][~missing]
    assert temps.size and np.all((temps > 19.0) & (temps < 26.0)), temps
