"""firmware/config.py under CPython: the shipped config validates, bad ones fall back with a reason."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

import firmware.sensors

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("pagerless_firmware_config", ROOT / "firmware" / "config.py")
config = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(config)


@pytest.fixture(autouse=True)
def _device_sensors_package(monkeypatch):
    """On the board the drivers' package is the top-level ``sensors``; here it is firmware.sensors."""
    monkeypatch.setitem(sys.modules, "sensors", firmware.sensors)


def test_firmware_shipped_config_streams_all_four_sensors():
    cfg = config.validate(json.loads((ROOT / "firmware" / "config.json").read_text()))
    assert [s["sensor"] for s in cfg["streams"]] == ["mpu6050", "bme280", "sht31", "analog"]
    rates = {s["sensor"]: 1_000_000 // s["period_us"] for s in cfg["streams"]}
    assert rates == {"mpu6050": 200, "bme280": 10, "sht31": 10, "analog": 100}
    assert cfg["heap_lock"] is False and cfg["max_iterations"] == 0


@pytest.mark.parametrize("raw, words", [
    ([], "top level"),
    ({"streams": []}, "streams"),
    ({"streams": [{"sensor": "sht31", "period_us": 0}]}, "period_us"),
    ({"streams": [{"sensor": "sht31", "period_us": 1000, "batch": 10_000}]}, "batch"),
    ({"ring_bytes": 10}, "ring_bytes"),
    ({"heap_lock": 1}, "heap_lock"),
    ({"watchdog": "sometimes"}, "watchdog"),
])
def test_firmware_config_rejects(raw, words):
    with pytest.raises(ValueError, match=words):
        config.validate(raw)


def test_firmware_config_load_falls_back(tmp_path):
    board = {"sensors": [{"kind": "sht31"}, {"kind": "analog", "adc": "a0"}]}
    cfg, why = config.load(str(tmp_path / "none.json"), board)
    assert "no " in why and [s["sensor"] for s in cfg["streams"]] == ["sht31", "analog"]
    p = tmp_path / "c.json"
    p.write_text("{")
    assert "not valid JSON" in config.load(str(p))[1]
    p.write_text('{"streams": [{"sensor": "x"}]}')
    cfg, why = config.load(str(p))
    assert "invalid" in why and len(cfg["streams"]) == 4
    p.write_text('{"status_period_ms": 500}')
    cfg, why = config.load(str(p))
    assert why is None and cfg["status_period_ms"] == 500


def test_firmware_config_check_board_names_an_unwired_sensor():
    from firmware import config as pkg_config

    board = {"sensors": [{"kind": "sht31"}, {"kind": "analog", "adc": "a0"}]}
    ok = pkg_config.validate({"streams": [{"sensor": "a0", "period_us": 10000}, {"sensor": "sht31", "period_us": 10**5}]})
    pkg_config.check_board(ok, board)
    bad = pkg_config.validate({"streams": [{"sensor": "bme280", "period_us": 100000}]})
    with pytest.raises(ValueError, match="'bme280' is not wired"):
        pkg_config.check_board(bad, board)


def test_firmware_budget_grows_with_streams_batches_and_ring():
    from firmware import budget
    from firmware import config as pkg_config

    board = json.loads((ROOT / "boards" / "virtual" / "board.json").read_text())

    def need(n, batch=10, ring=8192, word=8):
        cfg = pkg_config.validate({"ring_bytes": ring, "streams": [
            {"name": f"s{i}", "sensor": "mpu6050", "period_us": 5000, "batch": batch} for i in range(n)]})
        return budget.estimate(cfg, board, word)

    assert need(1) < need(2) < need(16) and need(4, 20) < need(4, 200) and need(2) < need(2, ring=65536)
    assert need(8, word=4) < need(8)
    assert budget.heap_bytes("192k") == 196608 and budget.heap_bytes("1m") == 1 << 20
    assert budget.check(pkg_config.validate({"streams": [
        {"name": f"s{i}", "sensor": "mpu6050", "period_us": 5000} for i in range(16)]}), board, 194304, 8, True)
