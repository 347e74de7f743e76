"""The virtual board behaves like a MicroPython board on USB serial: power-on order, heap size,
resets and their causes, Ctrl-C, a binary-safe link, and no process left behind."""
from __future__ import annotations

import hashlib
import os
import time

import pytest
import serial

pytestmark = pytest.mark.virtual_board


def read_until(ser: serial.Serial, marker: bytes, timeout: float = 5.0) -> bytes:
    buf = bytearray()
    end = time.monotonic() + timeout
    while marker not in buf:
        if time.monotonic() > end:
            raise AssertionError(f"{marker!r} not seen within {timeout} s; got {bytes(buf[-300:])!r}")
        buf += ser.read(ser.in_waiting or 1)
    return bytes(buf)


def write_and_power_cycle(board, files: dict[str, str]) -> None:
    for name, text in files.items():
        (board.fs / name).write_text(text)
    n = len(board.boots)
    board.power_cycle()
    board.wait_boot(n + 1)


def test_boot_py_then_main_py_run_at_power_on(vboard):
    with serial.Serial(vboard.port, timeout=0.05) as ser:
        write_and_power_cycle(vboard, {"boot.py": "print('BOOT-RAN')\n",
                                       "main.py": "import machine\nprint('MAIN-RAN', machine.reset_cause())\n"})
        # (up to main.py's line, not the next prompt: on a busy host the prompt of the boot
        # before the power cycle may arrive after the port was opened)
        out = read_until(ser, b"MAIN-RAN 1", timeout=15.0)
    assert out.index(b"BOOT-RAN") < out.index(b"MAIN-RAN 1")  # 1 = PWRON_RESET
    assert vboard.boots[-1].cause == 1


@pytest.mark.parametrize("profile,expected_kib", [("rp2040", 376), ("esp32", 220)])
def test_heap_is_sized_like_the_real_board(vboard_factory, board_exec, profile, expected_kib):
    """As many objects as a 192k RP2040 / 112k ESP32 heap holds (64-bit objects are ~2x larger;
    calibration in tests/micropython/test_vboard_heap.py)."""
    b = vboard_factory(profile=profile)
    out = board_exec(b.port, "import gc\ngc.collect()\nprint(gc.mem_free() + gc.mem_alloc())")
    assert abs(int(out) - expected_kib * 1024) < 8192  # the GC pool: the heap less its allocation table


def test_machine_reset_restarts_with_hard_reset_cause(vboard, board_exec):
    n = len(vboard.boots)
    with serial.Serial(vboard.port, timeout=0.05) as ser:
        ser.write(b"\r\x03\x03import machine; machine.reset()\r")
        vboard.wait_boot(n + 1)
    assert vboard.boots[-1].cause == 2, vboard.boots
    assert board_exec(vboard.port, "import machine; print(machine.reset_cause())").strip() == "2"


def test_watchdog_expiry_restarts_with_wdt_cause(vboard):
    with serial.Serial(vboard.port, timeout=0.05) as ser:
        write_and_power_cycle(vboard, {"main.py": (
            "import machine, time\n"
            "print('CAUSE', machine.reset_cause())\n"
            "if machine.reset_cause() != machine.WDT_RESET:\n"
            "    w = machine.WDT(timeout=300)\n"
            "    for i in range(3):\n"
            "        w.feed(); time.sleep_ms(100)\n"
            "    print('HUNG'); time.sleep(30)\n")})
        out = read_until(ser, b"CAUSE 3", timeout=8)
    assert b"HUNG" in out
    assert [b.cause for b in vboard.boots[-2:]] == [1, 3]


def test_ctrl_d_at_friendly_repl_soft_reboots_and_runs_main(vboard):
    (vboard.fs / "main.py").write_text("import machine\nprint('MAIN', machine.reset_cause())\n")
    n = len(vboard.boots)
    with serial.Serial(vboard.port, timeout=0.05) as ser:
        ser.write(b"\r\x02")
        read_until(ser, b">>> ")
        ser.write(b"\x04")
        out = read_until(ser, b"MAIN 5")
    assert b"MPY: soft reboot\r\n" in out
    assert len(vboard.boots) == n + 1


def test_ctrl_c_interrupts_running_main(vboard):
    with serial.Serial(vboard.port, timeout=0.05) as ser:
        write_and_power_cycle(vboard, {"main.py": "print('LOOPING')\nwhile True:\n    pass\n"})
        read_until(ser, b"LOOPING")
        ser.write(b"\x03")
        out = read_until(ser, b">>> ")
    assert b"KeyboardInterrupt" in out


def test_link_is_binary_safe_both_ways(vboard):
    every = bytes(range(256)) * 4
    digest = hashlib.sha256(every).hexdigest()
    main = (
        "import sys, micropython, hashlib\n"
        "micropython.kbd_intr(-1)\n"
        "sys.stdout.buffer.write(bytes(range(256)) * 4)\n"
        "buf = bytearray(1024)\n"
        "mv = memoryview(buf)\n"
        "got = 0\n"
        "while got < 1024:\n"
        "    got += sys.stdin.buffer.readinto(mv[got:])\n"
        "micropython.kbd_intr(3)\n"
        "print('SHA', hashlib.sha256(buf).digest().hex())\n")
    with serial.Serial(vboard.port, timeout=0.05) as ser:
        write_and_power_cycle(vboard, {"main.py": main})
        out = read_until(ser, every)
        time.sleep(0.2)  # let kbd_intr(-1) take effect before 0x03 bytes go down
        ser.write(every)
        out = read_until(ser, b">>> ")
    assert f"SHA {digest}".encode() in out


def test_stop_leaves_no_process_behind(vboard_factory):
    b = vboard_factory()
    pid = b.pid
    b.stop()
    time.sleep(0.1)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
