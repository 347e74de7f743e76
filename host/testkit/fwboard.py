"""Helpers for the firmware tests: install firmware/ on a virtual board and read its stream."""
from __future__ import annotations

import json
import threading
import time
from collections import Counter

import serial

from firmware import wire
from host.protocol.decoder import Decoder
from host.protocol.encoder import encode_command
from host.protocol.frames import DeviceText, Frame

from host.paths import ROOT  # noqa: E402
FIRMWARE = ROOT / "firmware"
VIRTUAL_BOARD_JSON = ROOT / "boards" / "virtual" / "board.json"


def install(flash_dir, config: dict | str | None = "default") -> None:
    """Write what `flash.py deploy --board virtual` installs (host.flashing.deploy_tree.build_tree: .mpy
    for the board's arch, main.py/boot.py as source, board.json, firmware/config.json) straight
    into a virtual board's filesystem (`board.fs`: the board runs it from its next boot) or a
    folder; then config: a dict to write as config.json, a str written verbatim,
    "default" to keep firmware/config.json, None for no config.json at all."""
    from host.device.boards import load_board
    from host.flashing.deploy_tree import build_tree

    for rel, data in build_tree(load_board("virtual")).items():
        dest = flash_dir / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
    cfg = flash_dir / "config.json"
    if config is None:
        cfg.unlink()
    elif isinstance(config, dict):
        cfg.write_text(json.dumps(config))
    elif isinstance(config, str) and config != "default":
        cfg.write_text(config)


class Reader:
    """Reads the board's port in a thread and decodes everything into `frames` and `text`."""

    def __init__(self, port: str):
        self.ser = serial.Serial(port, timeout=0.02)
        self.dec = Decoder()
        self.frames: list[Frame] = []
        self.text = ""
        self.lock = threading.Lock()
        self.paused = False
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.ser.read(65536)
            except (serial.SerialException, OSError):
                time.sleep(0.01)
                continue
            if not data:
                continue
            with self.lock:
                for it in self.dec.feed(data):
                    if isinstance(it, DeviceText):
                        self.text += it.text
                    else:
                        self.frames.append(it)

    def close(self) -> None:
        self._stop.set()
        self._t.join(timeout=2)
        self.ser.close()

    def send(self, opcode: int, token: int, stream: int = 255, args: bytes = b"") -> None:
        self.ser.write(encode_command(opcode, token, stream, args))

    def of(self, ftype: int) -> list[Frame]:
        with self.lock:
            return [f for f in self.frames if f.type == ftype]

    def events(self) -> list:
        return [f.event() for f in self.of(wire.T_EVENT)]

    def acks(self) -> list:
        return [f.ack() for f in self.of(wire.T_ACK) + self.of(wire.T_NACK)]

    def data_counts(self) -> Counter:
        return Counter(f.stream for f in self.of(wire.T_DATA))

    def wait(self, pred, timeout: float = 15.0, what: str = "condition"):
        """Poll `pred` until it holds; a wait, never a judgement of timing, so the default leaves
        room for a host busy elsewhere (a boot there can take several seconds)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            r = pred()
            if r:
                return r
            time.sleep(0.02)
        raise AssertionError(f"timed out waiting for {what}; text so far: {self.text[-800:]!r}; "
                             f"events: {self.events()}")


def boot(board, config: dict | str | None = "default") -> Reader:
    """Install the firmware, open the port, power-cycle, wait for the boot."""
    install(board.fs, config)
    r = Reader(board.port)
    n = len(board.boots)
    board.power_cycle()
    board.wait_boot(n + 1)
    return r
