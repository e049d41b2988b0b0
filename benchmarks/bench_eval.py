"""Time domainfit's evaluation against sentence-transformers' per-dim evaluators.

The same queries and corpus are evaluated at five dims twice:

* sentence-transformers: ``SequentialEvaluator([InformationRetrievalEvaluator(truncate_dim=d) for d in dims])``,
  which encodes the corpus and the queries again for every dim;
* domainfit: :func:`domainfit.evaluate.evaluate_dense`, which encodes once at full
  size and derives each dim by truncation and renormalisation.

It prints both times, their ratio (goal ≥ 4x) and the largest metric difference, and
checks the packaged MiniLM's NDCG@10 against the reference figures of
``../shared/benchmarks/README.md`` (legal set, the published seed split, corpus =
all 2,316 chunks: 0.4541 / 0.4379 / 0.3978 / 0.3256 at 384 / 256 / 128 / 64).

Run::

    .venv/bin/python benchmarks/bench_eval.py                 # the full legal set (slow on 2 CPU cores)
    .venv/bin/python benchmarks/bench_eval.py --queries 60 --corpus 300   # a quick slice
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LEGAL = ROOT.parent / "shared" / "benchmarks" / "legal-rag"
REFERENCE_NDCG10 = {384: 0.4541, 256: 0.4379, 128: 0.3978, 64: 0.3256}

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(ROOT))


def legal_task(max_queries: int | None = None, max_corpus: int | None = None, folder: Path = LEGAL):
    """Legal test questions against every chunk of train + test (chunk_id is the chunk identity)."""
    from domainfit.evaluate import RetrievalTask

    rows = {split: [json.loads(line) for line in (folder / f"{split}.jsonl").open(encoding="utf-8")]
            for split in ("train", "test")}
    corpus: dict[str, str] = {}
    for row in rows["train"] + rows["test"]:
        corpus.setdefault(str(row["chunk_id"]), row["context"])
    test = rows["test"][:max_queries] if max_queries else rows["test"]
    if max_corpus:
        needed = {str(row["chunk_id"]) for row in test}
        keep = [cid for cid in corpus if cid in needed]
        keep += [cid for cid in corpus if cid not in needed][: max(0, max_corpus - len(keep))]
        corpus = {cid: corpus[cid] for cid in keep}
    return RetrievalTask(
        query_ids=[str(row["id"]) for row in test],
        queries=[row["question"] for row in test],
        corpus_ids=list(corpus),
        corpus=list(corpus.values()),
        relevant={str(row["id"]): {str(row["chunk_id"]): 1} for row in test},
        name="legal-rag",
    )


def run_sentence_transformers(model, task, dims, batch_size):
    from sentence_transformers.sentence_transformer.evaluation import (
        InformationRetrievalEvaluator,
        SequentialEvaluator,
    )

    evaluators = [
        InformationRetrievalEvaluator(
            dict(zip(task.query_ids, task.queries)),
            dict(zip(task.corpus_ids, task.corpus)),
            task.relevant_sets(),
            truncate_dim=dim,
            batch_size=batch_size,
            name=f"dim_{dim}",
        )
        for dim in dims
    ]
    started = time.perf_counter()
    flat = SequentialEvaluator(evaluators)(model)
    seconds = time.perf_counter() - started
    similarity = model.similarity_fn_name
    return {
        str(dim): {
            key.split(f"dim_{dim}_{similarity}_", 1)[1]: value
            for key, value in flat.items()
            if key.startswith(f"dim_{dim}_{similarity}_")
        }
        for dim in dims
    }, seconds


def run_domainfit(model, task, dims, batch_size):
    from domainfit.evaluate import MetricSpec, evaluate_dense

    started = time.perf_counter()
    result = evaluate_dense(model, task, dims, MetricSpec(), batch_size=batch_size)
    return result.metrics, time.perf_counter() - started


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dims", default="384,256,128,64,32", help="comma-separated dims (5 by default)")
    parser.add_argument("--batch-size", type=int, default=32, help="encoding batch size for both")
    parser.add_argument("--queries", type=int, default=None, help="only the first N test questions")
    parser.add_argument("--corpus", type=int, default=None, help="only N chunks (the relevant ones first)")
    parser.add_argument("--model", default="minilm", help="model name or folder (default: packaged MiniLM)")
    parser.add_argument("--data", type=Path, default=LEGAL, help="folder with the legal-rag train/test.jsonl")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "bench_eval.json")
    args = parser.parse_args(argv)
    dims = [int(part) for part in args.dims.split(",") if part.strip()]

    import torch

    from domainfit.models import load_model

    task = legal_task(args.queries, args.corpus, args.data)
    model = load_model(args.model)
    model.encode(task.corpus[:8], batch_size=args.batch_size)  # warm-up, paid by neither side
    device = str(model.device)
    print(f"legal-rag: {len(task.queries)} queries x {len(task.corpus)} chunks, dims {dims}, "
          f"batch {args.batch_size}, device {device}, torch threads {torch.get_num_threads()}", flush=True)

    ours, ours_seconds = run_domainfit(model, task, dims, args.batch_size)
    print(f"domainfit (encode once, truncate per dim): {ours_seconds:8.1f} s", flush=True)
    theirs, theirs_seconds = run_sentence_transformers(model, task, dims, args.batch_size)
    print(f"sentence-transformers (one evaluator per dim): {theirs_seconds:8.1f} s", flush=True)

    ratio = theirs_seconds / ours_seconds
    max_diff = max(abs(ours[str(d)][name] - theirs[str(d)][name]) for d in dims for name in ours[str(d)])
    print(f"speed-up: {ratio:.2f}x (goal >= 4x)")
    print(f"max metric difference over {len(dims)} dims x {len(ours[str(dims[0])])} metrics: {max_diff:.2e}")
    print("\nNDCG@10   domainfit   sentence-transformers   README reference")
    full_set = args.queries is None and args.corpus is None
    reference_ok = True
    for dim in dims:
        reference = REFERENCE_NDCG10.get(dim)
        ok = reference is None or abs(ours[str(dim)]["ndcg@10"] - reference) < 5e-4
        reference_ok &= ok or not full_set
        shown = f"{reference:.4f} {'ok' if ok else 'DIFFERS'}" if reference is not None and full_set else "–"
        print(f"{dim:>7}   {ours[str(dim)]['ndcg@10']:.4f}      {theirs[str(dim)]['ndcg@10']:.4f}"
              f"                  {shown}")
    summary = {
        "queries": len(task.queries),
        "corpus": len(task.corpus),
        "dims": dims,
        "batch_size": args.batch_size,
        "device": device,
        "torch_threads": torch.get_num_threads(),
        "domainfit_seconds": round(ours_seconds, 2),
        "sentence_transformers_seconds": round(theirs_seconds, 2),
        "speedup": round(ratio, 2),
        "max_metric_difference": max_diff,
        "ndcg@10": {str(d): ours[str(d)]["ndcg@10"] for d in dims},
        "reference_matches": reference_ok if full_set else None,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten: {args.json}")
    return summary


if __name__ == "__main__":
    main()
