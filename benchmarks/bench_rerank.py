"""Re-ranker fine-tuning on the financial QA set: dense retrieval alone vs dense + the fine-tuned cross-encoder.

Data and split: ``bench_train.py``'s leak-free reference split (700 test questions
drawn with ``random.Random(42)``, training rows whose context is a test context
removed, a validation carve by context). A domainfit run directory is written with
those fixed splits, negatives are mined with ``domainfit.mining`` (defaults), and
``domainfit.rerank.run_rerank`` fine-tunes the cross-encoder named by ``--reranker``
on the train split (validation keeps the best epoch), then scores, on the test
questions: the base bi-encoder's top k alone, and re-ranked by the fine-tuned
cross-encoder (and by the base cross-encoder when it is a trained one), with the
time per query.

    # CPU size (a few minutes on 2 cores): 300 train rows, 100 test questions, ~800 contexts, top 20
    .venv/bin/python benchmarks/bench_rerank.py
    # the full split (a GPU machine): every leak-free train row, 700 test questions, all 6,756 contexts, top 50
    python benchmarks/bench_rerank.py --full --reranker cross-encoder/ms-marco-MiniLM-L6-v2

Offline with no cached cross-encoder the re-ranker starts from the packaged MiniLM
with a fresh one-logit head (domainfit's fallback); results go to ``OUT/results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bench_train import DATA, reference_split, write_run  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "rerank")
    parser.add_argument("--full", action="store_true", help="the whole split, top 50 (GPU-sized)")
    parser.add_argument("--limit-train", type=int, default=300)
    parser.add_argument("--limit-test", type=int, default=100)
    parser.add_argument("--limit-corpus", type=int, default=800)
    parser.add_argument("--top-k", type=int, default=None, help="candidates per question (20 at CPU size, 50 full)")
    parser.add_argument("--reranker", default="cross-encoder/ms-marco-MiniLM-L6-v2",
                        help="rerank.base_model; offline and not cached: the packaged MiniLM with a fresh head")
    parser.add_argument("--loss", default="bce", choices=("bce", "lambda", "mnrl"))
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--learning-rate", type=float, default=None,
                        help="default: 2e-5 for a trained re-ranker, 1e-4 for a fresh head")
    parser.add_argument("--max-length", type=int, default=256)
    args = parser.parse_args(argv)

    from domainfit.config import load_config
    from domainfit.mining import run_mining
    from domainfit.models import resolve_cross_encoder
    from domainfit.rerank import run_rerank

    limits = {} if args.full else {"limit_train": args.limit_train, "limit_test": args.limit_test,
                                   "limit_corpus": args.limit_corpus}
    top_k = args.top_k or (50 if args.full else 20)
    rows = [json.loads(line) for line in args.data.open(encoding="utf-8")]
    bench = reference_split(rows, **limits)
    folder = args.out / "run"
    shutil.rmtree(folder, ignore_errors=True)
    run = write_run(bench, folder)
    _, fresh = resolve_cross_encoder(args.reranker)
    learning_rate = args.learning_rate or (1e-4 if fresh else 2e-5)
    config = load_config(overrides={
        "split.by": "chunk", "rerank.base_model": args.reranker, "rerank.loss": args.loss,
        "rerank.epochs": args.epochs, "rerank.top_k": top_k, "rerank.learning_rate": learning_rate,
        "rerank.max_length": args.max_length, "rerank.logging_steps": 20,
    }, environ={})
    print(f"financial set: {len(bench.train)} train / {len(bench.val)} val rows, {len(bench.test)} test questions, "
          f"{len(bench.corpus)} contexts; re-ranker from {args.reranker}{' (fresh head)' if fresh else ''}, "
          f"lr {learning_rate}, top {top_k}", flush=True)
    started = time.perf_counter()
    run_mining(run, config, progress=False)
    mined = time.perf_counter() - started
    result = run_rerank(run, config, progress=False)
    print(result.summary())
    output = {"train_rows": len(bench.train), "val_rows": len(bench.val), "test": len(bench.test),
              "corpus": len(bench.corpus), "top_k": top_k, "reranker": args.reranker, "fresh_head": fresh,
              "learning_rate": learning_rate, "loss": result.loss, "mining_s": round(mined, 1),
              "rerank_s": result.seconds, "rows": result.metrics.get("rows", [])}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(output, indent=2) + "\n", encoding="utf-8")
    return output


if __name__ == "__main__":
    main()
