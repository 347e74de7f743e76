"""A raw-REPL session with a MicroPython board, on top of mpremote's SerialTransport."""

from __future__ import annotations

import time
from typing import Any

from host.device.holders import probe_busy
from host.errors import BoardNotFound, DeviceError, PortBusyError


class RawRepl:
    """Open `port`, stop whatever runs (Ctrl-C) and enter the raw REPL, retrying: a board that
    streams frames (our firmware) may need more than one Ctrl-C before the REPL answers."""

    def __init__(self, port: str, *, attempts: int = 4, timeout: float = 5.0, baudrate: int = 115200) -> None:
        from mpremote.transport import TransportError
        from mpremote.transport_serial import SerialTransport

        self.port = port
        open_deadline = time.monotonic() + min(timeout, 2.0)
        while True:  # a port that is being re-enumerated or still closing can refuse briefly
            try:
                self.transport: Any = SerialTransport(port, baudrate=baudrate, timeout=timeout)
                break
            except (TransportError, OSError) as exc:
                if time.monotonic() >= open_deadline:
                    busy = probe_busy(port)  # mpremote says only "failed to access"
                    if busy is not None:
                        raise PortBusyError(busy) from None
                    raise BoardNotFound(f"cannot open {port}: {exc}") from None
                # a lock can be held for a moment: a tool that is closing the port, or a process
                # forked while it was open and not yet exec'd (its copy of the fd keeps the flock)
                time.sleep(0.05)
        try:
            self._enter_raw_repl(attempts, timeout)
        except BaseException:
            self.close()
            raise

    RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"

    def _enter_raw_repl(self, attempts: int, timeout: float) -> None:
        """Ctrl-C + Ctrl-A until the raw REPL banner shows (a streaming app or a board still
        rebooting may eat the first ones), wait for the line to go quiet, then ask for one clean
        banner so mpremote finds the link exactly as its own enter_raw_repl leaves it."""
        ser = self.transport.serial
        seen = bytearray()
        deadline = time.monotonic() + timeout
        window = 0.3
        for _ in range(max(1, attempts) * 8):
            ser.write(b"\r\x03\r\x01")
            end = min(deadline, time.monotonic() + window)
            while time.monotonic() < end and self.RAW_BANNER not in seen:
                n = ser.in_waiting
                if n:
                    seen += ser.read(n)
                    del seen[:-256]
                else:
                    time.sleep(0.005)
            if self.RAW_BANNER in seen or time.monotonic() >= deadline:
                break
            window = min(window * 2, 1.0)
        if self.RAW_BANNER not in seen:
            raise DeviceError(f"no MicroPython raw REPL on {self.port} within {timeout:.0f} s "
                              f"(last bytes {bytes(seen[-40:])!r})")
        self._drain_until_quiet(0.03, deadline)
        ser.write(b"\x01")
        data = self.transport.read_until(1, self.RAW_BANNER, timeout=max(0.5, deadline - time.monotonic()))
        if not data.endswith(self.RAW_BANNER):
            raise DeviceError(f"raw REPL on {self.port} did not answer a reset request")
        self.transport.in_raw_repl = True

    def _drain_until_quiet(self, quiet: float, deadline: float) -> None:
        ser = self.transport.serial
        last = time.monotonic()
        while time.monotonic() - last < quiet and time.monotonic() < deadline:
            n = ser.in_waiting
            if n:
                ser.read(n)
                last = time.monotonic()
            else:
                time.sleep(0.005)

    def exec(self, code: str, timeout: float = 30.0) -> bytes:
        """Run `code` in the raw REPL; its stdout, or DeviceError with the device's last error line."""
        from mpremote.transport import TransportError

        try:
            self.transport.exec_raw_no_follow(code)
            out, err = self.transport.follow(timeout)
        except (TransportError, OSError) as exc:
            raise DeviceError(f"link to {self.port} failed during a command: {exc}") from None
        if err:
            lines = err.decode(errors="replace").strip().splitlines()
            raise DeviceError(f"device error: {lines[-1] if lines else 'unknown'}")
        return bytes(out)

    def soft_reset(self) -> None:
        """Leave the raw REPL and soft-reset from the friendly REPL, so boot.py and main.py run."""
        try:
            self.transport.exit_raw_repl()
            self.transport.serial.write(b"\x04")
            self.transport.serial.flush()
        except OSError as exc:
            raise DeviceError(f"soft reset on {self.port} failed: {exc}") from None

    def close(self) -> None:
        try:
            self.transport.close()
        except Exception:
            pass

    def __enter__(self) -> "RawRepl":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
