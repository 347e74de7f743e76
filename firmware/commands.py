"""Commands from the host: one byte at a time through wire.CmdReceiver, ACK or NACK each.

stdin is polled with a warmed ``ipoll(0)`` and read one byte per ``readinto`` of a 1-byte
buffer, so when the receiver reports RX_INTERRUPT (mpremote's ``\\r\\x03``) nothing after the
0x03 has been consumed: the REPL gets mpremote's following ``\\r\\x01``.  Every command frame
that arrives intact is answered (ACK, or NACK with a reason, counted in ``errors``); a
damaged one gets NACK BAD_CRC.  Nothing is ever exec'd.  Allocation-free after ``__init__``.
"""

import select
import time

from micropython import const

import wire

_POLLIN = const(1)
_BYTES_PER_POLL = const(64)

NONE = const(0)
REPL = const(1)  # same values as sampler.REPL/INTERRUPT/REBOOT
INTERRUPT = const(2)
REBOOT = const(3)


class Commands:
    def __init__(self, instream, out, boot_id):
        self.rx = wire.CmdReceiver(64)
        self.out = out
        self.boot_id = boot_id
        self.one = bytearray(1)
        self._readinto = instream.readinto
        self._poll = select.poll()
        self._poll.register(instream, select.POLLIN)
        self._ipoll = self._poll.ipoll
        for _ in self._ipoll(0):  # warm-up
            pass
        self.ack = bytearray(wire.OVERHEAD + wire.ACK_SIZE)
        self.seq_ack = 0
        self.seq_nack = 0
        self.errors = 0  # NACKed commands
        self.handled = 0
        self.sampler = None
        self.health = None

    def readable(self):
        for _ in self._ipoll(0):
            if _[1] & _POLLIN:
                return True
        return False

    def poll(self):
        """Read what the host sent (bounded); returns NONE or an action for the loop.  The loop
        calls it every housekeeping pass, mostly to find nothing: ``readable()`` is inlined
        (a method call is ~15 emulated us of the ~100 a look costs on an RP2040)."""
        rx = self.rx
        one = self.one
        ipoll = self._ipoll
        n = _BYTES_PER_POLL
        while n > 0:
            for e in ipoll(0):
                if e[1] & _POLLIN:
                    break
            else:
                return NONE
            if not self._readinto(one):
                return NONE
            r = rx.feed_byte(one[0])
            if r == wire.RX_FRAME:
                a = self.dispatch()
                if a:
                    return a
            elif r == wire.RX_INTERRUPT:
                return INTERRUPT
            elif r == wire.RX_ERROR:
                if rx.n >= wire.HEADER_SIZE:
                    self.reply(0, rx.token(), wire.R_BAD_CRC)
            n -= 1
        return NONE

    def reply(self, opcode, token, reason):
        if reason:
            n = wire.pack_ack(self.ack, self.boot_id, self.seq_nack, time.ticks_us(), opcode, token, reason)
            self.seq_nack = (self.seq_nack + 1) & 0xFFFF
            self.errors = (self.errors + 1) & 0xFFFF
        else:
            n = wire.pack_ack(self.ack, self.boot_id, self.seq_ack, time.ticks_us(), opcode, token, 0)
            self.seq_ack = (self.seq_ack + 1) & 0xFFFF
        self.out.send(self.ack, n)

    def dispatch(self):
        rx = self.rx
        op = rx.opcode()
        tok = rx.token()
        sid = rx.stream()
        smp = self.sampler
        self.handled += 1
        s = None
        if sid != wire.ALL_STREAMS:
            s = smp.stream(sid)
            if s is None and (op == wire.OP_START or op == wire.OP_STOP or op == wire.OP_SET_PERIOD):
                self.reply(op, tok, wire.R_BAD_STREAM)
                return NONE
        if op == wire.OP_PING:
            self.reply(op, tok, 0)
        elif op == wire.OP_START:
            self.reply(op, tok, 0)
            smp.start(sid)
        elif op == wire.OP_STOP:
            self.reply(op, tok, 0)
            smp.stop(sid)
            if not smp.streaming():  # the last stream stopped: its final counters, now
                self.health.status()
        elif op == wire.OP_SET_PERIOD:
            p = rx.arg_u32(0)
            if s is None:
                self.reply(op, tok, wire.R_BAD_STREAM)
            elif p < 0 or p < s.info.min_period or rx.n_args() != 4:
                self.reply(op, tok, wire.R_BAD_ARGS)
            else:
                s.set_period(p)
                self.reply(op, tok, 0)
        elif op == wire.OP_SEND_HELLO:
            self.reply(op, tok, 0)
            self.health.send_hello()
        elif op == wire.OP_SEND_STATUS:
            self.reply(op, tok, 0)
            self.health.status()
        elif op == wire.OP_REBOOT:
            self.reply(op, tok, 0)
            return REBOOT
        elif op == wire.OP_REPL:
            self.reply(op, tok, 0)
            return REPL
        else:
            self.reply(op, tok, wire.R_UNKNOWN_OPCODE)
        return NONE
