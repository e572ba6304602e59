"""Run every benchmark (``python -m benchmarks``, or ``make bench``), or the ones named on the command line.

Each ``benchmarks/bench_NAME.py`` writes ``benchmarks/results/NAME.json`` and its section of
``docs/benchmarks.md``; this runner only runs them one after the other in fresh interpreters.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    available = sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))
    selected = argv or available
    unknown = sorted(set(selected) - set(available))
    if unknown:
        print(f"unknown benchmark(s) {unknown}; available: {', '.join(available)}", file=sys.stderr)
        return 2
    failed = []
    for name in selected:
        print(f"== benchmark {name}", flush=True)
        if subprocess.call([sys.executable, "-m", f"benchmarks.bench_{name}"], cwd=HERE.parent) != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
