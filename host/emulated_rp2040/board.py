"""EmulatedBoard: the MicroPython UF2 on rp2040py's RP2040, reachable like any board on USB.

The same shape as host/virtual_board/board.py's VirtualBoard, so tools and tests treat the two
alike: a pty (its `port`, announced in the registry under `name`, found by `--port NAME`), the
fault API (unplug, set_nack_rate, set_bus_stuck, freeze, set_wrong_id, link faults, reset,
power_cycle, hang), `boots` (one BootRecord per start of the firmware) and `chip(kind).truth()`. What differs is underneath: the firmware is the user's
own UF2 on an emulated Cortex-M0+, `machine` is the real rp2 port's, and the board's time is the
emulator's clock (the chips live on it too, so their timing is what the firmware sees).

Hooks for the rest of issue 13: `flash_store.write_uf2()` programs a UF2 into a stopped board's
flash (the BOOTSEL side), `emulated_seconds()` is the board's own clock for timing tests and the
cycle bench, `device`/`mcu` expose rp2040py itself.
"""
from __future__ import annotations

import threading
import time
import zlib
from pathlib import Path

from host import sensors
from host.device import registry
from host.device.boards import BoardDefinition, Uf2Flash, load_board
from host.emulated_rp2040.bootsel import BootselDrive, is_usb_boot_request
from host.emulated_rp2040.fast_forward import SpinSkipper
from host.emulated_rp2040.flash_store import FlashStore, program
from host.emulated_rp2040.i2c_bridge import I2CBridge
from host.emulated_rp2040.image import require_image
from host.emulated_rp2040.pin_probe import PinProbeResponder
from host.emulated_rp2040.serial_link import CdcLink
from host.sensors.chip import AnalogChip
from host.virtual_board.board import BootRecord
from host.virtual_board.bus import Buses
from host.virtual_board.faults import FaultApi
from host.virtual_board.pty_bridge import PtyBridge
from host.virtual_board.reset_causes import PWRON_RESET, WDT_RESET

BOARD = "emulated_rp2040"
ADC_FIRST_PIN = 26  # GPIO26..29 are ADC channels 0..3
SAVE_EVERY_S = 2.0


class EmulatedBoardError(Exception):
    """The emulated board could not start or do what was asked."""


class EmulatedBoard(FaultApi):
    """One emulated Pico. `start()` boots it (returns once its USB enumerated); `stop()` saves the
    flash and leaves no thread behind."""

    def __init__(self, directory: str | Path, *, image: str | Path | None = None, name: str = BOARD,
                 seed: int = 0, link_rate: float | None = None, register: bool = True,
                 definition: BoardDefinition | None = None, fast_forward: bool = True):
        self.dir = Path(directory).resolve()
        self.run_dir = self.dir / "run"
        self.name = name
        self.seed = seed
        self.register = register
        self.image = require_image(image)
        self.definition = definition or load_board(BOARD)
        flash = self.definition.flash_as(Uf2Flash)
        self.flash = FlashStore(self.dir / "flash.bin", flash.flash_size)
        self.serial = "ERP-" + format(zlib.crc32(str(self.dir).encode()), "08X")
        self.buses = Buses(seed)
        self.chips: dict[str, object] = {}
        self.adcs: dict[int, AnalogChip] = {}
        self.device = None
        self.link = PtyBridge(link_rate, seed, on_port_change=self._port_changed)
        self._cdc: CdcLink | None = None
        self._probes: dict[int, PinProbeResponder] = {}
        self._bridges: dict[int, I2CBridge] = {}
        self._stopping = threading.Event()
        self._saver: threading.Thread | None = None
        self.boot_seconds: float | None = None
        self.bootsel = BootselDrive(registry.home() / "drives" / name, self._flash_from_drive)
        self.flashed_images = 0
        self.fast_forward = fast_forward
        self.skipper: SpinSkipper | None = None  # idle fast-forward (fast_forward.py)
        self.boots: list[BootRecord] = []
        self._reset_cause = PWRON_RESET  # what the rp2 port's machine.reset_cause() will say next
        self._hang_armed = False
        self.hung_at: float | None = None  # emulated s at which hang() stalled the core

    # -- hardware ----------------------------------------------------------------------------
    def emulated_seconds(self) -> float:
        """The board's own clock (emulated time since power-on of this runner)."""
        return self.device.simulator.clock.nanos * 1e-9 if self.device else 0.0

    def _build(self) -> None:
        from rp2040py.boards import BoardSpec
        from rp2040py.device.base_device import BaseDevice

        self.device = BaseDevice(board=BoardSpec(image=str(self.image)))
        mcu = self.mcu
        self.flash.load(mcu.flash, self.image.read_bytes())
        clock = self.emulated_seconds
        for bus in self.definition.i2c:
            self.buses.bus(bus.id).timeout_us = bus.timeout_us
            self._bridges[bus.id] = I2CBridge(mcu.i2c[bus.id], self.buses, bus.id, self._schedule,
                                              hang=self._hang_here)
            if bus.sda is not None:
                self._probes[bus.id] = PinProbeResponder(mcu, self.buses, bus.id, bus.sda, bus.scl)
        for i, s in enumerate(self.definition.sensors):
            kind = sensors.kind(s.kind)
            if s.adc is not None:
                adc = self.definition.adc_input(s.adc)
                chip = kind.chip(seed=self.seed + i, vref_mv=adc.vref_mv, clock=clock)
                self.adcs[adc.pin - ADC_FIRST_PIN] = chip
            else:
                chip = kind.chip(s.address, seed=self.seed + i, clock=clock)
                self.buses.bus(s.bus).attach(chip)
            self.chips[s.kind] = chip
        mcu.adc.on_adc_read = self._adc_read
        mcu.watchdog.on_watchdog_trigger = self._watchdog_fired
        enter, leave = self.device._enter_reset, self.device._leave_reset

        def entering(cause) -> None:
            self._hang_armed, self.hung_at = False, None
            self._reset_cause = WDT_RESET if cause.name == "WATCHDOG" else PWRON_RESET
            enter(cause)

        def leaving() -> None:
            leave()
            self._booted()
        self.device._enter_reset, self.device._leave_reset = entering, leaving
        if self.fast_forward:
            self.skipper = SpinSkipper(mcu, self.device.simulator.clock)

    @property
    def mcu(self):
        return self.device.mcu

    def _schedule(self, delay_ns: float, fn):
        alarm = self.device.simulator.clock.create_alarm(fn)
        alarm.schedule(delay_ns)
        return alarm

    def _watchdog_fired(self) -> None:
        """A watchdog reboot; the ROM's USB-boot request goes to BOOTSEL (bootsel.py) instead."""
        if is_usb_boot_request(self.mcu.watchdog.scratch_data):
            self._enter_bootsel()
        else:
            self.device._on_watchdog_trigger()

    def _hold(self, held: bool) -> None:
        """RUN low/high without the device layer's RUN-pin reset bookkeeping (the cause stays WDT)."""
        mcu, noop = self.mcu, (lambda: None)
        hooks = mcu.on_run_pin_held, mcu.on_run_pin_reset
        mcu.on_run_pin_held = mcu.on_run_pin_reset = noop
        try:
            mcu.set_run_pin(low=held)
        finally:
            mcu.on_run_pin_held, mcu.on_run_pin_reset = hooks

    def _enter_bootsel(self) -> None:
        from rp2040py.device.base_device import ResetCause

        self.device._enter_reset(ResetCause.WATCHDOG)
        self.mcu.watchdog.scratch_data[4] = 0  # the ROM consumes the request
        self._hold(True)
        self.flash.save(self.mcu.flash)
        self.link.disconnect()
        self.bootsel.show()
        if self.register:
            registry.publish(self.name, self._registry_entry())

    def _flash_from_drive(self, uf2: bytes) -> None:
        """The drive took a UF2 (watcher thread): program it, unmount, reboot into it."""
        def reboot() -> None:
            program(self.mcu.flash[:self.flash.size], uf2)
            self.flash.save(self.mcu.flash)
            self.flashed_images += 1
            self.device.cdc.on_device_connected = lambda: threading.Thread(
                target=self._back_on_usb, name="erp2040-reenum", daemon=True).start()
            self._hold(False)
            self.device._leave_reset()
        self.bootsel.hide()
        self.device.simulator.schedule_threadsafe(reboot)

    def _back_on_usb(self) -> None:
        self.device.cdc.on_device_connected = None
        if not self._stopping.is_set():
            self.link.reconnect()

    def _adc_read(self, channel: int) -> None:
        if self._hang_here():
            return
        adc = self.mcu.adc
        adc.current_channel = channel
        chip = self.adcs.get(channel)
        if chip is not None:
            adc.channel_values[channel] = chip.read_u16() >> 4  # the RP2040's converter is 12-bit
        adc.sample_alarm.schedule(adc.sample_time * 1000)

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def port(self) -> str | None:
        return self.link.port

    def start(self, timeout: float = 120.0) -> "EmulatedBoard":
        self.run_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        self._build()
        self.link.start()
        self._cdc = CdcLink(self.device, self.link)
        self._cdc.start()
        future = self.device.start_async(timeout)
        try:
            future.result(timeout + 5)
        except Exception as exc:
            self.stop()
            raise EmulatedBoardError(f"the emulated RP2040 did not enumerate over USB: {exc}") from None
        self.boot_seconds = time.monotonic() - t0
        if not self.boots:
            self._booted()
        self._saver = threading.Thread(target=self._save_loop, name="erp2040-flash", daemon=True)
        self._saver.start()
        if self.register:
            registry.publish(self.name, self._registry_entry())
        return self

    def stop(self) -> None:
        if self._stopping.is_set():
            return
        self._stopping.set()
        if self.register:
            registry.withdraw(self.name, _pid())
        if self.device is not None:
            sim = self.device.simulator
            self.device.stop()
            end = time.monotonic() + 5
            while sim.executing and time.monotonic() < end:
                time.sleep(0.01)
            self.flash.save(self.mcu.flash)
            loop, thread = sim._loop, sim._loop_thread  # rp2040py's own loop thread, started for us
            if loop is not None and thread is not None:
                loop.call_soon_threadsafe(loop.stop)
                thread.join(timeout=5)
        self.bootsel.hide()
        if self._cdc is not None:
            self._cdc.close()
        self.link.close()

    def __enter__(self) -> "EmulatedBoard":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _save_loop(self) -> None:
        while not self._stopping.wait(SAVE_EVERY_S):
            self.flash.save(self.mcu.flash)

    def _registry_entry(self) -> dict:
        return {"port": self.port, "pid": _pid(), "board": BOARD, "board_dir": str(self.dir),
                "serial": self.serial, "control": str(self.run_dir / "control.sock"),
                "image": str(self.image), "drive": str(self.bootsel.folder) if self.bootsel.shown else None}

    def _port_changed(self, port: str | None) -> None:
        if self.register and not self._stopping.is_set():
            registry.publish(self.name, self._registry_entry() | {"port": port})

    # -- board faults --------------------------------------------------------------------------
    def reset(self, cause: int | None = None) -> None:
        """The RESET button (RUN pin): the firmware reports a hard/pin reset."""
        self._hard_reset("RUN_PIN")

    def power_cycle(self) -> None:
        self._hard_reset("POWER_ON")

    def _hard_reset(self, cause: str) -> None:
        from rp2040py.device.base_device import ResetCause

        self.flash.save(self.mcu.flash)

        def reset() -> None:
            if self.bootsel.shown:  # power or RESET ends BOOTSEL: the drive goes, the firmware runs
                self.bootsel.hide()
                self._hold(False)
                self.link.reconnect()
            self.device.hard_reset(cause=ResetCause[cause])
        self.device.simulator.schedule_threadsafe(reset)

    def _booted(self) -> None:
        """The firmware starts again (power-on, or the release from a reset): one BootRecord whose
        cause is what rp2's machine.reset_cause() reports (ports/rp2/modmachine.c: WDT_RESET after
        a watchdog reboot, machine.reset() included; PWRON_RESET after power-on or the RUN pin)."""
        self.boots.append(BootRecord(self._reset_cause, time.monotonic(), _pid()))

    def hang(self) -> None:
        """The board locks up inside its next I2C or ADC transaction, as a bus transfer that never
        completes stalls a Cortex-M0+: the transfer is left unanswered and the core stops dead with
        every interrupt masked, so no Timer callback feeds the watchdog either. The watchdog, a
        timer block, keeps counting on the emulated clock; only a reset clears the hang."""
        self._hang_armed = True

    def _hang_here(self) -> bool:
        """Called at each I2C address phase and ADC read (emulator thread): True when this one hangs."""
        if not self._hang_armed:
            return False
        self._hang_armed = False
        core = self.mcu.core
        core.enabled_interrupts = 0  # NVIC: no IRQ wakes it (the chip reset restores the register)
        core.pending_systick = False
        self.mcu.ppb.systick_int_enable = False
        core.waiting = True  # the simulator jumps its clock from alarm to alarm while it waits
        self.hung_at = self.emulated_seconds()
        return True

    # -- faults: the shared FaultApi, plus what this chip's real peripherals need --------------
    def set_bus_stuck(self, stuck: bool, bus: int = 0) -> None:
        """Also turns idle fast-forward off while any bus is stuck: after a timed-out transfer the
        rp2 port waits for SCL in 1 us steps counted by iteration (up to the I2C timeout's worth),
        and the skipper's 10 us fine skips stretched each of those waits 20x (1.04 emulated s
        instead of 50 ms, measured), so the firmware saw 2 failed reads where silicon makes ~15."""
        FaultApi.set_bus_stuck(self, stuck, bus)
        probe, bridge = self._probes.get(bus), self._bridges.get(bus)

        def apply() -> None:
            if probe is not None:
                probe.set_stuck(bool(stuck))
            if bridge is not None and not stuck:
                bridge.release_stall()
            if self.skipper is not None:
                self.skipper.enabled = not any(b.stuck for b in self.buses.buses.values())
        self.device.simulator.schedule_threadsafe(apply)

    def set_link_rate(self, rate: float | None) -> None:
        self.link.rate = rate

    def status(self) -> dict:
        return {"port": self.port, "serial": self.serial, "board": BOARD, "image": str(self.image),
                "emulated_s": round(self.emulated_seconds(), 6), "boot_wall_s": self.boot_seconds,
                "boots": len(self.boots), "hung_at": self.hung_at,
                "fast_forward_s": round(self.skipper.skipped_ns * 1e-9, 6) if self.skipper else None,
                "link_rate": self.link.rate, "link": vars(self.link.stats) | {"faults": vars(self.link.faults)},
                "bus": dict(self.buses.counters),
                "scan_probes": {b: p.probes for b, p in self._probes.items()}}


def _pid() -> int:
    import os

    return os.getpid()
