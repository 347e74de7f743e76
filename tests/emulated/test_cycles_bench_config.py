"""The cycle bench's like-for-like load, checked without a UF2: the naive firmware it installs
samples the same streams at our config's periods with the same driver settings, and without its
per-sample gc.mem_alloc() (a heap walk on rp2), and our config is the shipped one's streams."""
from __future__ import annotations

import ast
import json

import pytest

from bench import emulated_cycles_bench as ecb


def test_naive_gets_our_periods_and_settings():
    cfg = ecb._config(ecb.ROOT / "firmware")
    shipped = json.loads((ecb.ROOT / "firmware" / "config.json").read_text())
    assert [(s["name"], s["period_us"], s["batch"]) for s in cfg["streams"]] == \
        [(s["name"], s["period_us"], s["batch"]) for s in shipped["streams"]]
    assert cfg["heap_lock"] is True and cfg["max_iterations"] == ecb.PASSES["shipped"]
    text = ecb.naive_main_for(ecb.ROOT, cfg).decode()
    ns = {n.targets[0].id: ast.literal_eval(n.value) for n in ast.parse(text).body
          if isinstance(n, ast.Assign) and n.targets[0].id in ("PERIOD_US", "SETTINGS")}
    assert ns["PERIOD_US"] == {s["name"]: s["period_us"] for s in cfg["streams"]}
    assert ns["SETTINGS"]["imu"]["sample_rate_div"] == 4
    assert "s.MIN_PERIOD_US" not in text and "    counting = True\n" not in text
    assert '("imu", MPU6050(i2c, **SETTINGS["imu"]))' in text


def test_floor_gets_the_same_schedule_and_reads_the_imu_by_burst():
    """bench/floor_main.py (the bound on any firmware's ratio) runs our config's schedule."""
    cfg = ecb._config(ecb.ROOT / "firmware")
    plan = ecb.floor_plan(cfg)
    assert plan["period_us"] == {s["name"]: s["period_us"] for s in cfg["streams"]}
    assert plan["settings"]["imu"]["sample_rate_div"] == 4
    assert plan["imu_batch"] == next(s["batch"] for s in cfg["streams"] if s["name"] == "imu")
    text = (ecb.ROOT / "bench" / "floor_main.py").read_text()
    ast.parse(text)
    assert "fifo_read_into" in text and "read_into(buf)" not in text  # one burst a batch, no register reads
    bad = dict(cfg, streams=cfg["streams"][:3])
    with pytest.raises(SystemExit, match=r"the config has \['env', 'imu', 'rh'\]"):
        ecb.floor_plan(bad)


def test_adc_load_streams_a0_from_the_ring_for_ours_and_the_floor_and_per_sample_for_the_naive():
    """The adc load: ours and the floor read a0's DMA ring at ADC_SAMPLE_US; the naive, a first
    prototype, reads read_u16 at the same period (no sample_us: it has no ring)."""
    cfg = ecb._config(ecb.ROOT / "firmware", "adc")
    a0 = next(s for s in cfg["streams"] if s["name"] == "a0")
    assert (a0["period_us"], a0["batch"], a0["settings"]) == \
        (ecb.ADC_SAMPLE_US, ecb.ADC_BATCH, {"sample_us": ecb.ADC_SAMPLE_US})
    assert cfg["max_iterations"] == ecb.PASSES["adc"]
    text = ecb.naive_main_for(ecb.ROOT, cfg).decode()
    ns = {n.targets[0].id: ast.literal_eval(n.value) for n in ast.parse(text).body
          if isinstance(n, ast.Assign) and n.targets[0].id in ("PERIOD_US", "SETTINGS")}
    assert ns["PERIOD_US"]["a0"] == ecb.ADC_SAMPLE_US and ns["SETTINGS"]["a0"] == {}
    plan = ecb.floor_plan(cfg)
    assert plan["settings"]["a0"] == {"sample_us": ecb.ADC_SAMPLE_US} and plan["a0_batch"] == ecb.ADC_BATCH
    assert plan["a0_ring"] == {"channel": 0, "ring_bytes": 8192}  # boards/emulated_rp2040/board.json
