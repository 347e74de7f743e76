"""The virtual board's `machine` shim runs inside MicroPython and cannot import the host, so it keeps
its own copy of the IPC opcodes and header size (host/virtual_board/ipc.py) and of the reset-cause
constants (host/virtual_board/reset_causes.py). These tests read the shim's source and fail on any drift."""

from __future__ import annotations

import ast

from host.paths import ROOT
from host.virtual_board import ipc, reset_causes

SHIM = ROOT / "boards" / "virtual" / "shim" / "machine.py"
SHIM_IPC = ROOT / "boards" / "virtual" / "shim" / "_vipc.py"  # the shim's side of the FIFOs
IPC = ROOT / "host" / "virtual_board" / "ipc.py"


def _module_ints(path) -> dict[str, int]:
    """NAME -> value of each top-level `NAME = <int>` or `NAME = const(<int>)` in a source file."""
    out = {}
    for node in ast.parse(path.read_text()).body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            continue
        value = node.value
        if isinstance(value, ast.Call) and getattr(value.func, "id", None) == "const" and len(value.args) == 1:
            value = value.args[0]
        if isinstance(value, ast.Constant) and type(value.value) is int:
            out[node.targets[0].id] = value.value
    return out


def test_shim_ipc_opcodes_match_the_host_by_name_and_value():
    host_ops = {k: v for k, v in _module_ints(IPC).items() if k.startswith("OP_")}
    shim_ops = {k: v for k, v in _module_ints(SHIM_IPC).items() if k.startswith("OP_")}
    assert host_ops, "no OP_* found in host/virtual_board/ipc.py"
    assert shim_ops == host_ops
    assert len(set(host_ops.values())) == len(host_ops), "two opcodes share a number"


def test_shim_header_size_matches_the_host():
    assert _module_ints(SHIM_IPC)["HDR"] == ipc.HEADER.size


def test_shim_reset_causes_match_the_host():
    names = ("PWRON_RESET", "HARD_RESET", "WDT_RESET", "DEEPSLEEP_RESET", "SOFT_RESET")
    shim = _module_ints(SHIM)
    assert {n: shim[n] for n in names} == {n: getattr(reset_causes, n) for n in names}
    assert set(reset_causes.WIRE_RESET_CAUSE) == {shim[n] for n in names}, "every machine cause maps to a wire code"
