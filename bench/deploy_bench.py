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
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _clear(port: str) -> None:
    """Empty the board's filesystem through the board, as a user would."""
    subprocess.run([sys.executable, "-m", "mpremote", "connect", port, "rm", "-r", ":/"],
                   check=True, capture_output=True)


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
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement (median reported)")
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

    base = statistics.median(cp)
    rows = [("mpremote fs cp -r (baseline)", cp), ("flash.py deploy, full", full),
            ("flash.py deploy, no change", nochange)]
    print(f"tree: {len(tree)} files, {size} bytes; virtual board, link unlimited; median of {args.repeat}")
    print(f"{'run':<32}{'median s':>10}{'min s':>9}{'vs cp':>8}")
    for name, xs in rows:
        med = statistics.median(xs)
        print(f"{name:<32}{med:>10.3f}{min(xs):>9.3f}{med / base:>7.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
