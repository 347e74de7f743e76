"""SLIP framing as the ESP ROM loader uses it (RFC 1055 with END 0xC0, ESC 0xDB)."""
from __future__ import annotations

END, ESC, ESC_END, ESC_ESC = 0xC0, 0xDB, 0xDC, 0xDD


def encode(packet: bytes) -> bytes:
    body = packet.replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc")
    return b"\xc0" + body + b"\xc0"


class SlipDecoder:
    """Bytes in, complete packets out; bytes outside a packet (e.g. a terminal's typing) are
    dropped, as the ROM drops them, and an unknown escape keeps the byte as it came."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._in_packet = False
        self._escape = False

    def feed(self, data: bytes) -> list[bytes]:
        packets = []
        for b in data:
            if not self._in_packet:
                if b == END:
                    self._in_packet = True
                    self._buf.clear()
                continue
            if self._escape:
                self._escape = False
                self._buf.append(END if b == ESC_END else ESC if b == ESC_ESC else b)
            elif b == ESC:
                self._escape = True
            elif b == END:
                if self._buf:  # END END: the second one opens the next packet
                    packets.append(bytes(self._buf))
                    self._buf.clear()
            else:
                self._buf.append(b)
        return packets
