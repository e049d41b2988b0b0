"""Benchmark: domainfit's negative mining against sentence-transformers, and at 1M rows.

(a) The same financial QA pairs are mined by ``domainfit.mining.run_mining`` and by
    ``sentence_transformers.util.mine_hard_negatives``, configured alike (top /
    hard strategy, relative_margin, range_max, num_negatives, batch size; the
    guards that ST lacks are off or cannot fire: no test split, no near-duplicate
    threshold, one chunk per distinct text with no overlapping spans). Each side
    runs in its own process from a loaded model, embedding included, and reports
    wall time, CPU time and peak RSS above its start; the parent prints the overlap
    of the chosen negatives and the time ratio domainfit / ST.

(b) Clustered random unit vectors (dim 384) fill a LanceDB table of --rows rows
    (default 1,000,000); an IVF_PQ index is built and --queries queries (noisy
    copies of random rows, whose positive is that row) are mined with
    ``mine_negatives``: time and peak RSS, which stays bounded because queries go
    to LanceDB in batches and no queries x corpus matrix is ever built.

Usage::

    .venv/bin/python benchmarks/bench_mining.py                 # (a) with 2,000 pairs, then full (b)
    .venv/bin/python benchmarks/bench_mining.py --quick         # (a), then (b) at 100k rows / 1k queries
    .venv/bin/python benchmarks/bench_mining.py --only b --rows 1000000 --queries 10000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAIRS = ROOT.parent / "shared" / "benchmarks" / "financial-qa-10k" / "pairs.jsonl"
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class PeakRSS:
    """Samples this process's resident memory every 20 ms; ``peak_mb`` is the most above the start."""

    def __init__(self) -> None:
        import psutil

        self._process = psutil.Process()
        self.start = self._process.memory_info().rss
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __enter__(self) -> "PeakRSS":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)

    @property
    def peak_mb(self) -> float:
        return (self.peak - self.start) / 2**20


class Clock:
    """Wall and process CPU time of a block (CPU time is less hurt by a shared machine)."""

    def __enter__(self) -> "Clock":
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


# --------------------------------------------------------------------------- (a) data


def load_pairs(limit: int, corpus: str) -> tuple[list[dict], list[str]]:
    """The first ``limit`` rows with a context, and the corpus texts (their contexts, or all)."""
    if not PAIRS.exists():
        sys.exit(f"benchmark data not found: {PAIRS}")
    rows = [json.loads(line) for line in PAIRS.open(encoding="utf-8")]
    rows = [row for row in rows if row["context"].strip() and row["question"].strip()]
    picked = rows[:limit]
    source = picked if corpus == "pairs" else rows
    texts = list(dict.fromkeys(row["context"].strip() for row in source))
    return picked, texts


def build_run(workdir: Path, rows: list[dict], texts: list[str]):
    """A run dir with one chunk per distinct text, the pairs, and an all-train split."""
    from domainfit.artifacts import Chunk, Pair, RunDir, content_hash, pair_id_for, write_chunks, write_jsonl
    from domainfit.splits import Splits, write_splits

    run = RunDir(workdir / "run").ensure()
    chunk_of_text, chunks, offsets = {}, [], defaultdict(int)
    doc_of_text = {row["context"].strip(): f"{row['ticker']}_{row['filing']}" for row in rows}
    for text in texts:
        doc_id = doc_of_text.get(text, "corpus")
        start = offsets[doc_id]
        offsets[doc_id] += len(text) + 1
        chunk = Chunk(
            chunk_id=content_hash(text), doc_id=doc_id, source=f"{doc_id}.txt", text=text,
            char_start=start, char_end=start + len(text), n_tokens=len(text.split()),
        )
        chunk_of_text[text] = chunk.chunk_id
        chunks.append(chunk)
    pairs = {}
    for row in rows:
        chunk_id = chunk_of_text[row["context"].strip()]
        pair_id = pair_id_for(chunk_id, row["question"])
        pairs[pair_id] = Pair(pair_id=pair_id, chunk_id=chunk_id, query=row["question"])
    write_chunks(run.chunks, chunks)
    write_jsonl(run.pairs, pairs.values())
    write_splits(run, Splits(train=list(pairs), val=[], test=[], by="chunk", seed=42), list(pairs.values()))
    return run, list(pairs.values())


# --------------------------------------------------------------------------- (a) workers


def st_range_max(range_max: int, pairs: list[dict]) -> int:
    """ST's range_max that gives a one-positive question domainfit's window of ``range_max`` candidates.

    ST retrieves range_max + max_positives (the most positives any question has),
    masks the question's own positives and filters, *then* takes the top range_max:
    a question with one positive thus chooses from range_max + max_positives - 1
    non-positive candidates. domainfit's window is exactly range_max.
    """
    per_question: dict[str, int] = defaultdict(int)
    for pair in pairs:
        per_question[pair["query"]] += 1
    return range_max - (max(per_question.values()) - 1)


def worker_st(args, pairs: list[dict], texts: list[str]) -> dict:
    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives

    from domainfit.models import load_model

    model = load_model("minilm")
    model.encode(["warm up"])
    dataset = Dataset.from_dict({"anchor": [p["query"] for p in pairs], "positive": [p["positive"] for p in pairs]})
    with PeakRSS() as memory, Clock() as clock:
        mined = mine_hard_negatives(
            dataset,
            model,
            corpus=texts,
            range_max=st_range_max(args.range_max, pairs),
            num_negatives=args.num_negatives,
            relative_margin=args.relative_margin,
            sampling_strategy="top",
            output_format="triplet",
            output_scores=True,
            batch_size=args.batch_size,
            verbose=False,
        )
    negatives = defaultdict(list)
    for row in mined:
        negatives[f"{row['anchor']}\x1f{row['positive']}"].append(row["negative"])
    return {"wall": clock.wall, "cpu": clock.cpu, "peak_mb": memory.peak_mb, "negatives": negatives}


def worker_domainfit(args, workdir: Path) -> dict:
    import pyarrow.parquet as pq

    from domainfit.artifacts import RunDir
    from domainfit.config import MiningConfig, RunConfig, SplitConfig
    from domainfit.mining import run_mining
    from domainfit.models import load_model

    import lancedb  # noqa: F401  (library import is outside the clock, as ST's imports are)

    run = RunDir(workdir / "run")
    shutil.rmtree(run.index_dir, ignore_errors=True)
    model = load_model("minilm")
    model.encode(["warm up"])
    config = RunConfig(
        split=SplitConfig(by="chunk"),
        mining=MiningConfig(
            strategy="hard",
            num_negatives=args.num_negatives,
            range_max=args.range_max,
            relative_margin=args.relative_margin,
            near_duplicate_cosine=None,
            batch_size=args.batch_size,
        ),
    )
    with PeakRSS() as memory, Clock() as clock:
        result = run_mining(run, config, model=model)
    negatives = defaultdict(list)
    for row in pq.read_table(run.triplets).to_pylist():
        key = f"{row['anchor']}\x1f{row['positive']}"
        for number in range(1, args.num_negatives + 1):
            if row[f"negative_{number}"] is not None:
                negatives[key].append(row[f"negative_{number}"])
    return {
        "wall": clock.wall, "cpu": clock.cpu, "peak_mb": memory.peak_mb, "negatives": negatives,
        "dropped": dict(result.stats.dropped),
    }


def run_worker(name: str, args, workdir: Path) -> dict:
    """Run one side in a fresh interpreter so its memory and threads are its own."""
    out = workdir / f"{name}.json"
    command = [
        sys.executable, __file__, "--worker", name, "--workdir", str(workdir),
        "--range-max", str(args.range_max), "--num-negatives", str(args.num_negatives),
        "--relative-margin", str(args.relative_margin), "--batch-size", str(args.batch_size),
    ]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL if not args.verbose else None)
    return json.loads(out.read_text())


def bench_a(args) -> None:
    rows, texts = load_pairs(args.pairs, args.corpus)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench_mining_a_"))
    run, pairs = build_run(workdir, rows, texts)
    chunk_text = {}
    import pyarrow.parquet as pq

    for row in pq.read_table(run.chunks).to_pylist():
        chunk_text[row["chunk_id"]] = row["text"]
    inputs = [{"query": pair.query, "positive": chunk_text[pair.chunk_id]} for pair in pairs]
    (workdir / "inputs.json").write_text(json.dumps({"pairs": inputs, "texts": texts}))
    print(
        f"(a) {len(pairs):,} pairs, corpus {len(texts):,} texts ({args.corpus}); hard/top, relative_margin "
        f"{args.relative_margin}, range_max {args.range_max} (ST: {st_range_max(args.range_max, inputs)}, the same "
        f"window for one-positive questions), num_negatives {args.num_negatives}, batch {args.batch_size}",
        flush=True,
    )
    runs: dict[str, list[dict]] = {"st": [], "domainfit": []}
    for repeat in range(args.repeat):
        order = ["st", "domainfit"] if (repeat + args.domainfit_first) % 2 == 0 else ["domainfit", "st"]
        for name in order:
            result = run_worker(name, args, workdir)
            runs[name].append(result)
            print(f"  {name:<10} wall {result['wall']:.1f}s  cpu {result['cpu']:.1f}s  "
                  f"peak RSS +{result['peak_mb']:.0f} MB", flush=True)
    results = {name: min(found, key=lambda item: item["cpu"]) for name, found in runs.items()}
    best = {name: {key: min(item[key] for item in found) for key in ("wall", "cpu", "peak_mb")} for name, found in runs.items()}
    ours, theirs = results["domainfit"]["negatives"], results["st"]["negatives"]
    question_count = defaultdict(int)
    for item in inputs:
        question_count[item["query"]] += 1
    from domainfit.artifacts import normalize_text

    single = {f"{i['query']}\x1f{i['positive']}" for i in inputs if question_count[i["query"]] == 1}
    # ST has no same-normalised-text guard: where it picked such a copy of the positive, the guards differ
    agree = {
        key for key in single
        if not any(normalize_text(text) == normalize_text(key.split("\x1f", 1)[1]) for text in theirs.get(key, []))
    }
    every = {f"{i['query']}\x1f{i['positive']}" for i in inputs}
    for label, keys in (("all pairs", every), ("single-positive questions", single), ("where the guards agree", agree)):
        both = sum(len(set(ours.get(key, [])) & set(theirs.get(key, []))) for key in keys)
        st_total = sum(len(theirs.get(key, [])) for key in keys)
        ours_total = sum(len(ours.get(key, [])) for key in keys)
        identical = sum(ours.get(key, []) == theirs.get(key, []) for key in keys)
        print(
            f"  overlap ({label}, {len(keys):,}): {both / max(1, st_total):.2%} of ST's {st_total:,} negatives, "
            f"{both / max(1, ours_total):.2%} of domainfit's {ours_total:,}; identical lists {identical / max(1, len(keys)):.2%}"
        )
    print(f"  domainfit-only drops: {results['domainfit']['dropped']}")
    print(
        f"  time ratio domainfit/ST (best of {args.repeat}): wall {best['domainfit']['wall'] / best['st']['wall']:.2f}x, "
        f"cpu {best['domainfit']['cpu'] / best['st']['cpu']:.2f}x; peak RSS domainfit "
        f"+{best['domainfit']['peak_mb']:.0f} MB vs ST +{best['st']['peak_mb']:.0f} MB",
        flush=True,
    )


# --------------------------------------------------------------------------- (b)


def clustered_unit_vectors(rng, rows: int, dim: int, centers, spread: float = 0.6):
    """Unit vectors around random centres: random, yet with neighbourhoods like real embeddings."""
    import numpy as np

    vectors = centers[rng.integers(0, len(centers), rows)] + spread * rng.standard_normal((rows, dim), dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def bench_b(args) -> None:
    import numpy as np

    from domainfit.config import MiningConfig
    from domainfit.mining import ChunkIndex, mine_negatives
    from domainfit.mining.negatives import ChunkRef

    rows, queries, dim = args.rows, args.queries, 384
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench_mining_b_"))
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((max(16, rows // 1000), dim), dtype=np.float32)
    config = MiningConfig(strategy="hard", num_negatives=args.num_negatives, range_max=args.range_max,
                          ann_min_rows=min(100_000, rows))
    print(f"(b) {rows:,} random unit vectors (dim {dim}, {len(centers):,} clusters), {queries:,} queries; "
          f"{config.ann_index} index, target recall {config.ann_target_recall}", flush=True)
    with PeakRSS() as memory, Clock() as clock:
        index, _ = ChunkIndex.open(workdir / "index", model_id="random", dim=dim)
        slice_rows = 100_000
        for first in range(0, rows, slice_rows):
            count = min(slice_rows, rows - first)
            refs = [ChunkRef(chunk_id=f"c{first + i}", doc_id=f"d{(first + i) // 8}", char_start=((first + i) % 8) * 500,
                             char_end=((first + i) % 8) * 500 + 500, text_hash=f"h{first + i}") for i in range(count)]
            index.add(refs, clustered_unit_vectors(rng, count, dim, centers))
    print(f"  write {rows:,} rows: {clock.wall:.1f}s, peak RSS +{memory.peak_mb:.0f} MB", flush=True)
    with PeakRSS() as memory, Clock() as clock:
        index.ensure_ann(config)
    print(f"  build {config.ann_index} ({index.ann['num_partitions']} partitions): {clock.wall:.1f}s, "
          f"peak RSS +{memory.peak_mb:.0f} MB", flush=True)
    picked = np.sort(rng.choice(rows, queries, replace=False))
    positives = [ChunkRef(chunk_id=f"c{i}", doc_id=f"d{i // 8}", char_start=(i % 8) * 500, char_end=(i % 8) * 500 + 500,
                          text_hash=f"h{i}") for i in picked]
    with PeakRSS() as memory, Clock() as clock:
        query_vectors = index.vectors_of([p.chunk_id for p in positives])
        noise = rng.standard_normal(query_vectors.shape, dtype=np.float32) * (0.7 / np.sqrt(dim))
        query_vectors = query_vectors + noise  # cosine to its positive about 0.8
        query_vectors /= np.linalg.norm(query_vectors, axis=1, keepdims=True)
        outcome = mine_negatives(index, query_vectors, positives, config)
    ann = outcome.ann
    print(f"  mine {queries:,} queries: {clock.wall:.1f}s wall ({outcome.search_seconds:.1f}s searching, "
          f"{queries / max(outcome.search_seconds, 1e-9):.0f} queries/s), cpu {clock.cpu:.1f}s, "
          f"peak RSS +{memory.peak_mb:.0f} MB", flush=True)
    if ann is not None:
        print(f"  ANN: nprobes {ann.nprobes}/{ann.num_partitions}, refine {ann.refine_factor}, recall {ann.recall:.4f} "
              f"of exact top-{ann.limit} on {ann.sample_queries} queries", flush=True)
    print("  " + outcome.stats.summary().replace("\n", "\n  "), flush=True)
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["a", "b"], help="run one part")
    parser.add_argument("--quick", action="store_true", help="(b) at 100k rows and 1k queries")
    parser.add_argument("--pairs", type=int, default=2000, help="(a) pairs mined")
    parser.add_argument("--corpus", choices=["pairs", "all"], default="pairs", help="(a) corpus: the pairs' contexts or all")
    parser.add_argument("--rows", type=int, default=1_000_000, help="(b) table rows")
    parser.add_argument("--queries", type=int, default=10_000, help="(b) queries")
    parser.add_argument("--range-max", type=int, default=50)
    parser.add_argument("--num-negatives", type=int, default=3)
    parser.add_argument("--relative-margin", type=float, default=0.05)
    parser.add_argument("--batch-size", type=int, default=32, help="encoding batch size (both sides)")
    parser.add_argument("--repeat", type=int, default=1, help="(a) runs per side, alternating the order; best is kept")
    parser.add_argument("--domainfit-first", action="store_true", help="(a) run domainfit before ST")
    parser.add_argument("--workdir", help="keep files here instead of a temp dir")
    parser.add_argument("--verbose", action="store_true", help="show the workers' progress bars")
    parser.add_argument("--worker", choices=["st", "domainfit"], help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        workdir = Path(args.workdir)
        if args.worker == "st":
            inputs = json.loads((workdir / "inputs.json").read_text())
            result = worker_st(args, inputs["pairs"], inputs["texts"])
        else:
            result = worker_domainfit(args, workdir)
        (workdir / f"{args.worker}.json").write_text(json.dumps(result))
        return
    if args.quick:
        args.rows, args.queries = min(args.rows, 100_000), min(args.queries, 1_000)
    if args.only in (None, "a"):
        bench_a(args)
    if args.only in (None, "b"):
        bench_b(args)


if __name__ == "__main__":
    main()
