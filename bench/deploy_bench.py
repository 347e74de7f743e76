"""Time a full deploy and a no-change deploy against the virtual board, beside `mpremote fs cp -r`.

    python -m bench.deploy_bench [--repeat N]

Starts its own virtual board (private PAGERLESS_HOME), deploys the real firmware/ tree (compiled
for the board's mpy arch, as `flash.py deploy` does), and copies the same compiled tree with
mpremote's own `fs cp -r` for comparison. Wall-clock times include connecting.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import measure  # noqa: E402


def _clear(port: str) -> None:
    """Empty the board's filesystem through the board, as a user would."""
    proc = subprocess.run([sys.executable, "-m", "mpremote", "connect", port, "rm", "-r", ":/"],
                          capture_output=True, text=True)
    if proc.returncode and "cannot remove :/" not in proc.stderr:  # the root itself stays (EPERM), as on a board
        raise SystemExit(f"deploy_bench: mpremote rm failed: {(proc.stderr or proc.stdout).strip()[-300:]}")


def _mpremote_cp(port: str, tree_dir: Path) -> None:
    mpremote = Path(sys.executable).with_name("mpremote")
    cmd = [str(mpremote) if mpremote.exists() else "mpremote", "connect", port, "fs", "cp", "-r"]
    cmd += [str(p) for p in sorted(tree_dir.iterdir())] + [":."]  # ":." is the board's working directory (":/" would be the host root on the unix port)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise SystemExit(f"deploy_bench: mpremote failed: {(proc.stderr or proc.stdout).strip()[-300:]}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.deploy_bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5, help="interleaved rounds (default 5)")
    args = ap.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="deploy-bench-"))
    os.environ["PAGERLESS_HOME"] = str(work / "home")
    from host.device.boards import load_board
    from host.flashing.deploy import deploy_tree
    from host.flashing.deploy_tree import build_tree
    from host.virtual_board.board import VirtualBoard

    board_def = load_board("virtual")
    tree = build_tree(board_def)
    tree_dir = work / "tree"
    for rel, data in tree.items():
        (tree_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree_dir / rel).write_bytes(data)
    size = sum(len(d) for d in tree.values())

    board = VirtualBoard(work / "board", name="virtual", link_rate="unlimited").start()
    full, nochange, cp = [], [], []
    try:
        for _ in range(args.repeat):
            _clear(board.port)
            t = time.perf_counter()
            deploy_tree(board.port, tree)
            full.append(time.perf_counter() - t)
            time.sleep(0.3)  # let the app boot, as a user's next deploy would find it
            t = time.perf_counter()
            r = deploy_tree(board.port, tree)
            nochange.append(time.perf_counter() - t)
            assert r.copied == []
            _clear(board.port)
            t = time.perf_counter()
            _mpremote_cp(board.port, tree_dir)
            cp.append(time.perf_counter() - t)
            time.sleep(0.3)
    finally:
        board.stop()
        shutil.rmtree(work, ignore_errors=True)

    measure.header(f"deploy_bench: tree {len(tree)} files, {size} bytes; virtual board, link unlimited; "
                   f"{args.repeat} interleaved rounds (full, no change, mpremote cp)")
    rows = [("mpremote fs cp -r (baseline)", cp), ("flash.py deploy, full", full),
            ("flash.py deploy, no change", nochange)]
    measure.table([(name, measure.spread(xs), "s") for name, xs in rows], fmt="{:.3f}", width=32)
    base = measure.spread(cp)
    for name, xs in rows[1:]:
        print(f"{name + ' / mpremote fs cp -r':<52}{measure.ratio(measure.spread(xs), base):.2f}x")
    targets = measure.Targets()
    targets.check("no-change deploy", measure.spread(nochange).median, "<=", 1.0, " s", "{:.3f}")
    targets.check("full deploy / mpremote fs cp -r", measure.ratio(measure.spread(full), base), "<=", 1.0, "x")
    return targets.exit_code()

if __name__ == "__main__":
    sys.exit(main())
