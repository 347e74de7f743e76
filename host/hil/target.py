"""Boards under test: `Target` (one per session and worker: found or started, flashed, deployed
once) and `Dut`, the device under test (one per test: freshly reset, its serial port captured into a
log file and a recording).

Everything here works on a real board through its serial port alone (raw REPL for files, the
REBOOT command or `machine.reset()` for resets); the virtual board adds the fault API and a reset
button (`VirtualBoard.reset()`), the emulated RP2040 the same fault API (`Target.faults`).
"""
from __future__ import annotations

import base64
import hashlib
import time
from contextlib import contextmanager
from pathlib import Path

from firmware import wire
from host.flashing import api as flash
from host.device import ports
from host.device.boards import BoardDefinition, load_board
from host.paths import FIRMWARE_DIR
from host.protocol.frames import Frame
from host.device.raw_repl import RawRepl
from host.hil.capture import Capture
from host.hil.traffic import HilError, Traffic
from host.device.link import identify, locator_for

VIRTUAL = "virtual"
EMULATED = "emulated_rp2040"  # --board emulated_rp2040 with the default port: a private emulated Pico
FIRMWARE_CONFIG = FIRMWARE_DIR / "config.json"
# Dut.reset's kinds -> the board.json reset_causes event each one is (REBOOT runs machine.reset())
_RESET_EVENTS = {"button": "reset_button", "command": "machine_reset"}


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


class Dut:
    """The device under test of one test (the `dut` fixture): reset, captured, with files you may change.

    Attributes: port, name, definition (its BoardDefinition), virtual (VirtualBoard or None), log_path,
    traffic (the test's Traffic), hello (the HELLO after the last reset), boot_id.
    """

    def __init__(self, target: Target, log_path: Path) -> None:
        self.target = target
        self.log_path = Path(log_path)
        self.capture = Capture(target.current_port(), self.log_path, locate=target.locate,
                               meta={"identity": f"{target.name} ({target.board_name})"})
        self.traffic = Traffic(self.capture, clock=target.clock)
        self.hello: dict | None = None
        self.hello_frame: Frame | None = None
        self._overrides: dict[str, bytes | None] = {}
        self.resets = 0  # resets done by the fixture or the test through this object
        self.reset_event: str | None = None  # the last reset's boards.RESET_EVENTS kind (None: not caused here)

    # -- identity ----------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.target.board_name

    @property
    def port(self) -> str:
        return self.capture.path

    @property
    def definition(self) -> BoardDefinition:
        return self.target.definition

    @property
    def virtual(self):
        return self.target.virtual

    @property
    def expected_reset_cause(self) -> int:
        """The wire reset cause the board reports after the last reset done here (board.json
        reset_causes: an RP2040 says WDT_RESET after machine.reset(), the virtual board HARD_RESET)."""
        if self.reset_event is None:
            raise HilError("no reset was done through this Dut")
        return self.definition.reset_cause(self.reset_event)

    @property
    def boot_id(self) -> int | None:
        return self.hello_frame.boot_id if self.hello_frame else None

    def note(self, text: str) -> None:
        """A line in the captured log (e.g. 'fault: unplug bme280'), to read failures by."""
        self.capture.note("NOTE " + text)

    # -- lifecycle ---------------------------------------------------------------------------
    def open(self) -> "Dut":
        self.capture.start()
        return self

    def close(self) -> None:
        try:
            if self._overrides:
                self.restore_files()
        finally:
            self.capture.stop()
            if self.boot_id is not None:
                self.target.last_boot_id = self.boot_id

    def reset(self, *, timeout: float = 45.0, how: str | None = None) -> Frame:
        """Reset the board and wait for the HELLO of the new boot; the test's traffic starts there.
        (`timeout` is a wait: a boot on a host busy elsewhere can take several seconds.)

        Virtual board: its reset button. Real board: the REBOOT command, or `machine.reset()`
        through the raw REPL when the app does not answer. Returns the HELLO frame.
        """
        old = {b for b in (self.capture.decoder.boot_id, self.target.last_boot_id, self.boot_id) if b is not None}
        since = self.capture.end
        self.traffic._snapshot_stats()
        how = how or ("button" if self.virtual is not None else "command")
        self.note(f"reset ({how})")
        self.reset_event = _RESET_EVENTS.get(how)
        if how == "button":
            vb = self.virtual
            n = len(vb.boots)
            vb.reset()
            vb.wait_boot(n + 1, timeout=timeout)
        elif how == "command":
            try:
                self.traffic.send(wire.OP_REBOOT, timeout=1.5)
                # the boot that acknowledged REBOOT is the one it ends, even when its HELLO came
                # after `since` (an app a deploy's soft reboot was still starting answers it)
                old |= {f.boot_id for f in self.traffic.frames(wire.T_ACK, since=since)
                        if f.ack().opcode == wire.OP_REBOOT}
            except HilError:
                self.note("REBOOT not answered; machine.reset() through the raw REPL")
                self._raw(lambda s: s.transport.exec_raw_no_follow("import machine\nmachine.reset()\n"))
        elif how == "none":
            pass
        else:
            raise ValueError(f"unknown reset kind {how!r}")
        hello = self._wait_hello(since, old, timeout)
        torn = self.traffic.stats.corrupt_segments - self.traffic._corrupt_base
        self.traffic._corrupt_base = self.traffic.stats.corrupt_segments
        if torn:
            self.note(f"the reset cut the old boot's output mid-frame: {torn} corrupt segment(s) before "
                      "the HELLO, not counted against the test")
        self._wait_running(hello)
        self.resets += 1
        return hello

    def _wait_running(self, hello: Frame) -> None:
        """Wait for the first DATA frame of the new boot, so each test's timing windows start with
        the sampling loop running (commands are safe from HELLO on: the firmware disables Ctrl-C
        before sending it)."""
        streams = hello.hello().get("streams", [])
        if not streams:
            return
        first = min(s.get("period_us", 0) * s.get("batch", 1) for s in streams) / 1e6
        try:
            self.traffic.expect(wire.T_DATA, since=self.traffic.start, timeout=first + 1.5,
                               where=lambda f: f.boot_id == hello.boot_id, what="the first DATA frame")
        except HilError:
            self.note("no DATA yet (autostart off?): going on")
        self.traffic.cursor = self.traffic.start

    def _wait_hello(self, since: int, old: set[int], timeout: float) -> Frame:
        def new_boot(f: Frame) -> bool:
            return f.type == wire.T_HELLO and f.boot_id not in old

        clock = self.target.clock
        deadline = clock() + timeout
        try:
            f = self.traffic.expect(where=new_boot, since=since, timeout=min(timeout, 4.0),
                                   what="HELLO of a new boot")
        except HilError:
            # a real board's USB port re-enumerates after a reset and the boot HELLO can be gone
            # before the host reopens it: ask for it again
            self.note("no boot HELLO seen; asking with SEND_HELLO")
            self.traffic.send(wire.OP_SEND_HELLO, timeout=max(0.5, deadline - clock()))
            f = self.traffic.expect(where=new_boot, since=since, timeout=max(0.5, deadline - clock()),
                                   what="HELLO of a new boot")
        self.hello_frame = f
        self.hello = f.hello()
        got, end = self.capture.frames_since(since)
        # the test's traffic starts at the new boot's first frame (its BOOT event precedes HELLO)
        idx = end - len(got) + next(i for i, g in enumerate(got) if g.boot_id == f.boot_id)
        self.traffic.start = self.traffic.cursor = idx
        return f

    @contextmanager
    def host_stops_reading(self):
        """The host stops reading the port for the duration of the block. On the virtual board
        the link holds the device's writes back at once (set_backpressure), as a USB endpoint
        does; on a real board the capture stops reading and the OS buffers fill first. The
        emulated RP2040 cannot: rp2040py's USB host takes every IN packet, so the test skips."""
        if self.target.emulated is not None:
            import pytest

            pytest.skip("rp2040py's USB host accepts every packet, so a host that stops reading cannot back "
                        "up the emulated RP2040's CDC")
        vb = self.virtual
        if vb is not None:
            vb.set_backpressure(True)
            self.note("host stops reading (virtual board backpressure)")
        else:
            self.capture.pause()
        try:
            yield
        finally:
            if vb is not None:
                vb.set_backpressure(False)
                self.note("host reads again")
            else:
                self.capture.resume()

    # -- raw REPL and files ------------------------------------------------------------------
    def _raw(self, fn):
        """Release the port, run fn(RawRepl), take the port back. The app is stopped
        (Ctrl-C) and stays stopped until the next reset."""
        self.capture.suspend()
        try:
            with RawRepl(self.target.current_port(), attempts=6, timeout=8.0) as s:
                return fn(s)
        finally:
            self.capture.reopen(self.target.current_port())

    def exec(self, code: str, timeout: float = 20.0) -> str:
        """Run code in the raw REPL (stops the app); call reset() afterwards to run the app again."""
        self.note(f"raw REPL exec {code[:60]!r}")
        return self._raw(lambda s: s.exec(code, timeout=timeout)).decode(errors="replace")

    def read_file(self, path: str) -> bytes | None:
        out = self.exec(
            "import binascii\ntry:\n f=open(%r,'rb');d=f.read();f.close();print(binascii.b2a_base64(d).decode())\n"
            "except OSError:\n print('-')\n" % path).strip()
        return None if out == "-" else base64.b64decode(out)

    def write_file(self, path: str, data: bytes) -> None:
        enc = base64.b64encode(data).decode()
        out = self.exec("import binascii,hashlib\nf=open(%r,'wb');f.write(binascii.a2b_base64(%r));f.close()\n"
                        "print(binascii.hexlify(hashlib.sha256(open(%r,'rb').read()).digest()).decode())\n"
                        % (path, enc, path)).strip()
        if out != hashlib.sha256(data).hexdigest():
            raise HilError(f"writing {path} on the board: hash mismatch after write")

    def remove_file(self, path: str) -> None:
        self.exec("import os\ntry:\n os.remove(%r)\nexcept OSError:\n pass\n" % path)

    def override_file(self, path: str, data: bytes | None) -> None:
        """Replace (or with None remove) a file on the board until the end of the test; the
        original is put back at teardown. Call reset() to boot with it."""
        if path not in self._overrides:
            self._overrides[path] = self.read_file(path)
        self.note(f"override {path}: {'removed' if data is None else f'{len(data)} bytes'}")
        if data is None:
            self.remove_file(path)
        else:
            self.write_file(path, data)

    def restore_files(self, attempts: int = 3) -> None:
        """Put every overridden file back (retried: a test may leave a board that keeps resetting)."""
        for path, data in list(self._overrides.items()):
            for attempt in range(attempts):
                try:
                    if data is None:
                        self.remove_file(path)
                    else:
                        self.write_file(path, data)
                    break
                except Exception as exc:  # noqa: BLE001 - retried, then raised
                    self.note(f"restoring {path} failed ({exc}); attempt {attempt + 1} of {attempts}")
                    if attempt == attempts - 1:
                        raise
            self.note(f"restored {path}")
            del self._overrides[path]

    def base_config(self) -> dict:
        """The app config the board runs by default (as deployed: --app-config or firmware/config.json)."""
        import json

        raw = self.read_file("config.json")
        if raw is None:
            src = self.target.app_config or FIRMWARE_CONFIG
            raw = src.read_bytes() if src.is_file() else b"{}"
        return json.loads(raw)
