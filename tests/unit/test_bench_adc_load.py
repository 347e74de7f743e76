"""The adc load of the unix-port benches, checked without running them: bench/firmware_bench.py
and bench/firmware_instructions.py give ours a0 at 20 kHz from the ADC's DMA ring and the naive
read_u16 at the same period (its other streams and settings unchanged), and the callgrind bench's
idle variant of the naive (its polling cost) still finds its first-due line to neutralise."""
from __future__ import annotations

import ast
import shutil

import pytest

from bench import firmware_bench as fb
from bench import firmware_instructions as fi
from bench.emulated_cycles_bench import naive_main_for


def _naive_names(text: str) -> dict:
    return {n.targets[0].id: ast.literal_eval(n.value) for n in ast.parse(text).body
            if isinstance(n, ast.Assign) and n.targets[0].id in ("PERIOD_US", "SETTINGS")}


@pytest.mark.parametrize("load", ["shipped", "adc"])
def test_firmware_bench_loads(load):
    cfg = fb.config_at(load)
    a0 = next(s for s in cfg["streams"] if s["name"] == "a0")
    if load == "adc":
        assert (a0["period_us"], a0["batch"], a0["settings"]) == (50, 200, {"sample_us": 50})
    else:
        assert a0["period_us"] == fb.MIN_PERIODS["analog"] and "sample_us" not in a0.get("settings", {})
    ns = _naive_names(naive_main_for(fb.ROOT, cfg, count_alloc=True).decode())
    assert ns["PERIOD_US"] == {s["name"]: s["period_us"] for s in cfg["streams"]}
    assert ns["SETTINGS"]["a0"] == {}  # a first prototype has no ring


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None, reason="no C compiler")
def test_callgrind_bench_prepares_both_loads(tmp_path):
    for load in fi.LOADS:
        d = tmp_path / load
        fi.prepare(d, fi.ROOT / "firmware", load)
        naive = (d / "naive_main.py").read_text()
        idle = (d / "naive_idle_main.py").read_text()
        assert _naive_names(naive)["PERIOD_US"]["a0"] == (50 if load == "adc" else 100)
        assert "gc.mem_alloc()\n            if a < last_alloc" not in naive and "    counting = True\n" not in naive
        assert "1 << 28" in idle and idle.count("PERIOD_US[name]") == naive.count("PERIOD_US[name]") - 1
        assert "class DMA" in (d / "sh" / "rp2.py").read_text()
