"""The virtual board's `machine`, `micropython`, `os` and `sys` shaped and erroring as the rp2 and
esp32 ports are (their C sources are the reference), per profile; text output cooked as theirs."""
from __future__ import annotations

import errno
import subprocess
import sys
import time

import pytest
import serial

pytestmark = pytest.mark.virtual_board

PROFILES = ("rp2040", "esp32")

# A driver written the way many community drivers are: raw primitives on SoftI2C, positional pins.
RAW_DRIVER = """
import machine, time
i2c = machine.SoftI2C(machine.Pin(5), machine.Pin(4))
def reg(addr, r, n):
    i2c.start()
    acks = i2c.write(bytes([addr << 1, r]))
    i2c.start()
    i2c.write(bytes([addr << 1 | 1]))
    buf = bytearray(n)
    i2c.readinto(buf)
    i2c.stop()
    return acks, bytes(buf)
def crc8(b):
    c = 0xFF
    for x in b:
        c ^= x
        for _ in range(8):
            c = (c << 1) ^ 0x31 if c & 0x80 else c << 1
        c &= 0xFF
    return c
i2c.start(); i2c.write(bytes([0x44 << 1, 0x24, 0x00])); i2c.stop()
time.sleep_ms(20)
i2c.start(); i2c.write(bytes([0x44 << 1 | 1])); m = bytearray(6); i2c.readinto(m); i2c.stop()
hw = machine.I2C(0)
print(reg(0x76, 0xD0, 1), reg(0x68, 0x75, 1), reg(0x76, 0x88, 24)[1] == hw.readfrom_mem(0x76, 0x88, 24),
      crc8(m[0:2]) == m[2] and crc8(m[3:5]) == m[5], i2c.scan())
"""


def test_a_raw_primitive_driver_on_softi2c_reads_the_chips(vboard, board_exec):
    out = board_exec(vboard.port, RAW_DRIVER).strip()
    assert out == "(2, b'`') (2, b'h') True True [68, 104, 118]"


@pytest.mark.parametrize("profile", PROFILES)
def test_hardware_i2c_primitives_raise_as_on_the_ports(vboard_factory, board_exec, profile):
    b = vboard_factory(profile=profile)
    code = """
import machine
i = machine.I2C(0)
res = []
for name, args in (("start", ()), ("stop", ()), ("write", (b"x",)), ("readinto", (bytearray(1),)), ("init", ())):
    try:
        getattr(i, name)(*args)
        res.append(None)
    except OSError as e:
        res.append(e.args[0])
print(res, hasattr(i, "deinit"), machine.I2C(1).scan())
try:
    machine.I2C(2)
except ValueError as e:
    print(e)
"""
    lines = board_exec(b.port, code).strip().splitlines()
    assert lines[0] == "['I2C operation not supported'] * 5 False []".replace(
        "['I2C operation not supported'] * 5", str(["I2C operation not supported"] * 5))
    assert lines[1] == "I2C(2) doesn't exist"


NACKS = """
import machine
def err(f, *a):
    try:
        f(*a)
        return 0
    except OSError as e:
        return e.errno
i, s = machine.I2C(0), machine.SoftI2C(machine.Pin(5), machine.Pin(4))
print([err(i.readfrom_mem, 0x76, 0xD0, 1), err(i.writeto, 0x76, b"\\x00"), err(i.writeto, 0x76, b""),
       err(i.readfrom, 0x76, 1), err(s.readfrom_mem, 0x76, 0xD0, 1), err(s.writeto, 0x76, b""),
       0x76 in i.scan(), 0x76 in s.scan()])
"""


@pytest.mark.parametrize(("profile", "expected"), [
    # rp2: EIO for any NACK, except a zero-length write (bit-banged by the port): ENODEV
    ("rp2040", [errno.EIO, errno.EIO, errno.ENODEV, errno.EIO, errno.ENODEV, errno.ENODEV, False, False]),
    # esp32: ENODEV for any NACK
    ("esp32", [errno.ENODEV] * 6 + [False, False]),
])
def test_nack_errors_per_port(vboard_factory, board_exec, profile, expected):
    b = vboard_factory(profile=profile)
    b.unplug("bme280")
    assert eval(board_exec(b.port, NACKS).strip()) == expected


@pytest.mark.parametrize(("profile", "platform", "machine", "uid_len"), [
    ("rp2040", "rp2", "Raspberry Pi Pico with RP2040", 8),
    ("esp32", "esp32", "Generic ESP32 module with ESP32", 6),
])
def test_identity_per_port(vboard_factory, board_exec, profile, platform, machine, uid_len):
    b = vboard_factory(profile=profile)
    code = ("import os, sys, machine, micropython\nmicropython.alloc_emergency_exception_buf(100)\n"
            "u = os.uname()\nprint(repr((sys.platform, u.sysname, u.machine, len(machine.unique_id()))))")
    assert eval(board_exec(b.port, code).strip()) == (platform, platform, machine, uid_len)
    if profile == "esp32":
        assert bytes.fromhex(b.unique_id.hex()) == b.unique_id and b.unique_id[:3] == bytes.fromhex("240ac4")


def test_rp2_adc4_is_the_temperature_sensor(vboard, board_exec):
    code = ("import machine\nv = machine.ADC(4).read_u16() * 3.3 / 65535\n"
            "print(round(27 - (v - 0.706) / 0.001721, 1), machine.ADC.CORE_TEMP)\n"
            "try:\n    machine.ADC(machine.Pin(5))\nexcept ValueError as e:\n    print(e)")
    temp, core, *rest = board_exec(vboard.port, code).split()
    assert abs(float(temp) - 27) < 0.5 and core == "4"
    assert " ".join(rest) == "Pin doesn't have ADC capabilities"


def test_esp32_adc_api(vboard_factory, board_exec):
    b = vboard_factory(profile="esp32")
    board_exec(b.port, "import machine\nmachine.ADC(machine.Pin(26)).read_u16()")
    b.freeze("analog", True)  # one conversion's value for every read: the API's scaling, not the signal's noise
    code = """
import machine
a = machine.ADC(machine.Pin(26), atten=machine.ADC.ATTN_11DB)
u16, uv = a.read_u16(), a.read_uv()
a.width(machine.ADC.WIDTH_10BIT)
r10 = a.read()
a.atten(machine.ADC.ATTN_0DB)
print(u16, uv, r10, a.read_uv(), machine.ADC.ATTN_0DB, machine.ADC.ATTN_2_5DB, machine.ADC.ATTN_6DB)
try:
    machine.ADC(machine.Pin(5))
except ValueError as e:
    print(e)
"""
    first, second = board_exec(b.port, code).strip().splitlines()
    u16, uv, r10, uv0, *attns = map(int, first.split())
    assert abs(uv / 1000 - u16 * 3300 / 65535) < 1.5
    assert abs(r10 - uv / 1000 * 1023 / 3300) < 2
    assert abs(uv0 - min(uv, 950_000)) < 30_000 and uv0 <= 950_000 and attns == [0, 1, 2]  # 0 dB clips at 950 mV
    assert second == "invalid pin"


def test_rtc_and_mpremote_rtc(vboard, board_exec, tool_env):
    mp = [sys.executable, "-m", "mpremote", "connect", vboard.port]
    r = subprocess.run([*mp, "rtc", "--set"], capture_output=True, text=True, timeout=30, env=tool_env)
    assert r.returncode == 0, r.stderr
    now = time.localtime()
    r = subprocess.run([*mp, "rtc"], capture_output=True, text=True, timeout=30, env=tool_env)
    assert r.returncode == 0, r.stderr
    y, mo, d, wd, h, mi, s, _ = eval(r.stdout.strip())
    assert (y, mo, d, wd) == (now.tm_year, now.tm_mon, now.tm_mday, now.tm_wday)
    code = ("import machine\nr = machine.RTC()\nr.datetime((2031, 2, 3, 0, 4, 5, 6, 0))\n"
            "print(r.datetime()[:6])")
    assert board_exec(vboard.port, code).strip() == "(2031, 2, 3, 0, 4, 5)"


@pytest.mark.parametrize("profile", PROFILES)
def test_pins_pwm_uart_spi(vboard_factory, board_exec, profile):
    b = vboard_factory(profile=profile)
    code = """
import machine, time
P = machine.Pin
up, down = P(3, P.IN, P.PULL_UP), P(9, P.IN, P.PULL_DOWN)
seen = []
out = P(2, P.OUT, value=0)
out.irq(lambda p: seen.append(p.value()), P.IRQ_RISING | P.IRQ_FALLING)
out.on(); out.on(); out.off(); out.toggle()
time.sleep_ms(10)
sig = machine.Signal(P(7, P.OUT), invert=True)
sig.on()
pwm = machine.PWM(P(2), freq=1000, duty_u16=16384)
u = machine.UART(1, 9600, tx=P(4), rx=P(4))
u.write(b"ping\\n")
quiet = machine.UART(0, 9600, tx=P(0), rx=P(1), timeout=5)
quiet.write(b"x")
spi = machine.SPI(1, 1000000)
rb = bytearray(3)
spi.write_readinto(b"abc", rb)
print(up.value(), down.value(), seen, P(7).value(), pwm.freq(), pwm.duty_u16(), pwm.duty_ns(),
      u.readline(), quiet.read(), bytes(rb), machine.SoftSPI(sck=P(10), mosi=P(11), miso=P(12)).read(1))
"""
    assert board_exec(b.port, code).strip() == (
        "1 0 [1, 0, 1] 0 1000 16384 250003 b'ping\\n' None b'\\xff\\xff\\xff' b'\\xff'")


def test_timer_constructor_and_rtc_are_in_machine(vboard, board_exec):
    out = board_exec(vboard.port, "import machine\nprint(all(hasattr(machine, n) for n in "
                                  "('Timer', 'RTC', 'UART', 'SPI', 'SoftSPI', 'PWM', 'Signal', 'SoftI2C', "
                                  "'lightsleep', 'deepsleep', 'time_pulse_us')))")
    assert out.strip() == "True"


def test_deepsleep_resets_with_deepsleep_reset(vboard, board_exec):
    boots = len(vboard.boots)
    t = serial.Serial(vboard.port, timeout=0.5)
    t.write(b"import machine; machine.deepsleep(50)\r")
    vboard.wait_boot(boots + 1)
    t.close()
    assert vboard.boots[-1].cause == 4  # DEEPSLEEP_RESET
    time.sleep(0.3)
    assert board_exec(vboard.port, "import machine\nprint(machine.reset_cause())").strip() == "4"


def test_text_output_is_cooked_and_binary_is_not(vboard):
    """The friendly REPL as `mpremote repl` passes it through: print() and REPL results end lines
    with \\r\\n (no staircase), sys.stdout.buffer writes stay byte-exact."""
    t = serial.Serial(vboard.port, timeout=0.3)
    t.write(b"\r")
    time.sleep(0.3)
    t.reset_input_buffer()
    t.write(b"print('a\\nb'); 6 * 7\r")
    time.sleep(0.5)
    got = t.read(4096)
    t.write(b"import sys; n = sys.stdout.buffer.write(b'<\\n\\x00\\r\\n>'); sys.stdout.write('c\\n')\r")
    time.sleep(0.5)
    raw = t.read(4096)
    t.close()
    assert b"a\r\nb\r\n42\r\n>>> " in got
    assert b"\n" not in got.replace(b"\r\n", b"")
    assert b"<\n\x00\r\n>c\r\n" in raw
