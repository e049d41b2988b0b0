"""`make bench`: every benchmark, each against its reference tool in the same run.

On a 2-core CPU the full-size runs take hours (the evaluator and training ones most),
so by default each script runs at a size this machine finishes in minutes and prints
its ratios; ``--full`` runs the published sizes (use a GPU machine for training).

    python benchmarks/run_all.py            # CPU-sized
    python benchmarks/run_all.py --full     # the sizes quoted in README.md
    python benchmarks/run_all.py --only synth,eval
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# name -> (CPU-sized arguments, full-size arguments)
BENCHMARKS: dict[str, tuple[list[str], list[str]]] = {
    "synth": (["--quick"], []),
    "local_llm": (["--chunks", "4"], ["--chunks", "24"]),
    "mining": (["--only", "a", "--pairs", "500"], []),
    "eval": (["--queries", "50", "--corpus", "300"], []),
    "train": (
        ["--limit-train", "300", "--limit-test", "100", "--limit-corpus", "1000", "--epochs", "1"],
        [],
    ),
    "rerank": ([], ["--full"]),
    "adapt": (["--max-chunks", "80"], ["--full"]),
    "encode": (["--chunks", "512"], ["--chunks", "4096", "--ray"]),
    "export": ([], ["--pairs", "2000"]),
    "vectors": (["--only", "beir"], []),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="run the full-size benchmarks")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated subset")
    args = parser.parse_args()
    failures = []
    for name in args.only.split(","):
        quick, full = BENCHMARKS[name]
        command = [sys.executable, str(HERE / f"bench_{name}.py"), *(full if args.full else quick)]
        print(f"\n=== {name}: {' '.join(command[1:])}", flush=True)
        start = time.perf_counter()
        if subprocess.run(command).returncode != 0:
            failures.append(name)
        print(f"=== {name} took {time.perf_counter() - start:.0f}s", flush=True)
    if failures:
        print(f"failed: {', '.join(failures)}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
