"""machine.Timer on the virtual board (boards/virtual/shim/_vtimer.py): shaped like rp2's (esp32's
on that profile), callbacks on the main thread while Python runs, while it sleeps, under
heap_lock and at the idle REPL, never inside a bus transaction; a WDT fed from a Timer keeps a
board alive at the REPL, and a board hung in a bus transaction still gets its watchdog reset.
Every figure is counted on the device against its own ticks."""
from __future__ import annotations

import time

import pytest
import serial

pytestmark = pytest.mark.virtual_board


def test_timer_is_shaped_like_the_rp2_port(vboard, board_exec):
    out = board_exec(vboard.port, """
import machine
T = machine.Timer
print(T.ONE_SHOT, T.PERIODIC)
t = T()
t.init(period=250, callback=None)
print(repr(t))
t.init(freq=100, mode=T.ONE_SHOT)
print(repr(t))
t.deinit()
for bad in ("T(0)", "T(-1).init(period=1, hard=True)", "T(-1).init(1)"):
    try:
        eval(bad)
        print("accepted", bad)
    except (ValueError, TypeError) as e:
        print(type(e).__name__)
""")
    assert out.split() == ["0", "1", "Timer(mode=PERIODIC,", "tick_hz=1000000,", "period=250000)",
                           "Timer(mode=ONE_SHOT,", "tick_hz=1000000,", "period=10000)",
                           "ValueError", "TypeError", "TypeError"]


def test_timer_ids_on_the_esp32_profile(vboard_factory, board_exec):
    b = vboard_factory(profile="esp32")
    out = board_exec(b.port, """
import machine
print(repr(machine.Timer(0, period=20, callback=None)))
for bad in ("machine.Timer(4)", "machine.Timer(-1).init(period=5, hard=True)"):
    try:
        eval(bad)
    except ValueError as e:
        print("ValueError")
""")
    assert out.split() == ["Timer(0,", "mode=PERIODIC,", "period=20)", "ValueError", "ValueError"]


def test_callbacks_run_while_busy_sleeping_and_heap_locked_one_shot_once(vboard, board_exec):
    out = board_exec(vboard.port, """
import machine, micropython, time
n = [0]
def cb(t):
    n[0] += 1
def spin(ms):
    t0 = time.ticks_ms()
    while time.ticks_diff(time.ticks_ms(), t0) < ms:
        pass
t = machine.Timer(-1)
t.init(period=10, callback=cb)
t0 = time.ticks_ms()
spin(500)
busy = n[0]; n[0] = 0
t1 = time.ticks_ms()
time.sleep_ms(500)
slept = n[0]; n[0] = 0
t2 = time.ticks_ms()
micropython.heap_lock()
spin(300)
micropython.heap_unlock()
locked = n[0]; n[0] = 0
t3 = time.ticks_ms()
t.deinit()
time.sleep_ms(100)
after = n[0]
t.init(period=20, mode=machine.Timer.ONE_SHOT, callback=cb)
time.sleep_ms(200)
print(busy, slept, locked, after, n[0] - after, time.ticks_diff(t1, t0), time.ticks_diff(t2, t1),
      time.ticks_diff(t3, t2))
""")
    busy, slept, locked, after, one_shot, *spans = map(int, out.split())
    # at most one callback per 10 ms of the device's own clock over each phase (no catch-up
    # bursts; +1 for a tick due at the phase's edge); how many fewer depends on how much CPU the
    # host gives the timer thread, so the lower bound only says they ran in each phase
    for n, ms in zip((busy, slept, locked), spans):
        assert 1 <= n <= ms // 10 + 1, out
    assert after == 0 and one_shot == 1, out


def test_a_callback_never_runs_inside_a_bus_transaction(vboard, board_exec):
    out = board_exec(vboard.port, """
import machine
i2c = machine.I2C(0)
mine, theirs = bytearray(1), bytearray(1)
bad = [0, 0]
def cb(t):
    i2c.readfrom_mem_into(0x68, 0x75, theirs)  # MPU-6050 WHO_AM_I
    bad[1] += theirs[0] != 0x68
    bad[0] += 1
t = machine.Timer(period=1, callback=cb)
wrong = 0
for i in range(1500):
    i2c.readfrom_mem_into(0x76, 0xD0, mine)  # BME280 chip id
    wrong += mine[0] != 0x60
t.deinit()
print(bad[0], bad[1], wrong)
""")
    calls, wrong_in_cb, wrong_in_main = map(int, out.split())
    # how many callbacks fall in 1,500 transactions depends on the host's CPU: that they ran is the point
    assert calls >= 1 and wrong_in_cb == 0 and wrong_in_main == 0, out


def _repl(ser: serial.Serial, line: str) -> None:
    ser.write(line.encode() + b"\r")


def _read_until(ser: serial.Serial, marker: bytes, timeout: float = 10.0) -> bytes:
    """Device output up to and including `marker` at the start of a line."""
    buf = bytearray()
    end = time.monotonic() + timeout
    while b"\n" + marker not in buf:
        assert time.monotonic() < end, f"{marker!r} not seen; got {bytes(buf[-300:])!r}"
        buf += ser.read(ser.in_waiting or 1)
    return bytes(buf)


def test_a_timer_feeds_the_watchdog_at_the_idle_repl(vboard):
    """The point of the Timer: the REPL waits in a blocking read and the callbacks still run."""
    n = len(vboard.boots)
    with serial.Serial(vboard.port, timeout=0.05) as ser:
        _repl(ser, "\x03\x02")
        _repl(ser, "import machine, time; c = [0]; t0 = time.ticks_ms(); w = machine.WDT(timeout=600)")
        _repl(ser, "tm = machine.Timer(period=100, callback=lambda t: (w.feed(), c.append(1)))")
        _read_until(ser, b">>> tm = machine.Timer")
        ser.read(4096)
        time.sleep(2.0)  # the REPL idles for three watchdog timeouts; the device says how long
        _repl(ser, "print('IDLE', len(c) - 1, time.ticks_diff(time.ticks_ms(), t0), machine.reset_cause())")
        out = _read_until(ser, b"IDLE ").decode(errors="replace") + ser.readline().decode()
    line = next(x for x in out.splitlines() if x.startswith("IDLE"))
    _, fed, idle_ms, cause = line.split()
    assert len(vboard.boots) == n, "the watchdog reset the board at the REPL"
    # fed while idle (the count depends on the host's CPU; no reset is the proof), over at least
    # three watchdog timeouts of the device's own clock
    assert int(idle_ms) >= 1800 and int(fed) >= 1, line
    assert int(cause) != 3, line


HUNG_WITH_TIMER = """
import machine, time
wdt = machine.WDT(timeout=800)
fed = machine.Timer(period=100, callback=lambda t: wdt.feed())
i2c = machine.I2C(0)
b = bytearray(1)
while True:
    i2c.readfrom_mem_into(0x76, 0xD0, b)
    time.sleep_ms(5)
"""


def test_a_board_hung_in_a_transaction_is_reset_even_with_a_feeding_timer(vboard):
    (vboard.fs / "main.py").write_text(HUNG_WITH_TIMER)
    n = len(vboard.boots)
    vboard.power_cycle()
    vboard.wait_boot(n + 1)
    tx = vboard.status()["i2c_transactions"]
    while vboard.status()["i2c_transactions"] < tx + 50:  # running: the timer feeds it meanwhile
        time.sleep(0.02)
    vboard.hang()
    rec = vboard.wait_boot(n + 2, timeout=10)
    assert rec.cause == 3  # WDT_RESET: the timer's callbacks wait for the transaction to end
