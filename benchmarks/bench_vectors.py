"""How much encoding the vector cache saves: a whole pipeline, and `eval --beir` called twice.

(a) **pipeline** — ``domainfit run`` on ``data/sample`` (``configs/demo.toml``, with the
    re-ranker on) and then ``domainfit export``, twice from the same synthesised pairs:
    once with ``vector_cache = false`` (every stage encodes for itself, as before the
    cache) and once with it on. Printed: texts encoded per stage and in all, the ratio.
    Synthesis (the local LLM) runs once; the cache-on run starts again from ``split``.
(b) **eval --beir twice** — ``domainfit eval --beir CRANFIELD --model minilm`` in two fresh
    processes with one ``--cache`` folder and two ``--out`` folders (so the second call
    cannot reuse metrics.json and has only the vector cache). Printed: both wall times,
    their ratio (goal >= 10x), texts encoded by each, and whether every metric of every
    model is identical (it must be; the script fails if not).

Run::

    .venv/bin/python benchmarks/bench_vectors.py                  # both parts
    .venv/bin/python benchmarks/bench_vectors.py --only beir      # (b) only, ~3 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CRANFIELD = ROOT.parent / "shared" / "benchmarks" / "cranfield"
SAMPLE = ROOT / "data" / "sample"
DEMO_CONFIG = ROOT / "configs" / "demo.toml"
AFTER_SYNTH = ("chunks.parquet", "pairs.jsonl", "rejected.jsonl", "synth_done.jsonl", "review.jsonl", "human.jsonl",
               "manifest.json")

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(ROOT))


def _stage_counts(run: Path) -> dict[str, int]:
    stages = json.loads((run / "manifest.json").read_text())["stages"]
    return {name: record.get("counts", {}).get("texts_encoded", 0) for name, record in stages.items()
            if "texts_encoded" in record.get("counts", {})}


def pipeline(out: Path) -> dict:
    """(a): texts encoded by split..export with the cache off, then on, from one synthesis."""
    from domainfit import vectors
    from domainfit.artifacts import RunDir
    from domainfit.config import load_config
    from domainfit.export import run_export
    from domainfit.pipeline import run_pipeline

    results = {}
    synth = out / "synth"
    for mode in ("off", "on"):
        run = RunDir(out / mode)
        if run.root.exists():
            shutil.rmtree(run.root)
        config = load_config(DEMO_CONFIG, {"vector_cache": mode == "on", "rerank.enabled": True})
        before = dict(vectors.totals)
        if synth.exists():  # the synthesised pairs of the first run; split onwards runs again
            run.root.mkdir(parents=True)
            for name in AFTER_SYNTH:
                if (synth / name).exists():
                    shutil.copy2(synth / name, run.root / name)
            outcome = run_pipeline(SAMPLE, run, config, from_stage="split", progress=False, log=lambda line: None)
        else:
            outcome = run_pipeline(SAMPLE, run, config, progress=False, log=lambda line: None)
            synth.mkdir(parents=True)
            for name in AFTER_SYNTH:
                if (run.root / name).exists():
                    shutil.copy2(run.root / name, synth / name)
        started = time.perf_counter()
        run_export(run, config, progress=False)
        seconds = time.perf_counter() - started + sum(s.seconds for s in outcome.outcomes if s.name != "synth")
        encoded = vectors.totals["texts_encoded"] - before["texts_encoded"]
        results[mode] = {"texts_encoded": encoded, "by_stage": _stage_counts(run.root), "seconds": round(seconds, 1),
                         "stages": {s.name: s.action for s in outcome.outcomes}}
        print(f"  cache {mode:<3}: {encoded:>5} texts encoded by split..export in {seconds:.0f}s (synth not counted); "
              f"by stage: {results[mode]['by_stage']}", flush=True)
    ratio = results["off"]["texts_encoded"] / max(1, results["on"]["texts_encoded"])
    print(f"  texts encoded: {results['off']['texts_encoded']} without the cache -> {results['on']['texts_encoded']} "
          f"with it ({ratio:.1f}x fewer)", flush=True)
    results["ratio"] = round(ratio, 2)
    return results


def _eval_beir(beir: Path, out: Path, cache: Path) -> tuple[float, dict, dict]:
    command = [sys.executable, "-m", "domainfit.cli", "eval", "--beir", str(beir), "--model", "minilm",
               "--out", str(out), "--cache", str(cache)]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    seconds = time.perf_counter() - started
    metrics = json.loads((out / "eval" / "metrics.json").read_text())
    counts = json.loads((out / "manifest.json").read_text())["stages"]["eval"]["counts"]
    return seconds, {label: rows for label, rows in metrics.items() if label != "meta"}, counts


def beir_twice(out: Path, beir: Path = CRANFIELD) -> dict:
    """(b): the same `eval --beir` in two fresh processes sharing one vector cache."""
    if not beir.exists():
        raise SystemExit(f"BEIR folder not found at {beir}")
    cache = out / "beir-cache"
    for path in (cache, out / "beir-first", out / "beir-second"):
        shutil.rmtree(path, ignore_errors=True)
    first_s, first, first_counts = _eval_beir(beir, out / "beir-first", cache)
    second_s, second, second_counts = _eval_beir(beir, out / "beir-second", cache)
    identical = first == second
    ratio = first_s / second_s
    print(f"  first call : {first_s:6.1f}s, {first_counts['texts_encoded']} texts encoded", flush=True)
    print(f"  second call: {second_s:6.1f}s, {second_counts['texts_encoded']} texts encoded, "
          f"{second_counts['texts_reused']} from the cache", flush=True)
    print(f"  ratio {ratio:.1f}x (goal >= 10x); metrics of {sorted(first)} identical: {identical}", flush=True)
    if not identical:
        raise SystemExit("the second call's metrics differ from the first's")
    return {"first_s": round(first_s, 1), "second_s": round(second_s, 1), "ratio": round(ratio, 1),
            "first_counts": first_counts, "second_counts": second_counts, "identical": identical,
            "ndcg@10": {dim: rows["ndcg@10"] for dim, rows in first["base"].items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-vectors")
    parser.add_argument("--only", choices=["pipeline", "beir"])
    parser.add_argument("--beir", type=Path, default=CRANFIELD, help="the BEIR folder of (b)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = {}
    if args.only in (None, "beir"):
        print(f"(b) eval --beir {args.beir} (Cranfield: 225 queries, 1,400 abstracts), base MiniLM + BM25, twice",
              flush=True)
        results["beir"] = beir_twice(args.out, args.beir)
    if args.only in (None, "pipeline"):
        print("(a) pipeline on data/sample (configs/demo.toml + rerank), then export", flush=True)
        results["pipeline"] = pipeline(args.out)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    print(f"results: {args.out / 'results.json'}")


if __name__ == "__main__":
    main()
