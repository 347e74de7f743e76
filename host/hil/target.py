"""Boards under test: `Target`, one per session and worker: found or started, flashed, deployed
once.  The device under test of each test is `host.hil.dut.Dut`.

Everything here works on a real board through its serial port alone (raw REPL for files, the
REBOOT command or `machine.reset()` for resets); the virtual board adds the fault API and a reset
button (`VirtualBoard.reset()`), the emulated RP2040 the same fault API (`Target.faults`).
"""
from __future__ import annotations

import time
from pathlib import Path

from host.flashing import api as flash
from host.device import ports
from host.device.boards import BoardDefinition, load_board
from host.device.link import identify, locator_for

VIRTUAL = "virtual"
EMULATED = "emulated_rp2040"  # --board emulated_rp2040 with the default port: a private emulated Pico


class TargetError(Exception):
    """The board under test could not be found, flashed or deployed (one line, says why)."""


class Target:
    """The board a worker tests for the whole session.

    Args:
        port: "virtual" (start a private virtual board), "auto" (the one USB board that looks like
            `board`) or a device path / pyserial URL.
        board: a name from boards/ ("virtual", "rp2040_pico", "esp32_devkit").
        firmware: a MicroPython image to flash first (real boards only), or None.
        deploy: deploy firmware/ with host/flash.py (hash-based: unchanged files are not copied).
        seed: the virtual board's seed (sensor noise, link faults).
        workdir: folder for the virtual board.
        name: the virtual board's registry name (unique per xdist worker).
        image: the MicroPython UF2 of an emulated board (default: $PAGERLESS_RP2_UF2).
    """

    def __init__(self, port: str, board: str, *, firmware: str | None = None, deploy: bool = True,
                 seed: int = 0, workdir: Path | None = None, name: str = "hil",
                 link_rate: str = "usb", app_config: Path | None = None, image: str | None = None) -> None:
        self.port_spec, self.board_name = port, board
        self.app_config = app_config
        self.firmware, self.do_deploy, self.seed = firmware, deploy, seed
        self.workdir, self.name, self.link_rate = workdir, name, link_rate
        self.virtual = None  # VirtualBoard when port == "virtual"
        self.emulated = None  # EmulatedBoard when board == "emulated_rp2040" and port == "virtual"
        self.image = image
        self.clock = time.monotonic  # the board's own clock for timeouts (the emulator's: emulated s)
        self.port: str | None = None
        self.definition: BoardDefinition | None = None
        self.deploy_result = None
        self.deploy_seconds = 0.0
        self.last_boot_id: int | None = None
        self.locate = None
        self.setup_error: str | None = None

    @property
    def is_virtual(self) -> bool:
        return self.virtual is not None

    @property
    def faults(self):
        """The board whose fault API the tests drive (host/virtual_board/faults.py): the virtual
        board or the emulated RP2040; None on real hardware."""
        return self.virtual if self.virtual is not None else self.emulated

    def setup(self) -> "Target":
        try:
            self.definition = load_board(self.board_name)
        except Exception as exc:
            raise TargetError(str(exc)) from None
        if self.port_spec == VIRTUAL and self.board_name == EMULATED:
            self._start_emulated()
        elif self.port_spec == VIRTUAL:
            if self.board_name != VIRTUAL:
                raise TargetError(f"--port virtual runs the virtual board; --board {self.board_name} needs "
                                  "a real port (--port auto or a device path)")
            if self.firmware is not None:
                raise TargetError("--firmware flashes a MicroPython image onto a real board; the virtual "
                                  "board runs the unix port (leave --firmware out)")
            from host.virtual_board.board import VirtualBoard

            workdir = self.workdir or Path.cwd() / ".vboard" / self.name
            self.virtual = VirtualBoard(workdir, name=self.name, seed=self.seed, link_rate=self.link_rate)
            self.virtual.start()
            self.virtual.wait_boot(1)
            self.port = self.virtual.port
            self.locate = lambda: self.virtual.port
        else:
            try:
                self.port = ports.resolve_port(self.port_spec, self.board_name)
            except Exception as exc:
                raise TargetError(str(exc)) from None
            self.locate = locator_for(identify(self.port))
        if self.firmware is not None:
            image = Path(self.firmware).read_bytes()
            flash.flash_firmware(self.definition, image, port=self.port)
            self.port = self.locate() or self.port
        if self.do_deploy:
            t0 = time.monotonic()
            slow = {"step_timeout": 900.0, "open_timeout": 120.0} if self.emulated else {}  # 0.01-0.05x
            self.deploy_result = flash.deploy(self.definition, port=self.port, config=self.app_config, **slow)
            self.deploy_seconds = time.monotonic() - t0
        return self

    def _start_emulated(self) -> None:
        """A private emulated Pico (host/emulated_rp2040) running the user's UF2: deployed and reset
        as a real board is (through its serial port), faults injected through its fault API, every
        timeout on its emulated clock."""
        from host.emulated_rp2040.board import EmulatedBoard

        if self.firmware is not None:
            raise TargetError("the emulated RP2040 runs the UF2 given by --rp2-image or $PAGERLESS_RP2_UF2; "
                              "leave --firmware out")
        from host.emulated_rp2040.image import require_image
        from host.flashing.deploy_tree import build_tree
        from host.testkit.erp_app import write_flash

        workdir = self.workdir or Path.cwd() / ".vboard" / self.name
        if self.do_deploy and not (workdir / "flash.bin").exists():  # deploy below then copies nothing
            write_flash(workdir, require_image(self.image), build_tree(self.definition, config=self.app_config))
        self.emulated = EmulatedBoard(workdir, image=self.image, name=self.name, seed=self.seed)
        self.emulated.start()
        self.port = self.emulated.port
        self.locate = lambda: self.emulated.port
        self.clock = self.emulated.emulated_seconds

    def teardown(self) -> None:
        if self.emulated is not None:
            self.emulated.stop()
            self.emulated = None
        if self.virtual is not None:
            self.virtual.stop()
            self.virtual = None

    def current_port(self) -> str:
        return (self.locate() if self.locate else None) or self.port


def clear_faults(vb) -> None:
    """Undo every fault the fault API can set, so one test's faults never reach the next."""
    for kind in ("bme280", "mpu6050", "sht31"):
        if kind in vb.chips:
            vb.replug(kind)
            vb.set_nack_rate(kind, 0.0)
            vb.freeze(kind, False)
            vb.set_wrong_id(kind, False)
    for bus in vb.buses.buses:
        vb.set_bus_stuck(False, bus)
    vb.set_backpressure(False)
    vb.set_bit_error_rate(0.0)
    vb.set_drop_rate(0.0)
    vb.set_link_rate(vb.definition.link.default_rate if vb.definition.link is not None else None)
    if vb.port is None:
        vb.reconnect()
