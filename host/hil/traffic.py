"""`Traffic`: what a HIL test sees of a board's frame traffic — decoded frames with timeouts, and
commands that wait for their ACK.

    hello = traffic.expect("HELLO", timeout=5)
    frames = traffic.collect(3.0, type="DATA", stream=0)
    ack = traffic.set_period(0, 2000)            # or traffic.send("SET_PERIOD", 0, struct.pack("<I", 2000))
    st = traffic.status()                        # SEND_STATUS, then the STATUS frame it caused
    values = traffic.physical(frames[0])         # {"temperature_c": array, ...} via host.sensors.units
    traffic.ledger()                             # every sample accounted for (host.monitoring.ledger)

Commands are encoded by `host.protocol.commands.Commands` (the monitor's too); `Traffic` adds the
wait for the ACK or NACK that quotes the command's token.

`expect` is consuming, like pexpect: it searches from a cursor and moves the cursor past the
match. Every frame since the board's reset stays available through `frames()`.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from firmware import wire
from host.hil.capture import Capture
from host.protocol.commands import Commands, opcode
from host.protocol.frames import Ack, Frame, Status, StreamInfo
from host.protocol.linkstats import LinkStats
from host.monitoring.ledger import Ledger
from host.monitoring.ledger_lines import Report
from host.sensors import units

_TYPE_BY_NAME = {name: t for t, name in wire.TYPE_NAMES.items()}
_EVENT_BY_NAME = {name: code for code, name in wire.EVENT_NAMES.items()}


class HilError(AssertionError):
    """A HIL expectation failed (timeout, NACK, nothing matched). The fixture appends the log path."""


def frame_type(t: int | str | None) -> int | None:
    if t is None or isinstance(t, int):
        return t
    try:
        return _TYPE_BY_NAME[t.upper()]
    except KeyError:
        raise ValueError(f"unknown frame type {t!r}; one of {', '.join(_TYPE_BY_NAME)}") from None


def event_code(ev: int | str) -> int:
    if isinstance(ev, int):
        return ev
    try:
        return _EVENT_BY_NAME[ev.upper()]
    except KeyError:
        raise ValueError(f"unknown event {ev!r}; one of {', '.join(_EVENT_BY_NAME)}") from None


def describe(f: Frame) -> str:
    extra = ""
    if f.type == wire.T_EVENT:
        e = f.event()
        extra = f" {e.name} stream={e.stream} arg={e.arg} {e.text!r}"
    elif f.type in (wire.T_ACK, wire.T_NACK):
        a = f.ack()
        extra = f" {wire.OPCODE_NAMES.get(a.opcode, a.opcode)} token={a.token} {a.reason_name}"
    elif f.type in (wire.T_DATA, wire.T_CALIB):
        extra = f" stream={f.stream}"
    return f"{f.type_name} seq={f.seq} boot={f.boot_id:08x}{extra}"


class Traffic:
    """Frames from one board since its last reset, and commands to it. Made by the `traffic` fixture."""

    def __init__(self, capture: Capture, start: int = 0, default_timeout: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.capture = capture
        self.clock = clock  # timeouts and collect() run on it: the board's own clock where it has one
        self.start = start          # absolute index of the first frame of this test (the HELLO)
        self.cursor = start
        self.default_timeout = default_timeout
        self.commands = Commands(self._write, self._stream_name)
        self._sent = ""  # the last command's description, for messages
        self._stats_base: dict[str, int] = {}
        self._corrupt_base = 0  # corrupt segments before this test's HELLO (Dut.reset sets it)

    # -- searching ---------------------------------------------------------------------------
    def frames(self, type: int | str | None = None, stream: int | None = None, since: int | None = None,
               boot_id: int | None = None) -> list[Frame]:
        """Every frame received since `since` (default: this test's start) that matches."""
        got, _ = self.capture.frames_since(self.start if since is None else since)
        t = frame_type(type)
        return [f for f in got if (t is None or f.type == t) and (stream is None or f.stream == stream)
                and (boot_id is None or f.boot_id == boot_id)]

    def mark(self) -> int:
        """Absolute index of the next frame to arrive (pass as `since=` to look only after now)."""
        return self.capture.end

    def expect(self, type: int | str | None = None, stream: int | None = None, *, timeout: float | None = None,
               where: Callable[[Frame], bool] | None = None, event: int | str | None = None,
               since: int | None = None, what: str | None = None) -> Frame:
        """The first frame from the cursor (or `since`) on that matches; waits up to `timeout` s.

        Args:
            type: frame type (wire.T_* or a name such as "HELLO").
            stream: stream id (DATA, CALIB) or None for any.
            event: for EVENT frames, the event code or name ("SENSOR_OFFLINE").
            where: any further predicate.
        Raises:
            HilError naming what was expected and what arrived instead.
        """
        t = frame_type(type)
        code = None if event is None else event_code(event)
        if code is not None and t is None:
            t = wire.T_EVENT
        timeout = self.default_timeout if timeout is None else timeout
        idx = self.cursor if since is None else since
        deadline = self.clock() + timeout
        seen: list[Frame] = []
        while True:
            got, end = self.capture.frames_since(idx)
            base = end - len(got)
            for i, f in enumerate(got):
                if (t is None or f.type == t) and (stream is None or f.stream == stream) \
                        and (code is None or f.event().code == code) and (where is None or where(f)):
                    self.cursor = max(self.cursor, base + i + 1)
                    return f
                if f.type != wire.T_DATA:
                    seen.append(f)
            idx = end
            self._raise_if_dead()
            left = deadline - self.clock()
            if left <= 0:
                want = what or " ".join(x for x in (
                    wire.TYPE_NAMES.get(t, "any frame") if t is not None else "any frame",
                    f"stream={stream}" if stream is not None else "",
                    f"event={wire.EVENT_NAMES.get(code, code)}" if code is not None else "",
                    "matching the predicate" if where else "") if x)
                tail = "; ".join(describe(f) for f in seen[-6:]) or "no non-DATA frames"
                raise HilError(f"expected {want} within {timeout:g} s; got instead: {tail}")
            self.capture.wait(idx, min(left, 0.2))

    def collect(self, seconds: float, type: int | str | None = wire.T_DATA, stream: int | None = None) -> list[Frame]:
        """Frames that arrive during the next `seconds` (DATA by default); the cursor moves past them."""
        since = self.capture.end
        self.wait(seconds)
        got = self.frames(type, stream, since=since)
        self.cursor = max(self.cursor, self.capture.end)
        return got

    def wait(self, seconds: float) -> None:
        """Let `seconds` of the board's clock pass (a fault's spell, an idle stretch); frames keep
        arriving and the cursor stays. Wall time on a board; emulated time on the emulator, where a
        wall-clock sleep would give the firmware a few per cent of the spell."""
        end = self.clock() + seconds
        while (left := end - self.clock()) > 0:
            time.sleep(min(left, 0.05))
        self._raise_if_dead()

    def drain(self) -> None:
        """Move the cursor to now: later `expect` calls only see frames that arrive from here on."""
        self.cursor = self.capture.end

    def _raise_if_dead(self) -> None:
        if self.capture.error is not None:
            raise HilError(f"serial capture failed: {self.capture.error}")

    # -- commands ----------------------------------------------------------------------------
    def send(self, op: int | str, stream: int = wire.ALL_STREAMS, args: bytes = b"", *, timeout: float = 2.0,
             check: bool = True) -> Ack:
        """Send one command (opcode or name); return its ACK (or NACK when `check` is False).

        Raises HilError on a NACK (when `check`), when the port took nothing, or when no answer
        quotes the token in `timeout`.
        """
        return self._acked(self.commands.command, opcode(op), stream, args, timeout=timeout, check=check)

    def _acked(self, command: Callable[..., int], *args: Any, timeout: float = 2.0, check: bool = True) -> Ack:
        since = self.capture.end
        token = command(*args)
        sent = self._sent
        if not token:
            raise HilError(f"{sent} not sent: the board is not connected")
        f = self.expect(where=lambda f: f.type in (wire.T_ACK, wire.T_NACK) and f.ack().token == token,
                        since=since, timeout=timeout, what=f"ACK/NACK of {sent}")
        a = f.ack()
        if check and not a.ok:
            raise HilError(f"{sent} was refused: NACK {a.reason_name}")
        return a

    def _write(self, data: bytes, what: str) -> bool:
        self._sent = what
        return self.capture.write(data, "CMD " + what)

    def _stream_name(self, sid: int) -> str | None:
        info = self.streams.get(sid)
        return info.name if info is not None else None

    def start_streams(self, stream: int = wire.ALL_STREAMS) -> Ack:
        return self._acked(self.commands.start, stream)

    def stop_streams(self, stream: int = wire.ALL_STREAMS) -> Ack:
        return self._acked(self.commands.stop, stream)

    def set_period(self, stream: int, period_us: int) -> Ack:
        return self._acked(self.commands.set_period, stream, period_us)

    def ping(self) -> Ack:
        return self._acked(self.commands.ping)

    def reboot(self, timeout: float = 2.0) -> Ack:
        return self._acked(self.commands.reboot, timeout=timeout)

    def request_hello(self, timeout: float = 2.0) -> Frame:
        since = self.capture.end
        self._acked(self.commands.request_hello, timeout=timeout)
        return self.expect(wire.T_HELLO, since=since, timeout=timeout)

    def status_frame(self, timeout: float = 2.0) -> Frame:
        """Ask for a STATUS (SEND_STATUS) and return the first STATUS frame after the request."""
        since = self.capture.end
        self._acked(self.commands.request_status, timeout=timeout)
        return self.expect(wire.T_STATUS, since=since, timeout=timeout)

    def status(self, timeout: float = 2.0) -> Status:
        return self.status_frame(timeout).status()

    # -- what the device announced -----------------------------------------------------------
    @property
    def hello(self) -> dict | None:
        return self.capture.decoder.hello

    @property
    def streams(self) -> dict[int, StreamInfo]:
        return self.capture.decoder.streams

    @property
    def boot_id(self) -> int | None:
        return self.capture.decoder.boot_id

    def stream_id(self, name_or_kind: str) -> int:
        """The id of the stream with this name or sensor kind ("imu", "mpu6050")."""
        for sid, s in self.streams.items():
            if name_or_kind in (s.name, s.kind):
                return sid
        raise KeyError(f"no stream {name_or_kind!r}; announced: "
                       + ", ".join(f"{s.id}={s.name}/{s.kind}" for s in self.streams.values()))

    def calibration(self, stream: int, boot_id: int | None = None) -> bytes:
        boot = self.boot_id if boot_id is None else boot_id
        return self.capture.calibration.get((boot, stream), b"")

    def physical(self, f: Frame) -> dict[str, np.ndarray]:
        """A DATA frame's samples in physical units (NaN where the device marked a sample missing)."""
        info = self.streams[f.stream]
        blk = f.data()
        mask = np.array([blk.is_missing(i) for i in range(blk.count)], dtype=bool)
        return units.to_physical(info.kind, blk.samples, self.calibration(f.stream, f.boot_id),
                                 info.config, missing=mask)

    # -- statistics --------------------------------------------------------------------------
    @property
    def stats(self) -> LinkStats:
        return self.capture.decoder.stats

    @property
    def corrupt_segments(self) -> int:
        """CRC, framing and invalid errors since this test's HELLO. A reset that cuts the old
        boot off mid-frame leaves one torn segment before the HELLO: the reset's, not the link's."""
        return self.stats.corrupt_segments - self._corrupt_base

    def ledger(self) -> Report:
        """The sample ledger of this test's frames (from its HELLO on), as the monitor keeps it."""
        led = Ledger()
        for f in self.frames():
            led.frame(f)
        led.corrupt(self.stats.corrupt_segments)
        return led.report()

    def counters(self) -> dict[str, Any]:
        """This test's link counters (since the reset), for reports."""
        st = self.stats
        base = self._stats_base
        keys = ("bytes", "frames_ok", "crc_errors", "framing_errors", "invalid_frames", "oversize",
                "duplicates", "missing")
        out: dict[str, Any] = {k: getattr(st, k) - base.get(k, 0) for k in keys}
        led = Ledger()
        for f in self.frames():
            led.frame(f)
        led.corrupt(st.corrupt_segments)
        rep = led.report()
        tot = rep.total
        out["device_dropped"] = led.device_frames_dropped()
        out["host_gaps"] = out["missing"]
        out["lost_in_transit"] = tot.lost_link + tot.lost_port_gone + tot.lost_recording
        out["ledger"] = tot.as_dict()
        if rep.verdict == "pending":
            out["reconciled"] = None
        elif rep.verdict == "fail":
            out["reconciled"] = "NO"
        else:  # exact: every gap a device drop; link: the rest attributed to link evidence
            out["reconciled"] = "link" if out["lost_in_transit"] else "exact"
        return out

    def _snapshot_stats(self) -> None:
        st = self.stats
        self._stats_base = {k: getattr(st, k) for k in ("bytes", "frames_ok", "crc_errors", "framing_errors",
                                                        "invalid_frames", "oversize", "duplicates", "missing")}
