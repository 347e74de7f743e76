"""A config the heap cannot hold on the virtual board: refused at boot by the heap budget (or, past
the budget, by the MemoryError guard) with CONFIG_FALLBACK and the board's default streams, never
a crash loop; and the budget estimate (firmware/budget.py) is never below the heap really used."""
from __future__ import annotations

import json
import re

import pytest

from firmware import budget, config, wire
from host.device.boards import load_board
from host.testkit.fwboard import Reader, boot, install

pytestmark = [pytest.mark.virtual_board, pytest.mark.micropython, pytest.mark.timeout(300)]

BOARD = load_board("virtual").raw


def imu_streams(n, batch=10):
    return [{"name": f"imu{i}", "sensor": "mpu6050", "period_us": 5000, "batch": batch} for i in range(n)]


def expect_defaults(r, board, why):
    """One boot, CONFIG_FALLBACK naming `why`, HELLO listing the defaults, DATA from each."""
    # a wait, not a judgement: a fallback boot compiles the app twice, which takes a busy host long
    r.wait(lambda: r.of(wire.T_HELLO), timeout=45, what="HELLO")
    ev = r.wait(lambda: [e for e in r.events() if e.code == wire.EV_CONFIG_FALLBACK], what="CONFIG_FALLBACK")
    assert why in ev[0].text and "defaults" in ev[0].text, ev[0].text
    got = [(s["name"], s["kind"], s["batch"]) for s in r.of(wire.T_HELLO)[-1].hello()["streams"]]
    assert got == [(s["name"], s["sensor"], s["batch"]) for s in config.defaults(BOARD)["streams"]]
    r.wait(lambda: len(r.data_counts()) == len(got), what="DATA from every default stream")
    assert not [e for e in r.events() if e.code == wire.EV_UNHANDLED_EXCEPTION]
    assert len(board.boots) == 2, "no crash loop: power-on and the one boot of the test"


def test_sixteen_imu_streams_on_the_esp32_profile_fall_back_to_the_defaults(vboard_factory):
    """(~258 KB on the 64-bit VM; an RP2040's 192k, the rp2040 profile's 376k, holds them.)"""
    board = vboard_factory(profile="esp32")
    r = boot(board, {"streams": imu_streams(16)})
    try:
        expect_defaults(r, board, "bytes of heap")
    finally:
        r.close()


def test_a_memory_error_past_the_budget_falls_back_to_the_defaults(vboard_factory):
    """The budget is an estimate: should it ever let through a config that does not fit, the
    MemoryError while building the streams still ends in the defaults (budget stubbed here)."""
    board = vboard_factory(profile="esp32")
    install(board.fs, {"streams": imu_streams(16)})
    (board.fs / "budget.mpy").unlink()
    (board.fs / "budget.py").write_text(
        "def check(*a):\n    return None\n\n\ndef word_size():\n    return 8\n\n\n"
        "def shim_in_heap():\n    return True\n")
    r = Reader(board.port)
    try:
        board.power_cycle()
        board.wait_boot(2)
        expect_defaults(r, board, "do not fit the heap")
    finally:
        r.close()


def used_after_boot(board, cfg, pool):
    """Heap in use once the app is built and has run (the summary's free_heap, after gc.collect)."""
    r = boot(board, dict(cfg, max_iterations=200, watchdog=False))
    try:
        r.wait(lambda: re.search(r"PAGERLESS-SUMMARY .*\n", r.text), timeout=60, what="summary")  # the whole line (a wait: a busy host boots slowly)
        summary = json.loads(re.search(r"PAGERLESS-SUMMARY (.*)", r.text).group(1))
        assert not [e for e in r.events() if e.code == wire.EV_CONFIG_FALLBACK]
    finally:
        r.close()
    return pool - summary["free_heap"]


def test_the_budget_is_never_below_the_heap_used_by_1_to_16_streams(vboard_factory, board_exec):
    """Measured with a heap large enough for all of them (the use does not depend on the heap's
    size); mixed kinds and batches as well as IMU streams."""
    board = vboard_factory(heap="640k")
    pool = int(board_exec(board.port, "import gc\ngc.collect()\nprint(gc.mem_free() + gc.mem_alloc())"))
    kinds = ["mpu6050", "bme280", "sht31", "analog"]
    rows = []
    for n in range(1, 17):
        for streams in (imu_streams(n), [dict(s, sensor=kinds[i % 4], period_us=100000, batch=1 + 37 * i % 512)
                                         for i, s in enumerate(imu_streams(n))]):
            cfg = config.validate({"streams": streams})
            used = used_after_boot(board, cfg, pool)
            need = budget.estimate(cfg, BOARD, 8, shim=True)
            rows.append((n, streams[-1]["sensor"], used, need))
            assert need >= used, rows
    print("\n".join("%2d streams (last %s): used %d, estimate %d" % r for r in rows))


FIFO = {"dlpf_cfg": 1, "sample_rate_div": 4}  # the chip samples every 5 ms: the stream's period


def test_the_budget_counts_the_fifo_burst_reader(vboard_factory, board_exec):
    """A stream at its MPU-6050's FIFO period loads burst.py and a Burst (firmware/stream.py); the
    estimate counts them for that stream only, and is never below the heap used."""
    board = vboard_factory(heap="640k")
    pool = int(board_exec(board.port, "import gc\ngc.collect()\nprint(gc.mem_free() + gc.mem_alloc())"))
    rows = []
    for n in (1, 3):
        for settings in ({}, FIFO):
            cfg = config.validate({"streams": [dict(s, settings=settings) for s in imu_streams(n, batch=25)]})
            used = used_after_boot(board, cfg, pool)
            rows.append((n, bool(settings), used, budget.estimate(cfg, BOARD, 8, shim=True)))
    print("\n".join("%d imu streams, fifo %s: used %d, estimate %d" % r for r in rows))
    assert all(need >= used for _, _, used, need in rows), rows
    plain, fifo = rows[0][2], rows[1][2]
    assert rows[1][3] - rows[0][3] >= fifo - plain, "the burst reader's bytes are counted"
