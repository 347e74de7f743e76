"""VirtualBoard: the MicroPython unix port made to behave like a board on USB serial.

It owns the VM process and everything around it: power-on (boot.py then main.py), soft reboot
from either REPL (the unix port exits on Ctrl-D; a board reboots and prints `soft reboot`),
machine.reset() and watchdog expiry, reset causes, the simulated chips and the fault API.
Tests use this class directly; `python -m host.virtual_board` wraps it in a CLI.  How the VM is
launched is in `vm_launch`, which REPL it is in (and a soft reset's return to the raw REPL) in
`repl_tracker`, the reset causes in `reset_causes`.
"""
from __future__ import annotations

import functools
import os
import signal
import subprocess
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from host.device import registry
from host.device.boards import UNLIMITED, BoardDefinition, load_board_file
from host.errors import BoardDefinitionError
from host.virtual_board.bus import Buses
from host.virtual_board.esp_rom.chip import Esp32Chip
from host.virtual_board.esp_rom.registers import mac_from_identity
from host import sensors
from host.sensors.chip import AnalogChip, BoardClock, Environment
from host.virtual_board.faults import FaultApi
from host.virtual_board.ipc import BusError, Handler, IpcServer
from host.virtual_board.pty_bridge import PtyBridge
from host.virtual_board.flash_volume import IMAGE_NAME, VOLUMES, FlashVolume, VolumeError
from host.virtual_board.errors import BoardError
from host.virtual_board.repl_tracker import ReplTracker
from host.virtual_board.reset_causes import HARD_RESET, PWRON_RESET, SOFT_RESET, WDT_RESET, cause_name
from host.virtual_board.vm_launch import vm_command, vm_env
from host.virtual_board.volume_path import VolumePath
from host.virtual_board.vmproc import Spawner, vm_preexec

from host.paths import ROOT  # noqa: E402

__all__ = ["BOARD_JSON", "BoardError", "BootRecord", "VirtualBoard", "cause_name", "link_rates"]
BOARD_JSON = ROOT / "boards" / "virtual" / "board.json"

def link_rates(definition: BoardDefinition | None = None) -> dict[str, float | None]:
    """Named line rates in bytes/s: the board definition's link section (boards/virtual/board.json by
    default), plus "unlimited", no pacing at all, which is a choice of the tools and not of a link."""
    definition = _virtual_definition() if definition is None else definition
    if definition.link is None:
        raise BoardError(f"board {definition.name!r} has no link section: a virtual board needs its line rates")
    return {**definition.link.rates, UNLIMITED: None}


@functools.cache
def _virtual_definition() -> BoardDefinition:
    return load_board_file(BOARD_JSON)


@dataclass
class BootRecord:
    cause: int
    at: float
    pid: int
    exit_code: int | None = None  # how this boot's VM ended (negative: killed by that signal)


class VirtualBoard(Handler, FaultApi):
    """One virtual board. `start()` powers it on; `stop()` leaves no process behind."""

    def __init__(self, directory: str | Path, *, name: str = "virtual", profile: str = "rp2040",
                 heap: str | None = None, seed: int = 0, link_rate: float | str | None = "usb",
                 board_json: Path = BOARD_JSON, register: bool = True, bus_mode: str = "simulated"):
        self.dir = Path(directory).resolve()
        self.run_dir = self.dir / "run"
        self.name = name
        self.seed = seed
        try:
            self.definition = load_board_file(board_json)
        except BoardDefinitionError as exc:
            raise BoardError(str(exc)) from None
        self.link_rates = link_rates(self.definition)
        profiles = self.definition.heap_profiles
        if profile not in profiles:
            raise BoardError(f"unknown profile {profile!r}; choose one of {', '.join(profiles)}")
        self.profile = profile
        self.heap = heap or profiles[profile]
        # the board's flash filesystem, an image in its folder; `fs` is its root for the host's side
        self.volume = FlashVolume(self.dir / IMAGE_NAME, VOLUMES.get(profile, VOLUMES["rp2040"]))
        self.fs = VolumePath(self.volume)
        if isinstance(link_rate, str):
            if link_rate not in self.link_rates:
                raise BoardError(f"unknown link rate {link_rate!r}; use {', '.join(self.link_rates)} "
                                 "or a number of bytes/s")
            link_rate = self.link_rates[link_rate]
        self.register = register
        if bus_mode not in ("simulated", "instant"):
            raise BoardError(f"unknown bus mode {bus_mode!r}: simulated, or instant (benchmarks only)")
        self.bus_mode = bus_mode
        self.serial = "VB-" + format(zlib.crc32(str(self.dir).encode()), "08X")
        # machine.unique_id(): an ESP32 returns its 6-byte base MAC, the one its ROM loader reports
        self.unique_id = mac_from_identity(self.serial) if profile == "esp32" else \
            bytes.fromhex(format(zlib.crc32(self.serial.encode()), "08x") + "2d2f4c56")
        self.esp32: Esp32Chip | None = None  # the esp32 profile's ROM loader, flash and RFC 2217 port
        self._held = False  # the chip is held in reset (EN low) or its ROM loader has the port
        self.boots: list[BootRecord] = []
        # the board's own time (from power-on) and the air its chips share: readings follow the seed
        # and the board's life, not the host's clock
        self.clock = BoardClock()
        self.env = Environment(seed)
        self.buses = Buses(seed, wire_time=bus_mode != "instant")  # "instant": no wire time (benchmarks)
        self.chips: dict[str, object] = {}
        self.adcs: dict[int, AnalogChip] = {}
        self._adc_runs: dict[int, tuple[float, float]] = {}  # pin -> (board time of START_MANY, period s)
        self._build_hardware()
        self.link = PtyBridge(link_rate, seed, on_device_output=lambda data: self._repl.watch(data),
                         on_port_change=self._port_changed)
        self._proc: subprocess.Popen | None = None
        self._ipc: IpcServer | None = None
        self._lock = threading.RLock()
        self._pending_cause: int | None = None
        self._repl = ReplTracker(self.link.write_to_device)
        self._wdt_deadline: float | None = None
        self._wdt_timeout = 0.0
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._spawner: Spawner | None = None
        self._booted = threading.Condition()

    # -- hardware ----------------------------------------------------------------------------
    def _build_hardware(self) -> None:
        for bus in self.definition.i2c:
            self.buses.bus(bus.id)
        self.buses.bus(1)  # rp2 and esp32 both have I2C(1); empty unless board.json wires chips to it
        for i, s in enumerate(self.definition.sensors):
            if s.adc is not None:
                adc = self.definition.adc_input(s.adc)
                self.adcs[adc.pin] = sensors.kind(s.kind).chip(seed=self.seed + i, vref_mv=adc.vref_mv,
                                                               clock=self.clock)
                self.chips[s.kind] = self.adcs[adc.pin]
                continue
            chip = sensors.kind(s.kind).chip(s.address, seed=self.seed + i, clock=self.clock)
            chip.env = self.env  # the board's air, read at each measurement (a kind's __init__ need not take it)
            self.buses.bus(s.bus).attach(chip)
            self.chips[s.kind] = chip

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def port(self) -> str | None:
        return self.link.port

    @property
    def flash_dir(self) -> VolumePath:
        """The old name of `fs` (the board's files were once a host folder): not a host path."""
        return self.fs

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self, timeout: float = 10.0) -> "VirtualBoard":
        self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.volume.prepare(legacy_dir=self.dir / "flash")
        except VolumeError as exc:
            raise BoardError(str(exc)) from None
        self.link.start()
        self._spawner = Spawner()
        self.clock.start()
        if self.profile == "esp32":
            self.esp32 = Esp32Chip(self).start()
        self._spawn(PWRON_RESET)
        self._supervisor = threading.Thread(target=self._supervise, name="vboard-supervisor", daemon=True)
        self._supervisor.start()
        if self.register:
            registry.publish(self.name, self._registry_entry())
        return self

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            self._kill()
        if self._supervisor:
            self._supervisor.join(timeout=3)
        if self.esp32:
            self.esp32.close()
        with self._lock:
            self._kill()  # a VM the ROM loader released meanwhile
        if self._spawner:
            self._spawner.close()
        self.link.close()
        if self.register:
            registry.withdraw(self.name, os.getpid())

    def __enter__(self) -> "VirtualBoard":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _registry_entry(self) -> dict:
        return {"port": self.link.port, "pid": os.getpid(), "board_dir": str(self.dir),
                "filesystem": str(self.volume.image), "serial": self.serial, "name": self.name,
                "control": str(self.run_dir / "control.sock"), "profile": self.profile,
                **({"rfc2217": self.esp32.url} if self.esp32 else {})}

    def _port_changed(self, port: str | None) -> None:
        if self.register:
            registry.publish(self.name, self._registry_entry())

    def _spawn(self, cause: int) -> None:
        """Power the VM on with a given reset cause."""
        self.volume.power_on()
        if self._ipc:
            self._ipc.stop()
        self._ipc = IpcServer(self.run_dir, self)
        self._ipc.start()
        self._wdt_deadline = None
        self._held, self.link.device_sink = False, None  # any boot ends the ROM loader's session
        raw_after = cause == SOFT_RESET and self._repl.mode == "raw"
        env = vm_env(image=self.volume.image, geometry=self.volume.spec.env(), run_dir=self.run_dir, cause=cause,
                     run_main=not raw_after, unique_id=self.unique_id, profile=self.profile,
                     bus_mode=self.bus_mode)
        if cause != SOFT_RESET:
            # a hard reset re-enumerates USB and loses unread input; a soft reset does not
            self.link.flush_device_input()
        self._repl.booting(raw_after)
        # started from the board's spawner thread: the VM gets SIGKILL when the runner ends (vmproc.py)
        self._proc = self._spawner.call(functools.partial(
            subprocess.Popen, vm_command(self.heap),
            stdin=self.link.dev_slave, stdout=self.link.dev_out_w, stderr=self.link.dev_out_w,
            cwd=self.run_dir, env=env, start_new_session=True, close_fds=True,
            preexec_fn=functools.partial(vm_preexec, os.getpid())))
        self.link.vm_pid = self._proc.pid
        self.boots.append(BootRecord(cause, time.monotonic(), self._proc.pid))
        with self._booted:
            self._booted.notify_all()

    def _kill(self) -> None:
        p = self._proc
        if p and p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(timeout=5)
        self.volume.power_off()
        if self._ipc:
            self._ipc.stop()
            self._ipc = None

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            time.sleep(0.005)
            with self._lock:
                p = self._proc
                if p is None:
                    continue
                cause = self._pending_cause
                if cause is None and self._wdt_deadline is not None and time.monotonic() > self._wdt_deadline:
                    cause = WDT_RESET
                if cause is not None:
                    self._pending_cause = None
                    self._kill()
                    self._spawn(cause)
                    continue
                rc = p.poll()
                if rc is None or self._stopping.is_set() or self._held:
                    continue
                self.boots[-1].exit_code = rc
                # The VM ended by itself: Ctrl-D at a REPL, sys.exit() or a crash. A board
                # soft-reboots in all those cases.
                if self._ipc:
                    self._ipc.stop()
                    self._ipc = None
                self.link.inject_to_host(b"MPY: soft reboot\r\n")
                self._spawn(SOFT_RESET)

    # -- Handler (called by the IPC thread) --------------------------------------------------
    def i2c_init(self, bus: int, freq: int, timeout_us: int) -> None:
        if bus not in self.buses.buses:
            raise BusError(19, f"I2C({bus}) does not exist")
        b = self.buses.bus(bus)
        b.freq, b.timeout_us = freq, timeout_us

    def scan(self, bus: int) -> bytes:
        return self.buses.scan(bus)

    def i2c_write(self, bus: int, addr: int, data: bytes, more: bool = False) -> None:
        self.buses.write(bus, addr, data, more)

    def i2c_read(self, bus: int, addr: int, n: int) -> bytes:
        return self.buses.read(bus, addr, n)

    def adc_read(self, channel: int) -> int:
        src = self.adcs.get(channel)
        if src is None:
            raise BusError(22, f"no ADC on pin {channel}")
        return src.read_u16()

    def adc_start(self, channel: int, period_q: int) -> None:
        """The ADC's free-running run on `channel` starts now (period in 1/256 of a 48 MHz cycle),
        or stops (0): conversion k of the run is taken k + 1 periods after this instant."""
        if period_q:
            self._adc_runs[channel] = (self.clock(), period_q / 256 / 48e6)
        else:
            self._adc_runs.pop(channel, None)

    def adc_block(self, channel: int, first: int, n: int) -> bytes:
        """12-bit codes (u16 LE) of conversions first .. first + n - 1 of the running run."""
        src = self.adcs.get(channel)
        run = self._adc_runs.get(channel)
        if src is None or run is None:
            raise BusError(22, f"no free-running ADC on pin {channel}")
        t0, period = run
        k = np.arange(first, first + n, dtype=np.int64)
        return src.codes12(t0 + (k + 1) * period, k).astype("<u2").tobytes()

    def wdt_start(self, timeout_ms: int) -> None:
        self._wdt_timeout = timeout_ms / 1000
        self._wdt_deadline = time.monotonic() + self._wdt_timeout

    def wdt_feed(self) -> None:
        if self._wdt_deadline is not None:
            self._wdt_deadline = time.monotonic() + self._wdt_timeout

    def reset_request(self, cause: int) -> None:
        self._pending_cause = cause

    # -- fault and control API (tests, scenarios, control socket) ----------------------------
    def reset(self, cause: int = HARD_RESET) -> None:
        """Press the reset button (HARD_RESET) or simulate another cause."""
        self._pending_cause = cause

    def power_cycle(self) -> None:
        self._pending_cause = PWRON_RESET

    def hold_in_reset(self) -> None:
        """The reset line is held (EN low, from the esp32 profile's auto-reset circuit): the VM
        stops and stays off, no watchdog runs, until release_reset() or the ROM loader."""
        with self._lock:
            self._held = True
            self._pending_cause = self._wdt_deadline = None
            self._kill()
            self.link.device_sink = None

    def release_reset(self) -> None:
        """Out of reset into MicroPython: EN released, or the ROM loader told to run the app
        (PWRON_RESET either way, as an ESP32 reports an EN reset)."""
        with self._lock:
            self._kill()
            self._spawn(PWRON_RESET)

    def wait_boot(self, count: int, timeout: float = 10.0) -> BootRecord:
        """Block until the board has booted `count` times in total."""
        end = time.monotonic() + timeout
        with self._booted:
            while len(self.boots) < count:
                left = end - time.monotonic()
                if left <= 0:
                    raise BoardError(f"board did not boot a {count}th time within {timeout:.0f} s")
                self._booted.wait(left)
        return self.boots[count - 1]

    def hang(self) -> None:
        """The board locks up inside its next bus or ADC transaction: a peripheral or driver hang
        that no I2C timeout catches, so the firmware stops dead mid-pass. Only a reset (the
        watchdog's, if the firmware started one) clears it."""
        with self._lock:
            if self._ipc:
                self._ipc.hung = True

    def set_link_rate(self, rate: float | str | None) -> None:
        self.link.rate = self.link_rates[rate] if isinstance(rate, str) else rate

    def status(self) -> dict:
        last = self.boots[-1] if self.boots else None
        return {
            "port": self.port, "serial": self.serial, "pid": self.pid, "profile": self.profile,
            "heap": self.heap, "boots": len(self.boots),
            "reset_cause": cause_name(last.cause) if last else None,
            "repl": self._repl.mode, "link_rate": self.link.rate,
            "link": vars(self.link.stats) | {"faults": vars(self.link.faults)},
            "bus": dict(self.buses.counters),
            "i2c_transactions": self._ipc.transactions if self._ipc else 0,
            "esp32": self.esp32.status() if self.esp32 else None,
        }
