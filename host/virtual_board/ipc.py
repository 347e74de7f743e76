"""The runner's side of the bus FIFOs that the MicroPython `machine` shim talks through.

Message layout is documented in boards/virtual/shim/_vipc.py; the numbers below must match it
(tests/unit/test_shim_constants.py compares them).
One thread serves requests strictly in order, as a single-master bus would.
"""
from __future__ import annotations

import errno
import os
import struct
import threading
import time
from pathlib import Path

OP_I2C_INIT = 1
OP_SCAN = 2
OP_WRITETO = 3
OP_READFROM = 4
OP_WRITE_MEM = 5
OP_READ_MEM = 6
OP_ADC = 7
OP_WDT_START = 8
OP_WDT_FEED = 9
OP_RESET = 10
OP_ADC_START = 11
OP_ADC_BLOCK = 12

HEADER = struct.Struct("<BBBBHH")
REPLY = struct.Struct("<BBH")
#: ops whose `length` field counts body bytes that follow the header
_WRITES = {OP_I2C_INIT, OP_WRITETO, OP_WRITE_MEM, OP_WDT_START, OP_ADC_START, OP_ADC_BLOCK}


class BusError(Exception):
    """A transaction failed the way real hardware fails; `errno` is what the port would raise."""

    def __init__(self, code: int, why: str = ""):
        super().__init__(why or errno.errorcode.get(code, str(code)))
        self.errno = code


class Handler:
    """What the IPC server asks of the board; VirtualBoard implements it."""

    def i2c_init(self, bus: int, freq: int, timeout_us: int) -> None: ...
    def scan(self, bus: int) -> bytes: ...
    def i2c_write(self, bus: int, addr: int, data: bytes) -> None: ...
    def i2c_read(self, bus: int, addr: int, n: int) -> bytes: ...
    def adc_read(self, channel: int) -> int: ...
    def adc_start(self, channel: int, period_q: int) -> None: ...
    def adc_block(self, channel: int, first: int, n: int) -> bytes: ...
    def wdt_start(self, timeout_ms: int) -> None: ...
    def wdt_feed(self) -> None: ...
    def reset_request(self, cause: int) -> None: ...


class IpcServer:
    """Serves one VM process's bus requests until the FIFOs close or stop() is called."""

    def __init__(self, run_dir: Path, handler: Handler):
        self.run_dir = run_dir
        self.handler = handler
        self.transactions = 0
        for name in ("bus.req", "bus.rsp"):
            p = run_dir / name
            if p.exists():
                p.unlink()
            os.mkfifo(p, 0o600)
        # O_RDWR on both ends: neither open blocks and neither side sees EOF while we live.
        self._req = os.open(run_dir / "bus.req", os.O_RDWR)
        self._rsp = os.open(run_dir / "bus.rsp", os.O_RDWR)
        self._stop = False
        self.hung = False  # set by VirtualBoard.hang(); this server lives for one boot only
        self._thread = threading.Thread(target=self._serve, name="vboard-bus", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop = True
        # wake the reader with a no-op message it will discard
        try:
            os.write(self._req, HEADER.pack(0, 0, 0, 0, 0, 0))
        except OSError:
            pass
        self._thread.join(timeout=2)
        for fd in (self._req, self._rsp):
            try:
                os.close(fd)
            except OSError:
                pass

    def _read_exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = os.read(self._req, n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return bytes(buf)

    def _serve(self) -> None:
        h = self.handler
        reply = self._reply
        while not self._stop:
            try:
                op, bus, addr, addrsize, memaddr, length = HEADER.unpack(self._read_exact(HEADER.size))
                body = self._read_exact(length) if op in _WRITES and length else b""
            except (EOFError, OSError):
                return
            while self.hung and not self._stop:  # the bus locked up: this request never completes
                time.sleep(0.005)
            if self._stop:
                return
            self.transactions += 1
            try:
                if op == OP_READ_MEM:
                    h.i2c_write(bus, addr, _memaddr_bytes(memaddr, addrsize), more=True)
                    reply(0, h.i2c_read(bus, addr, length))
                elif op == OP_WRITE_MEM:
                    h.i2c_write(bus, addr, _memaddr_bytes(memaddr, addrsize) + body)
                    reply(0)
                elif op == OP_READFROM:
                    reply(0, h.i2c_read(bus, addr, length))
                elif op == OP_WRITETO:
                    h.i2c_write(bus, addr, body)
                    reply(0)
                elif op == OP_WDT_FEED:
                    h.wdt_feed()  # one-way
                elif op == OP_ADC:
                    reply(0, struct.pack("<H", h.adc_read(addr)))
                elif op == OP_ADC_BLOCK:
                    reply(0, h.adc_block(addr, struct.unpack("<Q", body)[0], memaddr))
                elif op == OP_ADC_START:
                    h.adc_start(addr, struct.unpack("<I", body)[0])  # one-way
                elif op == OP_SCAN:
                    reply(0, h.scan(bus))
                elif op == OP_I2C_INIT:
                    freq, timeout = struct.unpack("<II", body)
                    h.i2c_init(bus, freq, timeout)
                    reply(0)
                elif op == OP_WDT_START:
                    h.wdt_start(struct.unpack("<I", body)[0])
                    reply(0)
                elif op == OP_RESET:
                    h.reset_request(addr)  # no reply: the process is about to be replaced
                elif op == 0:
                    continue
                else:
                    reply(errno.EINVAL)
            except BusError as exc:
                reply(exc.errno)

    def _reply(self, status: int, data: bytes = b"") -> None:
        os.write(self._rsp, REPLY.pack(status, 0, len(data)) + data)


def _memaddr_bytes(memaddr: int, addrsize: int) -> bytes:
    if addrsize == 16:
        return memaddr.to_bytes(2, "big")
    return bytes([memaddr & 0xFF])
