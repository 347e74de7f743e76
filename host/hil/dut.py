"""`Dut`, the device under test: one per test, freshly reset, its serial port captured into a log
file and a recording; files on the board through the raw REPL, the host-stops-reading spell.

Works on a real board through its serial port alone (REBOOT or `machine.reset()` for resets);
on the virtual board it also has the reset button, on both simulated boards the fault API
(`Target.faults`, host/hil/target.py).
"""
from __future__ import annotations

import base64
import hashlib
from contextlib import contextmanager
from pathlib import Path

from firmware import wire
from host.device.boards import BoardDefinition
from host.device.raw_repl import RawRepl
from host.hil.capture import Capture
from host.hil.target import Target
from host.hil.traffic import HilError, Traffic
from host.paths import FIRMWARE_DIR
from host.protocol.frames import Frame

FIRMWARE_CONFIG = FIRMWARE_DIR / "config.json"
# Dut.reset's kinds -> the board.json reset_causes event each one is (REBOOT runs machine.reset())
_RESET_EVENTS = {"button": "reset_button", "command": "machine_reset"}

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
            try:
                self.traffic.send(wire.OP_SEND_HELLO, timeout=max(0.5, deadline - clock()))
                f = self.traffic.expect(where=new_boot, since=since, timeout=max(0.5, deadline - clock()),
                                       what="HELLO of a new boot")
            except HilError:
                status = getattr(self.virtual, "status", None)
                if status is not None:  # what the simulated board itself says: VM, boots, REPL, link
                    self.note(f"no HELLO; the board's own status: {status()}")
                raise
        self.hello_frame = f
        self.hello = f.hello()
        got, end = self.capture.frames_since(since)
        # the test's traffic starts at the new boot's first frame (its BOOT event precedes HELLO)
        idx = end - len(got) + next(i for i, g in enumerate(got) if g.boot_id == f.boot_id)
        self.traffic.start = self.traffic.cursor = idx
        return f

    @contextmanager
    def host_stops_reading(self):
        """The host stops reading the port for the duration of the block. On the simulated
        boards the link holds the device's writes back at once (set_backpressure), as a USB
        endpoint does (the emulated RP2040's CDC IN endpoint is held: serial_link.py); on a real
        board the capture stops reading and the OS buffers fill first."""
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
