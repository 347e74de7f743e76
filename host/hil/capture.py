"""The host side of one board's serial port during a test: read, decode, buffer, log, record.

`Capture` owns a `host.device.link.Link` (exclusive open, reconnect to the *same* board after a reset
re-enumerates USB) and a `host.device.reader.Reader` that feeds every chunk to a
`host.protocol.decoder.Decoder`. Decoded frames go into a bounded buffer that `host.hil.traffic.Traffic`
searches. A failing test leaves evidence that can be read without the board: a human-readable log
(device text verbatim, one line per non-DATA frame, DATA summarised once a second plus every gap or
missing sample, each command and note) and, beside it, a recording in the monitor's format
(`<test>.rec`, host.device.recording) of every byte read and written and every link event, which
`monitor replay`, `monitor stats` and `monitor export` open.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from pathlib import Path

from firmware import wire
from host.device.link import Link, LinkEvent, Locator
from host.device.reader import Reader
from host.device.recording import Recorder
from host.protocol.decoder import Decoder
from host.protocol.frames import DeviceText, Frame

#: frames kept for searching; older ones are forgotten (a soak would otherwise grow without bound)
DEFAULT_KEEP = 200_000


class Capture:
    """Reads `path` on a thread until `stop()`.

    Args:
        path: the board's port (device path or pyserial URL).
        log_path: human-readable log; the recording goes beside it with the suffix `.rec`
            (replacing a previous run's).
        locate: finds the same board again after its port vanished (see host.device.link.locator_for).
        keep: frames kept in the search buffer.
        meta: what the recording's META record says besides port, baud and tool (board, test).
    """

    def __init__(self, path: str, log_path: Path, *, locate: Locator | None = None, baud: int = 115200,
                 keep: int = DEFAULT_KEEP, meta: dict | None = None) -> None:
        self.path = path
        self.log_path = Path(log_path)
        self.decoder = Decoder()
        self.link = Link(path, baud, locate=locate, retry_interval=0.2)
        self._frames: deque[Frame] = deque(maxlen=keep)
        self._times: deque[float] = deque(maxlen=keep)  # host monotonic arrival time of each frame
        self._base = 0  # absolute index of _frames[0]
        self._cond = threading.Condition()
        self._t0 = time.monotonic()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "w", encoding="utf-8", buffering=1)
        self._log_lock = threading.Lock()
        self.recording_path = self.log_path.with_suffix(".rec")
        self.recording_path.unlink(missing_ok=True)  # a recorder appends; this test's file holds this test
        self._meta = dict(meta or {}, port=path, baud=baud, tool="hil", started=time.time())
        self.reader = Reader(self.link, self._on_read, self._on_event, recorder=Recorder(self.recording_path),
                             on_idle=self._flush_data_summary, on_error=self._on_error, name="hil-capture")
        self._data_window: dict[int, list[int]] = {}  # stream -> [frames, first seq, last seq]
        self._data_window_t = 0.0
        self._last_missing = 0
        self.calibration: dict[tuple[int, int], bytes] = {}  # (boot id, stream) -> CALIB body

    @property
    def error(self) -> BaseException | None:
        """What ended the reading thread, if anything did."""
        return self.reader.error

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> "Capture":
        self.link.open()
        self.reader.meta(self._meta)
        self.note(f"opened {self.path}")
        self.reader.start()
        return self

    def stop(self) -> None:
        self.reader.close()
        self._flush_data_summary(force=True)
        self.note("closed")
        with self._log_lock:
            self._log.close()

    def pause(self) -> None:
        """Stop reading (the port stays open): the host 'stops reading' as a stalled app would."""
        self.reader.pause()
        self.note("host stops reading")

    def resume(self) -> None:
        self.reader.resume()
        self.note("host reads again")

    def sync(self) -> None:
        """Everything read so far is in the recording file (flushed and fsynced)."""
        self.reader.sync()

    def suspend(self) -> None:
        """Release the port (so mpremote/RawRepl can open it); `reopen()` takes it back."""
        self.reader.pause()
        self.link.close()
        self.note("port released (raw REPL)")

    def reopen(self, path: str | None = None) -> None:
        if path is not None:
            self.path = path
        self.link = Link(self.path, self.link.baud, locate=self.link._locate, retry_interval=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.link.open()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.reader.resume(self.link)
        self.note("port taken back")

    # -- frames ------------------------------------------------------------------------------
    @property
    def end(self) -> int:
        """Absolute index one past the newest frame."""
        return self._base + len(self._frames)

    def frames_since(self, index: int) -> tuple[list[Frame], int]:
        """Frames from absolute `index` on (those already forgotten are skipped), and the new end."""
        with self._cond:
            start = max(index, self._base) - self._base
            return list(self._frames)[start:], self.end

    def timed_since(self, index: int) -> list[tuple[float, Frame]]:
        """(host arrival time.monotonic(), frame) from absolute `index` on."""
        with self._cond:
            start = max(index, self._base) - self._base
            return list(zip(list(self._times)[start:], list(self._frames)[start:]))

    def wait(self, index: int, timeout: float) -> bool:
        """Block until a frame at absolute `index` or later exists (True) or the timeout passes."""
        end = time.monotonic() + timeout
        with self._cond:
            while self.end <= index:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def write(self, data: bytes, what: str) -> bool:
        ok = self.reader.write(data)
        self.note(f"HOST> {what}" + ("" if ok else " (write failed: board not connected)"))
        return ok

    # -- log ---------------------------------------------------------------------------------
    def note(self, text: str) -> None:
        with self._log_lock:
            if not self._log.closed:
                self._log.write(f"{time.monotonic() - self._t0:9.3f} {text}\n")

    def _on_read(self, _t: float, data: bytes) -> None:
        items = self.decoder.feed(data)
        if items:
            self._take(items)

    def _on_event(self, ev: LinkEvent) -> None:
        self.note(f"LINK {ev.event}: {ev.detail}")

    def _on_error(self, exc: BaseException) -> None:
        self.note(f"capture thread died: {type(exc).__name__}: {exc}")

    def _take(self, items: list) -> None:
        frames = []
        for it in items:
            if isinstance(it, DeviceText):
                text = it.text.replace("\r", "")
                if text.strip():
                    self.note("TEXT " + repr(text))
                continue
            frames.append(it)
            self._log_frame(it)
        if frames:
            now = time.monotonic()
            with self._cond:
                for f in frames:
                    self._times.append(now)
                    if len(self._frames) == self._frames.maxlen:
                        self._base += 1
                    self._frames.append(f)
                self._cond.notify_all()

    def _log_frame(self, f: Frame) -> None:
        t = f.type
        if t == wire.T_DATA:
            w = self._data_window.setdefault(f.stream, [0, f.seq, f.seq])
            w[0] += 1
            w[2] = f.seq
            missing = self.decoder.stats.missing
            nmiss = f.data().missing_count()
            if missing != self._last_missing or nmiss:
                self.note(f"DATA s{f.stream} seq={f.seq} n={f.count} missing_samples={nmiss} "
                          f"seq_gaps_before_it={missing - self._last_missing}")
                self._last_missing = missing
            return
        head = f"{f.type_name} boot={f.boot_id:08x} seq={f.seq}"
        try:
            if t == wire.T_HELLO:
                self.note(f"{head} {f.body.decode('utf-8', 'replace')}")
            elif t == wire.T_CALIB:
                self.calibration[(f.boot_id, f.stream)] = f.body
                self.note(f"{head} s{f.stream} {len(f.body)} bytes {f.body.hex()}")
            elif t == wire.T_STATUS:
                s = f.status()
                per = " ".join(f"s{x.stream}:{'on' if x.online else 'OFF'}/err={x.sensor_errors}"
                               f"/drop={x.frames_dropped}/miss={x.samples_missing}" for x in s.streams)
                self.note(f"{head} uptime={s.uptime_ms}ms heap={s.free_heap} overruns={s.loop_overruns} "
                          f"sent={s.frames_sent} dropped={s.frames_dropped} cause={s.reset_cause} "
                          f"cmd_err={s.cmd_errors} rx_err={s.rx_errors} {per}")
            elif t == wire.T_EVENT:
                e = f.event()
                self.note(f"{head} {e.name} stream={e.stream} arg={e.arg} {e.text!r}")
            elif t in (wire.T_ACK, wire.T_NACK):
                a = f.ack()
                self.note(f"{head} {wire.OPCODE_NAMES.get(a.opcode, a.opcode)} token={a.token} "
                          f"reason={a.reason_name}")
            else:
                self.note(head)
        except Exception as exc:  # a frame the decoder accepted but a parser refused: log it, go on
            self.note(f"{head} (unparsed: {exc})")

    def _flush_data_summary(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._data_window_t < 1.0:
            return
        self._data_window_t = now
        if self._data_window:
            parts = " ".join(f"s{s}:{n}f seq {a}..{b}" for s, (n, a, b) in sorted(self._data_window.items()))
            st = self.decoder.stats
            self.note(f"DATA {parts} | frames_ok={st.frames_ok} crc={st.crc_errors} "
                      f"framing={st.framing_errors} invalid={st.invalid_frames} gaps={st.missing}")
            self._data_window = {}
