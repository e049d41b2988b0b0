"""Does adaptation help real users? domainfit's offline defaults judged by human queries.

Three settings (see the quality issue and docs/train.md):

* **in-corpus** — ``domainfit run`` on Cranfield's 1,400 abstracts (one .txt each) with
  the offline defaults (packaged MiniLM, local Gemma 3 270M), ``synth.max_chunks``
  spread over documents as the CPU allows; then base, adapted and BM25 are scored on
  the 225 human-written queries over all 1,400 abstracts. The queries are split into a
  fixed ``dev`` half (defaults were chosen on it) and a ``test`` half (never used to
  choose anything); both are printed, with the whole set.
* **out-of-corpus** — adapt on a random half of the abstracts (the in-corpus run's
  generated pairs whose abstract is in that half: synthesis runs once), then score on
  the other half with the queries that have a relevant abstract there. A model adapted
  on today's documents must not get worse on tomorrow's.
* **recipe only** — the legal set (LLM-written questions), split by chunk so no test
  chunk is a training positive: domainfit's recipe vs the tutorial recipe (MNRL +
  Matryoshka, batch 32 x accumulation 16, lr 2e-5), same epochs
  (``bench_train.py --dataset legal``).

Printed: NDCG@10 at 384/256/128/64, the adapted-minus-base difference, the pairs
count, synth and train minutes and the LLM tokens. Results go to ``OUT/results.json``.

    .venv/bin/python benchmarks/bench_adapt.py                    # CPU size (~1 h on 2 cores)
    .venv/bin/python benchmarks/bench_adapt.py --max-chunks 500   # the size of the issue's runs
    .venv/bin/python benchmarks/bench_adapt.py --only legal --legal-args="--epochs 4"

A rerun resumes: ``domainfit run`` skips the stages whose inputs did not change, so
the slow synthesis happens once per ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from cranfield_data import write_cranfield  # noqa: E402
from cranfield_score import DIMS, CranfieldScorer  # noqa: E402

DOMAINFIT = [sys.executable, "-m", "domainfit.cli"]
CPU_MAX_CHUNKS = 80
CPU_LEGAL_ARGS = "--limit-train 600 --limit-test 150 --limit-corpus 700 --epochs 2"


def domainfit(*args: str) -> None:
    """Run one domainfit command; its output streams to ours."""
    command = [*DOMAINFIT, *args]
    print("$ domainfit " + " ".join(shlex.quote(arg) for arg in args), flush=True)
    if subprocess.run(command).returncode != 0:
        raise SystemExit(f"domainfit {args[0]} failed")


def write_config(path: Path, max_chunks: int) -> Path:
    path.write_text(f"[synth]\nmax_chunks = {max_chunks}\n", encoding="utf-8")
    return path


def stage_facts(run: Path) -> dict[str, Any]:
    """Pairs, minutes per stage and tokens from the run's manifest."""
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    stages = manifest.get("stages", {})
    synth = stages.get("synth", {})
    counts = synth.get("counts", {})
    pairs = sum(1 for line in (run / "pairs.jsonl").open(encoding="utf-8") if line.strip())
    return {
        "pairs": pairs,
        "chunks_asked": counts.get("chunks_sent") or counts.get("chunks_done") or counts.get("chunks"),
        "synth_minutes": round((synth.get("seconds") or 0) / 60, 1),
        "train_minutes": round((stages.get("train", {}).get("seconds") or 0) / 60, 1),
        "tokens": {key: value for key, value in counts.items() if "token" in key},
    }


def derive_half_run(source: Path, target: Path, half_docs: Path) -> Path:
    """A run holding the source run's chunks and pairs whose document is in ``half_docs``."""
    import pyarrow.parquet as pq

    from domainfit.artifacts import RunDir, read_jsonl, write_jsonl, write_parquet

    keep_sources = {path.name for path in half_docs.iterdir()}
    shutil.rmtree(target, ignore_errors=True)
    run = RunDir(target).ensure()
    chunks = pq.read_table(source / "chunks.parquet")
    mask = [Path(name).name in keep_sources for name in chunks.column("source").to_pylist()]
    import pyarrow as pa

    chunks = chunks.filter(pa.array(mask))
    write_parquet(run.chunks, chunks)
    kept_chunks = set(chunks.column("chunk_id").to_pylist())
    write_jsonl(run.pairs, [row for row in read_jsonl(source / "pairs.jsonl") if row["chunk_id"] in kept_chunks])
    return target


def print_table(title: str, rows: dict[str, dict[int, float]], base: dict[int, float] | None) -> None:
    print(f"\n{title}")
    print(f"{'model':<22}" + "".join(f"{dim:>9}" for dim in DIMS))
    for name, values in rows.items():
        print(f"{name:<22}" + "".join(f"{values[dim]:>9.4f}" for dim in DIMS))
        if base is not None and name.startswith("adapted"):
            print(f"{'  minus base':<22}" + "".join(f"{values[dim] - base[dim]:>+9.4f}" for dim in DIMS))


def ndcg_rows(scores: dict, query_set: str) -> dict[int, float]:
    return {dim: scores[query_set][dim]["ndcg@10"] for dim in DIMS}


def cranfield(out: Path, max_chunks: int, extra: list[str]) -> dict[str, Any]:
    layout = write_cranfield(out / "cranfield")
    config = write_config(out / "adapt.toml", max_chunks)
    in_corpus = out / "in_corpus"
    started = time.perf_counter()
    domainfit("run", str(layout.docs), "--out", str(in_corpus), "--config", str(config),
              "--queries", str(layout.queries_jsonl["all"]), *extra)
    run_minutes = (time.perf_counter() - started) / 60

    scorer = CranfieldScorer(layout.beir)
    base = scorer.dense("minilm")
    adapted = scorer.dense(str(in_corpus / "model"))
    bm25 = scorer.bm25()
    results: dict[str, Any] = {"in_corpus": {**stage_facts(in_corpus), "run_minutes": round(run_minutes, 1)}}
    for query_set in ("dev", "test", "all"):
        rows = {
            "base": ndcg_rows(base, query_set),
            "adapted": ndcg_rows(adapted, query_set),
            "BM25": {dim: bm25[query_set]["ndcg@10"] for dim in DIMS},
        }
        results["in_corpus"][query_set] = rows
        n_queries = len(scorer.sets[query_set]["rows"])
        print_table(f"in-corpus, {query_set} queries ({n_queries}, human-written), NDCG@10", rows, rows["base"])
    print(f"pairs {results['in_corpus']['pairs']}, synth {results['in_corpus']['synth_minutes']} min, "
          f"train {results['in_corpus']['train_minutes']} min, tokens {results['in_corpus']['tokens']}")

    half = derive_half_run(in_corpus, out / "out_of_corpus", layout.half_a_docs)
    domainfit("mine", str(half), "--config", str(config), "--no-progress")
    domainfit("train", str(half), "--config", str(config), "--no-progress")
    unseen = scorer.dense(str(half / "model"))
    rows = {
        "base": ndcg_rows(base, "unseen"),
        "adapted (half A)": ndcg_rows(unseen, "unseen"),
        "BM25": {dim: bm25["unseen"]["ndcg@10"] for dim in DIMS},
    }
    pairs = sum(1 for _ in (half / "pairs.jsonl").open(encoding="utf-8"))
    results["out_of_corpus"] = {"pairs": pairs, "unseen": rows}
    n_unseen = len(scorer.sets["unseen"]["rows"])
    print_table(f"out-of-corpus: adapted on half A ({pairs} pairs), scored on half B with {n_unseen} queries", rows,
                rows["base"])
    return results


def legal(out: Path, legal_args: str) -> dict[str, Any]:
    import bench_train

    arguments = ["--dataset", "legal", "--out", str(out / "legal"), *shlex.split(legal_args)]
    print("$ bench_train.py " + " ".join(arguments), flush=True)
    return bench_train.main(arguments)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "adapt")
    parser.add_argument("--max-chunks", type=int, default=CPU_MAX_CHUNKS, help="chunks sent to the LLM (spread)")
    parser.add_argument("--only", default="cranfield,legal", help="comma-separated: cranfield, legal")
    parser.add_argument("--legal-args", default=CPU_LEGAL_ARGS, help="arguments for bench_train.py --dataset legal")
    parser.add_argument("--full", action="store_true", help="500 chunks and the whole legal set, 4 epochs")
    parser.add_argument("--run-arg", dest="run_args", action="append", default=[],
                        help="extra argument for `domainfit run` (repeatable)")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    max_chunks = 500 if args.full else args.max_chunks
    legal_args = "--epochs 4" if args.full else args.legal_args
    results: dict[str, Any] = {"max_chunks": max_chunks}
    wanted = set(args.only.split(","))
    if "cranfield" in wanted:
        results["cranfield"] = cranfield(out, max_chunks, args.run_args)
    if "legal" in wanted:
        results["legal"] = legal(out, legal_args)
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"\nresults: {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
