"""Piped (plain) progress as a CI log reads it: lines when they happen, "done" only when done."""
from __future__ import annotations

import io

from host.flashing import uf2
from host.flashing.progress import ConsoleReporter


def test_plain_progress_prints_each_quarter_as_it_is_crossed():
    out = io.StringIO()
    rep = ConsoleReporter(out=out)
    with rep.task("Copying 2 files", 100) as task:
        assert out.getvalue() == "Copying 2 files: 100 B\n"
        task.advance(30)
        assert out.getvalue().splitlines()[-1] == "Copying 2 files: 30% (30/100 B)"
        task.advance(10)
        assert len(out.getvalue().splitlines()) == 2  # no new quarter crossed
        task.advance(40)
        assert out.getvalue().splitlines()[-1] == "Copying 2 files: 80% (80/100 B)"
        task.advance(20)
    assert out.getvalue().splitlines()[-1] == "Copying 2 files: done"
    assert len(out.getvalue().splitlines()) == 4


def test_one_chunk_is_not_25_50_75_at_the_end():
    out = io.StringIO()
    with ConsoleReporter(out=out).task("Copying 1 file", 12) as task:
        task.advance(12)
    assert out.getvalue() == "Copying 1 file: 12 B\nCopying 1 file: done\n"


def test_wait_that_times_out_never_says_done(monkeypatch):
    out = io.StringIO()
    clock = iter(x * 0.01 for x in range(10_000))
    monkeypatch.setattr(uf2.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(uf2.time, "sleep", lambda s: None)
    assert uf2.wait_for(lambda: None, 0.5, ConsoleReporter(out=out), "Waiting for the drive", poll=0.01) is None
    assert "done" not in out.getvalue()
    assert out.getvalue() == "Waiting for the drive ...\n"
    out = io.StringIO()
    assert uf2.wait_for(lambda: "x", 0.5, ConsoleReporter(out=out), "Waiting for the drive") == "x"
    assert out.getvalue().splitlines()[-1] == "Waiting for the drive: done"


def test_deploy_names_one_file_singular():
    from host.flashing import deploy

    class Rep(ConsoleReporter):
        titles: list[str] = []

        def task(self, description, total, unit="B"):
            self.titles.append(description)
            return super().task(description, total, unit)

    rep = Rep(out=io.StringIO())
    class Repl:
        def exec(self, code, timeout=30.0):
            return b""

    s = deploy.Deployer(Repl(), reporter=rep)
    s.stage({"main.py": b"print(1)\n"})
    s.stage({"a.py": b"1", "b.py": b"2"})
    assert rep.titles == ["Copying 1 file", "Copying 2 files"]
