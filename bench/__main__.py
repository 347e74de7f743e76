"""Run every benchmark in bench/ in turn: `python -m bench` (or `python3 dev.py bench`).

Each prints its figures against its baseline (min / median / max over interleaved rounds), its
targets with PASS or MISS, and returns non-zero on a miss; this exits non-zero if any bench missed
a target or failed to run.  `python -m bench decoder link` runs only the benches named.
"""
import importlib
import pkgutil
import sys
import time
import traceback
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    only = argv if argv is not None else sys.argv[1:]
    names = sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)])
                   if m.name.endswith("_bench") and (not only or m.name[:-len("_bench")] in only))
    results = []
    for name in names:
        print(f"\n=== bench/{name}.py ===", flush=True)
        t0 = time.monotonic()
        try:
            rc = importlib.import_module(f"bench.{name}").main([]) or 0
        except (Exception, SystemExit) as e:  # noqa: BLE001 - a bench that cannot run is a miss, the rest still run
            traceback.print_exc()
            rc = e.code if isinstance(e, SystemExit) and isinstance(e.code, int) and e.code else 2
        results.append((name, rc, time.monotonic() - t0))
    print("\n=== summary ===")
    for name, rc, dt in results:
        print(f"{name:<20} {'PASS' if rc == 0 else 'MISS' if rc == 1 else 'ERROR'}  ({dt:.0f} s)")
    return max((rc for _, rc, _ in results), default=0)


if __name__ == "__main__":
    sys.exit(main())
