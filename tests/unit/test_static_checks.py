"""Pyflakes over the whole tree (settings in pyproject.toml): an undefined name or a syntax error
in a tool path that no test runs still fails the suite."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_ruff_finds_nothing():
    r = subprocess.run([sys.executable, "-m", "ruff", "check", "--output-format", "concise", "."],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


# Layers of host/ from the bottom (docs/architecture.md): a module may import its own layer or
# any layer below, never one above, and nothing under host/ or bench/ imports tests/.
LAYERS = [
    {"host.errors", "host.paths"},
    {"host.protocol", "host.sensors"},
    {"host.device"},
    {"host.monitoring", "host.flashing", "host.virtual_board", "host.emulated_rp2040"},
    {"host.flash", "host.monitor", "host.hil", "host.testkit", "host.fleet"},
    {"host.demo"},
]


def _layer(module: str) -> int | None:
    parts = module.split(".")
    for n in (2, 1):
        name = ".".join(parts[:n])
        for i, layer in enumerate(LAYERS):
            if name in layer:
                return i
    return None


def _imports(path: Path) -> list[str]:
    import ast

    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
            out.extend(f"{node.module}.{a.name}" for a in node.names if node.module == "host")
        elif isinstance(node, ast.Import):
            out.extend(a.name for a in node.names)
    return out


def test_every_host_package_has_a_layer():
    packages = {f"host.{p.name}" for p in (ROOT / "host").iterdir() if (p / "__init__.py").exists()}
    modules = {f"host.{p.stem}" for p in (ROOT / "host").glob("*.py") if p.stem != "__init__"}
    assert not {m for m in packages | modules if _layer(m) is None}


def test_host_layers_import_only_downwards_and_never_tests():
    bad = []
    for path in sorted((ROOT / "host").rglob("*.py")) + sorted((ROOT / "bench").rglob("*.py")):
        rel = path.relative_to(ROOT)
        module = ".".join(rel.with_suffix("").parts).removesuffix(".__init__")
        mine = _layer(module)
        for imported in _imports(path):
            if imported == "tests" or imported.startswith("tests."):
                bad.append(f"{rel}: imports {imported} (tests/ is not importable by tools or benches)")
            theirs = _layer(imported) if imported.startswith("host.") else None
            if mine is not None and theirs is not None and theirs > mine:
                bad.append(f"{rel}: imports {imported}, a layer above it")
    assert not bad, "\n".join(bad)
