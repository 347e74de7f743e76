"""Run every benchmark in bench/ in turn: `python -m bench` (or `python3 dev.py bench`).

Each prints its own table with the baseline it is compared against, as ratios.
"""
import importlib
import pkgutil
import sys
from pathlib import Path


def main() -> int:
    names = sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)])
                   if m.name.endswith("_bench"))
    worst = 0
    for name in names:
        print(f"\n=== bench/{name}.py ===", flush=True)
        mod = importlib.import_module(f"bench.{name}")
        rc = mod.main([])
        worst = max(worst, rc or 0)
    return worst


if __name__ == "__main__":
    sys.exit(main())
