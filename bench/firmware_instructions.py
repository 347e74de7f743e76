"""Firmware CPU per sample as instruction counts: pagerless vs bench/naive_main.py, under callgrind.

Wall time on this shared 2-core machine moves with load; instruction counts do not.  Both
firmwares run on the unix port against the same fake ``machine`` (register images taken from the
simulated chips in host/sensors; ``ADC.read_u16`` is a C function, as on a board) and a fake
clock (``time`` shadowed: 1 us per ``ticks_us`` call, ``sleep_us(n)`` advances it by n), with
every sensor at its minimum period (the firmware_bench config).  Per sample = the difference of
a 2 s and a 1 s run (boot and import cancel out) over the samples between them.  The naive
firmware busy-polls; its polling is taken out (instructions per idle poll from a run where no
sensor is ever due, times its polls), so only the work of its samples is compared.  Its
``gc.mem_alloc`` bookkeeping and stats lines are taken out of its loop too.  Not counted on
either side: the kernel (write syscalls, sleeps) and the I2C bus time a board would wait.

    .venv/bin/python -m bench.firmware_instructions [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from host.paths import ROOT

MP = Path(sys.executable).parent / "micropython"
PERIODS = {"mpu6050": 1000, "bme280": 9800, "sht31": 16000, "analog": 100}

SH_TIME = '"""Fake clock for instruction counting: 1 us per ticks_us call, sleeps advance it, END stops the run."""\nfrom utime import ticks_add, ticks_diff\nfrom array import array\nimport micropython\n\nT = array("i", [0, 0, 1 << 29])  # now_us, ticks_us calls, END\n\n\nclass End(Exception):\n    pass\n\n\n_END = End()\n\n\n@micropython.viper\ndef ticks_us() -> int:\n    p = ptr32(T)\n    v = (p[0] + 1) & 0x3FFFFFFF\n    p[0] = v\n    p[1] = p[1] + 1\n    return v\n\n\ndef ticks_ms():\n    if T[0] > T[2]:\n        raise _END\n    return T[0] // 1000\n\n\n@micropython.viper\ndef sleep_us(n: int):\n    p = ptr32(T)\n    p[0] = (p[0] + n) & 0x3FFFFFFF\n\n\ndef sleep_ms(n):\n    sleep_us(n * 1000)\n\n\ndef ticks_cpu():\n    return T[0]\n\n\ndef time():\n    return 0\n'

SH_MACHINE = '"""Fake machine for instruction counting: register images of the simulated chips, constant ADC."""\nimport micropython\nfrom images import BME, MPU, SHT_STATUS, SHT_MEAS\n\n_IMG = {0x76: bytearray(BME), 0x68: bytearray(MPU)}\n_SHT = 0x44\n\n\n@micropython.viper\ndef _copy(dst, src, off: int, n: int):\n    d = ptr8(dst)\n    s = ptr8(src)\n    i = 0\n    while i < n:\n        d[i] = s[off + i]\n        i += 1\n\n\nclass I2C:\n    def __init__(self, *a, **k):\n        self._sht = SHT_STATUS\n\n    def scan(self):\n        return [0x44, 0x68, 0x76]\n\n    def readfrom_mem_into(self, addr, reg, buf):\n        _copy(buf, _IMG[addr], reg, len(buf))\n\n    def writeto_mem(self, addr, reg, buf):\n        img = _IMG[addr]\n        if not (addr == 0x68 and reg == 0x6B and buf[0] & 0x80):\n            img[reg] = buf[0]\n\n    def writeto(self, addr, buf):\n        if addr == _SHT and len(buf) == 2:\n            self._sht = SHT_STATUS if buf[0] == 0xF3 else SHT_MEAS\n        return 1\n\n    def readfrom_into(self, addr, buf):\n        _copy(buf, self._sht, 0, len(buf))\n\n\nclass Pin:\n    def __init__(self, *a, **k):\n        pass\n\n\nclass ADC:\n    def __init__(self, *a, **k):\n        import utime\n        self.read_u16 = utime.ticks_cpu  # a C call, as a board\'s ADC.read_u16 is\n\n\nPWRON_RESET = 1\ndef reset_cause():\n    return 1\n\ndef reset():\n    raise SystemExit\n'

RUN_OURS = 'import sys, time\nsys.path.append("fw")\nimport json\nimport main, output, config\nfrom hardware import load_board\nSECONDS = int(sys.argv[-1]) if len(sys.argv) > 1 else 1\nboard = load_board("board.json")\ncfg, problems = config.load("config.json", board)\nout = output.Output(open("/dev/null", "wb"), cfg["ring_bytes"], cfg["write_chunk"])\nsampler, health = main.build(board, cfg, problems, out, b"\\x01\\x02\\x03\\x04", 1, open("/dev/null", "rb"))\nsampler.start()\ntime.T[2] = time.T[0] + SECONDS * 1000000\ntry:\n    sampler.run()\nexcept time.End:\n    pass\nn = 0\nfor s in sampler.streams:\n    c = s.counts\n    n += c.frames * s.batch + s.i\n    print(s.info.name, c.frames, c.dropped, c.skipped, c.miss_overrun, c.miss_sensor, c.errors)\nprint("RESULT samples", n, "clock_calls", time.T[1], "locked_passes", sampler.iterations, "overruns", health.overruns, "sleeps", sampler.sleeps)\n'

RUN_NAIVE = 'import sys, time\nSECONDS = int(sys.argv[-1])\ntime.T[2] = time.T[0] + SECONDS * 1000000\ntry:\n    import naive_main\nexcept time.End:\n    pass\nsys.stderr.write("RESULT clock_calls %d\\n" % time.T[1])\n'

_NAIVE_BOOKKEEPING = """            a = gc.mem_alloc()
            if a < last_alloc:
                gc_runs += 1
            else:
                allocated += a - last_alloc
            last_alloc = a
"""
_NAIVE_COUNTING = "    counting = True\n"  # its allocation count (first 2 s): gc.mem_alloc per sample
_FIRST_DUE = "        due[name] = time.ticks_add(time.ticks_us(), s.MIN_PERIOD_US)\n    last_alloc"


def _images() -> str:
    from host.sensors.bme280 import BME280
    from host.sensors.mpu6050 import MPU6050
    from host.sensors.sht31 import SHT31

    t = [100.0]
    clk = lambda: t[0]  # noqa: E731
    b = BME280(0x76, clock=clk)
    t[0] += 1
    b.write(bytes([0xF4, 0x27]))
    t[0] += 1
    img_b = bytearray(256)
    for r in range(0x80, 0x100):
        b.write(bytes([r]))
        img_b[r] = b.read(1)[0]
    m = MPU6050(0x68, clock=clk)
    m.write(bytes([0x6B, 1]))
    t[0] += 1
    img_m = bytearray(128)
    for r in range(128):
        m.write(bytes([r]))
        img_m[r] = m.read(1)[0]
    s = SHT31(0x44, clock=clk)
    t[0] += 1
    s.write(b"\xf3\x2d")
    st = s.read(3)
    s.write(b"\x24\x00")
    t[0] += 1
    meas = s.read(6)
    return "BME = %r\nMPU = %r\nSHT_STATUS = %r\nSHT_MEAS = %r\n" % (bytes(img_b), bytes(img_m), st, meas)


def prepare(d: Path, firmware: Path) -> None:
    (d / "sh").mkdir()
    (d / "sh" / "time.py").write_text(SH_TIME)
    (d / "sh" / "machine.py").write_text(SH_MACHINE)
    (d / "sh" / "images.py").write_text(_images())
    cfg = json.loads((firmware / "config.json").read_text())
    for s in cfg["streams"]:
        s["period_us"] = PERIODS[s["sensor"]]
    cfg.update({"heap_lock": True, "status_period_ms": 1000, "watchdog": False})
    (d / "config.json").write_text(json.dumps(cfg))
    shutil.copy(ROOT / "boards" / "virtual" / "board.json", d / "board.json")
    naive = (ROOT / "bench" / "naive_main.py").read_text()
    naive = naive.replace(_NAIVE_BOOKKEEPING, "").replace(_NAIVE_COUNTING, _NAIVE_COUNTING.replace("True", "False"))
    if "gc.mem_alloc()\n" in naive.split("while True:")[1] and _NAIVE_COUNTING not in (ROOT / "bench" / "naive_main.py").read_text():
        raise SystemExit("bench/naive_main.py changed: its loop calls gc.mem_alloc(); update the bench")
    (d / "naive_main.py").write_text(naive)
    if _FIRST_DUE not in naive:
        raise SystemExit("bench/naive_main.py changed: update _FIRST_DUE")
    (d / "naive_idle_main.py").write_text(naive.replace(_FIRST_DUE, _FIRST_DUE.replace("s.MIN_PERIOD_US", "1 << 28")))
    (d / "run_ours.py").write_text(RUN_OURS)
    (d / "run_naive.py").write_text(RUN_NAIVE)
    (d / "run_idle.py").write_text(RUN_NAIVE.replace("import naive_main", "import naive_idle_main"))


def count(d: Path, firmware: Path, which: str, seconds: int) -> tuple[int, int, int]:
    """(instructions, samples, ticks_us calls) of one run under callgrind."""
    env = {"MICROPYPATH": "%s:%s:%s:.frozen" % (d / "sh", firmware, d), "PATH": "/usr/bin:/bin"}
    p = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", str(MP),
                        "-X", "heapsize=376k", "run_%s.py" % which, str(seconds)],
                       cwd=d, env=env, capture_output=True, text=True, timeout=900)
    ir = int(re.search(r"Collected : (\d+)", p.stderr).group(1))
    if which == "ours":
        m = re.search(r"samples (\d+) clock_calls (\d+)", p.stdout)
        if not m:
            raise SystemExit("ours failed:\n" + p.stdout[-2000:] + p.stderr[-2000:])
        return ir, int(m.group(1)), int(m.group(2))
    calls = int(re.search(r"clock_calls (\d+)", p.stderr).group(1))
    return ir, p.stdout.count('"s":'), calls


def one_round(d: Path, firmware: Path) -> dict:
    o1, o2 = count(d, firmware, "ours", 1), count(d, firmware, "ours", 2)
    n1, n2 = count(d, firmware, "naive", 1), count(d, firmware, "naive", 2)
    i1, i2 = count(d, firmware, "idle", 1), count(d, firmware, "idle", 2)
    ours = (o2[0] - o1[0]) / (o2[1] - o1[1])
    per_poll = (i2[0] - i1[0]) / (i2[2] - i1[2])
    ds = n2[1] - n1[1]
    polls = (n2[2] - n1[2]) - 4 * ds  # 5 ticks_us calls per sample: 1 is its poll, 4 its work
    naive = ((n2[0] - n1[0]) - polls * per_poll) / ds
    naive_all = (n2[0] - n1[0]) / ds
    return {"ours": ours, "naive": naive, "naive_with_polling": naive_all, "per_poll": per_poll,
            "ours_samples_per_s": o2[1] - o1[1], "naive_samples_per_s": ds}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--firmware", type=Path, default=ROOT / "firmware")
    ap.add_argument("--target", type=float, default=20.0)
    a = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        prepare(d, a.firmware)
        for _ in range(a.runs):  # interleaved: ours, naive, idle in each round
            rows.append(one_round(d, a.firmware))
            print(json.dumps(rows[-1]), flush=True)
    def mmm(k):
        v = sorted(r[k] for r in rows)
        return "%.0f / %.0f / %.0f" % (v[0], statistics.median(v), v[-1])
    ratio = statistics.median(r["naive"] for r in rows) / statistics.median(r["ours"] for r in rows)
    print("instructions per sample, min / median / max of %d runs:" % len(rows))
    print("  pagerless: %s" % mmm("ours"))
    print("  naive (work, polling taken out): %s" % mmm("naive"))
    print("  naive (with its polling): %s" % mmm("naive_with_polling"))
    ok = ratio >= a.target
    print("ratio of medians (naive work / ours): %.2fx, target >= %gx: %s" % (ratio, a.target, "PASS" if ok else "MISS"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
