"""Firmware CPU per sample as instruction counts: pagerless vs bench/naive_main.py, under callgrind.

Wall time on this shared 2-core machine moves with load; instruction counts do not.  Both
firmwares run on the unix port against the same fake ``machine`` (register images taken from the
simulated chips in host/sensors, and an MPU-6050 FIFO that fills at 1 kHz of the fake clock;
``ADC.read_u16`` is a C function, as on a board) and the same fake clock, with every sensor at
its minimum period (the firmware_bench config).  The clock is the port's own C ``time``
functions over libc calls that a small preloaded library (``FAKECLOCK_C``, built with the
system's ``cc``) answers: ``clock_gettime`` advances 1 us per call, ``usleep(n)`` n us, and at
the run's end it raises SIGINT (a KeyboardInterrupt in the VM).  So a clock call costs what it
costs on a board (a C call), not a Python function's 600-1,500 instructions as the shadowed
``time`` module of the first version did (58 % of ours was that clock).  Per sample = the
difference of a 2 s and a 1 s run (boot and import cancel out) over the samples between them.
The naive firmware busy-polls; its polling is taken out (instructions per idle poll from a run
where no sensor is ever due, times its polls), so only the work of its samples is compared.  Its
``gc.mem_alloc`` bookkeeping and stats lines are taken out of its loop too.  Counted on both
sides alike: the fake I2C bus (bytecode, a board's is C).  Not counted on either side: the
kernel (write syscalls, sleeps) and the I2C bus time a board would wait.

Loads (``--load``): "shipped" is the above; "adc" is the same with a0 at 20 kHz (a0_from_ring,
as bench/firmware_bench.py and bench/emulated_cycles_bench.py): ours reads 200-sample frames from
the ADC's DMA ring (firmware/adcring.py) over a fake ``rp2.DMA`` whose paced channel's count
follows the fake clock (one viper call a look, as cheap as a register read; the ring's bytes are
the constant ADC's), the naive calls read_u16 every 50 us.

    .venv/bin/python -m bench.firmware_instructions [--runs 3] [--load shipped|adc|both]
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

from bench.emulated_cycles_bench import naive_main_for
from bench.firmware_bench import config_at
from host.paths import ROOT

MP = Path(sys.executable).parent / "micropython"
LOADS = ("shipped", "adc")

FAKECLOCK_C = r"""
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
/* The bench's clock: every clock read advances it 1 us, a sleep by its length; past
   FAKECLOCK_END_US it raises SIGINT once.  FAKECLOCK_REPORT: counts on stderr at exit. */
static long long now_us = 1000000, end_us = -1, calls, sleeps;
static int fired;
static void tick(long long d) {
    now_us += d;
    if (end_us < 0) { const char *e = getenv("FAKECLOCK_END_US"); end_us = e ? atoll(e) : 0; }
    if (end_us && !fired && now_us > end_us) { fired = 1; raise(SIGINT); }
}
int clock_gettime(clockid_t c, struct timespec *ts) {
    (void)c; calls++; tick(1);
    ts->tv_sec = now_us / 1000000; ts->tv_nsec = (now_us % 1000000) * 1000; return 0;
}
int gettimeofday(struct timeval *tv, void *tz) {
    (void)tz; tv->tv_sec = now_us / 1000000; tv->tv_usec = now_us % 1000000; return 0;
}
int usleep(useconds_t u) { sleeps++; tick(u); return 0; }
int nanosleep(const struct timespec *r, struct timespec *rem) {
    (void)rem; sleeps++; tick(r->tv_sec * 1000000LL + r->tv_nsec / 1000); return 0;
}
__attribute__((destructor)) static void report(void) {
    if (getenv("FAKECLOCK_REPORT")) fprintf(stderr, "FAKECLOCK calls %lld sleeps %lld now %lld\n", calls, sleeps, now_us);
}
"""
CLOCK_START_US = 1_000_000
BOOT_SLACK_US = 1_000_000  # boot ends well before (RUN_OURS checks); the same in every run

SH_MACHINE = r'''"""Fake machine for instruction counting: register images of the simulated chips, an MPU-6050
FIFO that fills at 1 kHz of the (fake) clock, constant ADC.  Allocation-free (the firmware runs
under heap_lock); few locals per method (a bytecode frame over 11 words goes to the heap)."""
import micropython
import utime
from array import array
from images import BME, MPU, SHT_STATUS, SHT_MEAS

_IMG = {0x76: bytearray(BME), 0x68: bytearray(MPU)}
_SHT = 0x44
_F = array("i", [0, 0])  # FIFO: restart time (us, 30 bits), samples taken out since


@micropython.viper
def _copy(dst, src, off: int, n: int):
    d = ptr8(dst)
    s = ptr8(src)
    i = 0
    while i < n:
        d[i] = s[off + i]
        i += 1


@micropython.viper
def _fifo_count(buf, now: int):
    f = ptr32(_F)
    n = (((now & 0x3FFFFFFF) - f[0]) & 0x3FFFFFFF) // 1000 - f[1]
    c = n * 14
    if c > 1024:
        c = 1024
    b = ptr8(buf)
    b[0] = c >> 8
    b[1] = c & 0xFF


@micropython.viper
def _fifo_read(buf, img):
    d = ptr8(buf)
    s = ptr8(img)
    n = int(len(buf))
    i = 0
    k = 0
    while i < n:
        d[i] = s[0x3B + k]
        i += 1
        k += 1
        if k == 14:
            k = 0
    f = ptr32(_F)
    f[1] = f[1] + n // 14


class I2C:
    def __init__(self, *a, **k):
        self._sht = SHT_STATUS

    def scan(self):
        return [0x44, 0x68, 0x76]

    def readfrom_mem_into(self, addr, reg, buf):
        if reg == 0x74 and addr == 0x68:
            _fifo_read(buf, _IMG[0x68])
        elif reg == 0x72 and addr == 0x68:
            _fifo_count(buf, utime.ticks_us())
        else:
            _copy(buf, _IMG[addr], reg, len(buf))

    def writeto_mem(self, addr, reg, buf):
        img = _IMG[addr]
        if addr == 0x68 and reg == 0x6A and buf[0] & 0x04:
            _F[0] = utime.ticks_us() & 0x3FFFFFFF
            _F[1] = 0
        if not (addr == 0x68 and reg == 0x6B and buf[0] & 0x80):
            img[reg] = buf[0]

    def writeto(self, addr, buf):
        if addr == _SHT and len(buf) == 2:
            self._sht = SHT_STATUS if buf[0] == 0xF3 else SHT_MEAS
        return 1

    def readfrom_into(self, addr, buf):
        _copy(buf, self._sht, 0, len(buf))


class Pin:
    def __init__(self, *a, **k):
        pass


class ADC:
    def __init__(self, *a, **k):
        self.read_u16 = utime.ticks_cpu  # a C call, as a board's ADC.read_u16 is


from rp2 import Mem  # noqa: E402

mem32 = Mem()


PWRON_RESET = 1


def reset_cause():
    return 1


def reset():
    raise SystemExit
'''

SH_RP2 = r'''"""Fake rp2.DMA and ADC registers for instruction counting: the channel paced by DREQ_ADC
counts conversions from the fake clock at DIV's period (one viper call a look); the ring's bytes
are left as they are (the fake ADC is constant).  Allocation-free, as the firmware runs locked."""
import micropython
import utime
from array import array

_T = array("i", [0, 100])  # the run's start (us, 30 bits), the conversion period (us)


@micropython.viper
def _done(now: int) -> int:
    t = ptr32(_T)
    return (((now & 0x3FFFFFFF) - t[0]) & 0x3FFFFFFF) // t[1]


class Mem:
    def __getitem__(self, a):
        return 0

    def __setitem__(self, a, v):
        if a == 0x4004C010:  # DIV: 48 MHz / (INT + 1)
            _T[1] = ((v >> 8) + 1) // 48


class DMA:
    n = 0

    def __init__(self):
        self.channel = DMA.n
        DMA.n += 1
        self._count = 0
        self._paced = False

    def pack_ctrl(self, **kw):
        return kw.get("treq_sel", 0x3F)

    def config(self, read=None, write=None, count=None, ctrl=None, trigger=False):
        if ctrl == 36:
            self._paced = True
            self._count = count
            _T[0] = utime.ticks_us() & 0x3FFFFFFF

    @property
    def count(self):
        return self._count - _done(utime.ticks_us()) if self._paced else 0

    def active(self, v=None):
        if v is not None and not v:
            self._paced = False
        return self._paced

    def close(self):
        pass
'''

RUN_OURS = r"""import sys, time
sys.path.append("fw")
import json
import main, output, config
from hardware import load_board
board = load_board("board.json")
cfg, problems = config.load("config.json", board)
out = output.Output(open("/dev/null", "wb"), cfg["ring_bytes"], cfg["write_chunk"])
sampler, health = main.build(board, cfg, problems, out, b"\x01\x02\x03\x04", 1, open("/dev/null", "rb"))
sampler.start()
print("BOOTED_AT_US", time.ticks_us())
try:
    sampler.run()
except KeyboardInterrupt:
    pass
n = 0
for s in sampler.streams:
    c = s.counts
    n += c.frames * s.batch + s.i
    print(s.info.name, "burst" if getattr(s, "burst", False) else "per-sample", c.frames, c.dropped, c.skipped, c.miss_overrun, c.miss_sensor, c.errors)
print("RESULT samples", n, "locked_passes", sampler.iterations, "overruns", health.overruns, "sleeps", sampler.sleeps, "locked", sampler.ran_locked)
"""

RUN_NAIVE = r"""import sys
try:
    import naive_main
except KeyboardInterrupt:
    pass
"""

_NAIVE_BOOKKEEPING = """            a = gc.mem_alloc()
            if a < last_alloc:
                gc_runs += 1
            else:
                allocated += a - last_alloc
            last_alloc = a
"""
_NAIVE_COUNTING = "    counting = True\n"  # its allocation count (first 2 s): gc.mem_alloc per sample
_FIRST_DUE = "        due[name] = time.ticks_add(time.ticks_us(), PERIOD_US[name])\n    last_alloc"


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


def _config(firmware: Path, load: str) -> dict:
    cfg = config_at(load, firmware=firmware)  # firmware_bench's schedule
    cfg.update({"heap_lock": True, "status_period_ms": 1000, "watchdog": False})
    return cfg


def prepare(d: Path, firmware: Path, load: str = "shipped") -> None:
    (d / "sh").mkdir(parents=True)
    (d / "fakeclock.c").write_text(FAKECLOCK_C)
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise SystemExit("firmware_instructions: needs a C compiler (cc) for its fake clock")
    subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", str(d / "fakeclock.so"), str(d / "fakeclock.c")], check=True)
    (d / "sh" / "machine.py").write_text(SH_MACHINE)
    (d / "sh" / "rp2.py").write_text(SH_RP2)
    (d / "sh" / "images.py").write_text(_images())
    cfg = _config(firmware, load)
    (d / "config.json").write_text(json.dumps(cfg))
    shutil.copy(ROOT / "boards" / "virtual" / "board.json", d / "board.json")
    text = (ROOT / "bench" / "naive_main.py").read_text()
    if "gc.mem_alloc()\n" in text.split("while True:")[1] and _NAIVE_COUNTING not in text:
        raise SystemExit("bench/naive_main.py changed: its loop calls gc.mem_alloc(); update the bench")
    # each sensor at its stream's period (a0's read_u16 every 50 us at the adc load)
    naive = naive_main_for(ROOT, cfg, count_alloc=True).decode()
    naive = naive.replace(_NAIVE_BOOKKEEPING, "").replace(_NAIVE_COUNTING, _NAIVE_COUNTING.replace("True", "False"))
    (d / "naive_main.py").write_text(naive)
    if _FIRST_DUE not in naive:
        raise SystemExit("bench/naive_main.py changed: update _FIRST_DUE")
    (d / "naive_idle_main.py").write_text(naive.replace(_FIRST_DUE, _FIRST_DUE.replace("PERIOD_US[name]", "1 << 28")))
    (d / "run_ours.py").write_text(RUN_OURS)
    (d / "run_naive.py").write_text(RUN_NAIVE)
    (d / "run_idle.py").write_text(RUN_NAIVE.replace("import naive_main", "import naive_idle_main"))


def count(d: Path, firmware: Path, which: str, seconds: int) -> tuple[int, int, int]:
    """(instructions, samples, clock reads) of one run under callgrind."""
    env = {"MICROPYPATH": "%s:%s:%s:.frozen" % (d / "sh", firmware, d), "PATH": "/usr/bin:/bin",
           "LD_PRELOAD": str(d / "fakeclock.so"), "FAKECLOCK_REPORT": "1",
           "FAKECLOCK_END_US": str(CLOCK_START_US + BOOT_SLACK_US + seconds * 1_000_000)}
    p = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", str(MP),
                        "-X", "heapsize=376k", "run_%s.py" % which],
                       cwd=d, env=env, capture_output=True, text=True, timeout=900)
    ir = int(re.search(r"Collected : (\d+)", p.stderr).group(1))
    calls = int(re.search(r"FAKECLOCK calls (\d+)", p.stderr).group(1))
    if which == "ours":
        m = re.search(r"samples (\d+) .* locked True", p.stdout)
        boot = re.search(r"BOOTED_AT_US (\d+)", p.stdout)
        if not m or not boot:
            raise SystemExit("ours failed:\n" + p.stdout[-2000:] + p.stderr[-2000:])
        if int(boot.group(1)) & 0x3FFFFFFF >= (CLOCK_START_US + BOOT_SLACK_US) & 0x3FFFFFFF:
            raise SystemExit("ours booted after the slack (%s us): raise BOOT_SLACK_US" % boot.group(1))
        return ir, int(m.group(1)), calls
    return ir, p.stdout.count('"s":'), calls


def one_round(d: Path, firmware: Path) -> dict:
    o1, o2 = count(d, firmware, "ours", 1), count(d, firmware, "ours", 2)
    n1, n2 = count(d, firmware, "naive", 1), count(d, firmware, "naive", 2)
    i1, i2 = count(d, firmware, "idle", 1), count(d, firmware, "idle", 2)
    ours = (o2[0] - o1[0]) / (o2[1] - o1[1])
    per_poll = (i2[0] - i1[0]) / (i2[2] - i1[2])
    ds = n2[1] - n1[1]
    # clock reads: 5 per poll pass when nothing is due (4 ticks_us + 1 ticks_ms), 4 more per sample
    polls = ((n2[2] - n1[2]) - 4 * ds) / 5
    per_poll *= 5
    naive = ((n2[0] - n1[0]) - polls * per_poll) / ds
    naive_all = (n2[0] - n1[0]) / ds
    return {"ours": ours, "naive": naive, "naive_with_polling": naive_all, "per_poll": per_poll,
            "ours_samples_per_s": o2[1] - o1[1], "naive_samples_per_s": ds}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--firmware", type=Path, default=ROOT / "firmware")
    ap.add_argument("--target", type=float, default=20.0)
    ap.add_argument("--load", choices=("both", *LOADS), default="both",
                    help="shipped: the shipped streams at their minimum periods; adc: the same with a0 at "
                         "20 kHz from the ADC's DMA ring (default both)")
    a = ap.parse_args(argv)
    loads = LOADS if a.load == "both" else (a.load,)
    rows: dict[str, list[dict]] = {load: [] for load in loads}
    with tempfile.TemporaryDirectory() as tmp:
        for load in loads:
            prepare(Path(tmp) / load, a.firmware, load)
        for _ in range(a.runs):  # interleaved: ours, naive, idle in each round, each load in turn
            for load in loads:
                rows[load].append(one_round(Path(tmp) / load, a.firmware))
                print(load, json.dumps(rows[load][-1]), flush=True)
    missed = []
    for load in loads:
        r = rows[load]

        def mmm(k):
            v = sorted(x[k] for x in r)
            return "%.0f / %.0f / %.0f" % (v[0], statistics.median(v), v[-1])
        ratio = statistics.median(x["naive"] for x in r) / statistics.median(x["ours"] for x in r)
        print("load %s: instructions per sample, min / median / max of %d runs:" % (load, len(r)))
        print("  pagerless: %s (samples/s %s)" % (mmm("ours"), mmm("ours_samples_per_s")))
        print("  naive (work, polling taken out): %s (samples/s %s)" % (mmm("naive"), mmm("naive_samples_per_s")))
        print("  naive (with its polling): %s" % mmm("naive_with_polling"))
        ok = ratio >= a.target
        if not ok:
            missed.append(load)
        print("target: load %s: naive work / ours instructions per sample >= %gx: median %.2fx  %s"
              % (load, a.target, ratio, "PASS" if ok else "MISS"))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
