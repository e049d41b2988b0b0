"""Yield of the offline default LLM (packaged Gemma 3 270M on llama.cpp): pairs per chunk.

How many of the tiny base model's questions pass synth's checks depends on the CPU
(llama.cpp's numerics differ between machines), so the tests do not assert it; this
measures it. The real ``run_synth`` runs over ``data/sample`` with greedy decoding
(``llm.temperature = 0``, seed 42), ``synth.max_chunks`` spread over every document,
and prints pairs per chunk, the reject reasons and seconds per chunk.

Run::

    .venv/bin/python benchmarks/bench_local_llm.py              # 24 chunks (~10-20 min on 2 cores)
    .venv/bin/python benchmarks/bench_local_llm.py --chunks 4   # a quick look
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=24, help="chunks sent to the model (>= 20 for a yield figure)")
    parser.add_argument("--docs", type=Path, default=ROOT / "data" / "sample", help="document folder")
    parser.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    args = parser.parse_args(argv)

    from domainfit.artifacts import RunDir, read_jsonl
    from domainfit.config import load_config
    from domainfit.synth import run_synth

    overrides = {"synth.max_chunks": args.chunks, "llm.temperature": args.temperature}
    config = load_config(overrides=overrides, environ={})
    with tempfile.TemporaryDirectory(prefix="bench-local-llm-") as folder:
        run = RunDir(Path(folder) / "run")
        started = time.perf_counter()
        result = run_synth(args.docs, run, config, progress=False)
        seconds = time.perf_counter() - started
        per_chunk = collections.Counter(row["pairs"] for row in read_jsonl(run.synth_state) if row["done"])
    chunks = result.chunks_done
    print(f"local LLM: {result.endpoint}, temperature {args.temperature:g}, seed {config.llm.local_seed}")
    print(f"  chunks: {chunks} asked ({result.generation.chunks_failed} failed)")
    print(f"  pairs: {result.pairs} accepted = {result.pairs / max(chunks, 1):.2f} pairs/chunk "
          f"(questions asked per chunk: {config.synth.questions_per_chunk})")  # fmt: skip
    print("  chunks by pairs kept: " + ", ".join(f"{n} pairs: {count}" for n, count in sorted(per_chunk.items())))
    reasons = ", ".join(f"{reason} {count}" for reason, count in collections.Counter(result.rejects).most_common())
    print(f"  rejected: {sum(result.rejects.values())}" + (f" ({reasons})" if reasons else ""))
    print(f"  time: {seconds:.0f}s, {seconds / max(chunks, 1):.1f}s per chunk, "
          f"{result.usage.completion_tokens / max(seconds, 1e-9):.1f} completion tokens/s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
