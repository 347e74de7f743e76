"""What every bench shares: interleaved A/B runs, min/median/max, the ratio of medians, targets.

A bench that times ours and its baseline one after the other gives each a different machine (the
load moves under it), so a ratio of two such runs says as much about the load as about the code.
``interleave`` alternates them in one process tree (every run once per round: A, B, then B, A or
A, B as a seeded shuffle orders later rounds), ``Spread`` keeps every repeat,
the ratio is of medians, and a ``Targets`` list decides PASS or MISS on the median and gives the
exit code (non-zero on any miss), so ``python3 dev.py bench`` is a check that can fail.

Before every run, ``interleave`` collects the garbage of the previous one and freezes what the bench
holds (its streams and the results kept so far, ``gc.freeze``), so no run pays for collecting the
other side's objects or the bench's own bookkeeping.  ``Clock`` times a section in wall time and
in the CPU time of the calling thread: on a shared machine a CPU-bound loop's wall time is mostly
the share of a core the scheduler gave it, so the CPU figure is the code's cost and the wall one
says how busy the machine was.
"""
from __future__ import annotations

import gc
import os
import pickle
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, TypeVar

T = TypeVar("T")


def interleave(pairs: int, *runs: Callable[[], T]) -> list[list[T]]:
    """``pairs`` rounds of every run in turn (A, B, A, B, ... or A, B, C, B, C, A, ...), so each sees
    the same machine as the others; returns each run's results in order.  The first round runs them
    in the order given, later rounds in a seeded shuffle, so no run always follows the same one
    (a run that frees a lot changes what the next one's allocations cost)."""
    out: list[list[T]] = [[] for _ in runs]
    order = list(range(len(runs)))
    shuffle = random.Random(14).shuffle
    for r in range(pairs):
        for i in order:
            gc.collect()
            gc.freeze()
            out[i].append(runs[i]())
        shuffle(order)
    return out


def forked(run: Callable[[], T], warmup: bool = True) -> Callable[[], T]:
    """`run` in a child forked from this process, its result pickled back: every call starts from
    the same process state (the parent never runs the timed code), so no run's figure depends on
    what the run before it left in the allocator (a parser that freed 100,000 message objects made
    the next run's 700,000 small allocations ~25 % slower in one process).  With `warmup` the child
    runs it once untimed first and keeps the second result: the steady state of a process that has
    been decoding for a while, not the page faults of a fresh one (both sides alike)."""

    def call() -> T:
        rfd, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: run, send (ok, result), never return into the parent's code
            os.close(rfd)
            try:
                try:
                    if warmup:
                        run()
                        gc.collect()
                    msg = pickle.dumps((True, run()), pickle.HIGHEST_PROTOCOL)
                except BaseException as exc:  # noqa: BLE001 - handed to the parent, which raises it
                    msg = pickle.dumps((False, exc), pickle.HIGHEST_PROTOCOL)
                with os.fdopen(wfd, "wb") as w:
                    w.write(msg)
            finally:
                os._exit(0)
        os.close(wfd)
        with os.fdopen(rfd, "rb") as r:
            data = r.read()
        os.waitpid(pid, 0)
        if not data:
            raise RuntimeError("forked bench run died without a result")
        ok, value = pickle.loads(data)
        if not ok:
            raise value
        return value

    return call


class Clock:
    """Wall and thread-CPU seconds of one timed section: ``c = Clock()`` ... ``c.stop()``."""

    __slots__ = ("wall", "cpu")

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.thread_time()

    def stop(self) -> Clock:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.thread_time() - self.cpu
        return self


@dataclass
class Spread:
    """Every repeat of one figure; printed as min / median / max."""

    values: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def lo(self) -> float:
        return min(self.values)

    @property
    def hi(self) -> float:
        return max(self.values)

    def show(self, fmt: str = "{:,.2f}") -> str:
        return f"{fmt.format(self.lo)} / {fmt.format(self.median)} / {fmt.format(self.hi)}"


def spread(values) -> Spread:
    return Spread([float(v) for v in values])


def ratio(a: Spread, b: Spread) -> float:
    """Ratio of the medians (a / b); inf when b's median is 0 and a's is not."""
    if b.median == 0:
        return 0.0 if a.median == 0 else float("inf")
    return a.median / b.median


def load() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "load average n/a"
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def header(title: str) -> None:
    print(f"{title}; python {sys.version.split()[0]}; {load()}", flush=True)


def table(rows: list[tuple[str, Spread, str]], fmt: str = "{:,.2f}", width: int = 52) -> None:
    """Rows of (label, spread, unit) as 'label  min / median / max unit'."""
    print(f"{'measure':<{width}}  min / median / max")
    for label, s, unit in rows:
        print(f"{label:<{width}}  {s.show(fmt)} {unit}".rstrip(), flush=True)


@dataclass
class Targets:
    """Targets checked on medians; ``exit_code()`` is 1 when any missed."""

    results: list[tuple[str, bool]] = field(default_factory=list)

    def check(self, what: str, value: float, op: str, limit: float, unit: str = "", fmt: str = "{:,.2f}") -> bool:
        ok = value >= limit if op == ">=" else value <= limit
        self.results.append((what, ok))
        by = ""
        if not ok and limit:
            by = f" (short by {abs(value - limit) / abs(limit) * 100:.1f}% of the target)"
        print(f"target: {what} {op} {fmt.format(limit)}{unit}: median {fmt.format(value)}{unit}  "
              f"{'PASS' if ok else 'MISS'}{by}", flush=True)
        return ok

    def fail(self, what: str, why: str) -> None:
        """A check that is not a number (counts that must match, a verdict): a MISS with its reason."""
        self.results.append((what, False))
        print(f"target: {what}: {why}  MISS", flush=True)

    def exit_code(self) -> int:
        missed = [w for w, ok in self.results if not ok]
        print(f"{len(self.results) - len(missed)} of {len(self.results)} targets met"
              + (": missed " + "; ".join(missed) if missed else ""), flush=True)
        return 1 if missed else 0
