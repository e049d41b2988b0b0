"""The rerank stage: fine-tune a cross-encoder on the run's pairs and mined negatives, and
measure two-stage retrieval (bi-encoder top k, then the cross-encoder) on the test split.

It reads the splits, the reviewed pairs, ``chunks.parquet``, ``triplets.parquet``
(when mined) and ``RUN/model`` (when trained), and writes:

* ``RUN/rerank/model/`` — the fine-tuned cross-encoder with its model card; loads
  with plain ``CrossEncoder("RUN/rerank/model")``;
* ``RUN/rerank/metrics.json`` and ``RUN/rerank/report.md`` — NDCG@10, MRR@10 and time
  per query of every combination of bi-encoder (base, fine-tuned) and re-ranker
  (none, the base cross-encoder when it is a trained one, the fine-tuned one).

Training uses the train split only (the same leak-free split as the bi-encoder);
validation re-ranks the val split's retrieved candidates after each epoch and keeps
the best checkpoint.

Example::

    result = run_rerank(RunDir("runs/demo"), load_config(overrides={"rerank.epochs": 1}))
    print(result.summary())
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..artifacts import RunDir, read_chunks, replace_dir, same_text_chunks, stage_run, write_json, write_text
from ..config import RunConfig
from ..vectors import ModelVectors, run_cache

from .data import choose_loss, rerank_rows, reranking_samples
from .evaluation import dense_candidates, pool_by_document, ranking_metrics, rerank_candidates
from .report import markdown_report, markdown_tables

CARD_TITLE = "## Trained with domainfit"
LOSS_NAMES = {"bce": "BinaryCrossEntropyLoss", "lambda": "LambdaLoss", "mnrl": "MultipleNegativesRankingLoss"}


@dataclass
class RerankResult:
    """What :func:`run_rerank` trained and measured; ``metrics`` is ``RUN/rerank/metrics.json``."""

    model_dir: Path
    base_model: str
    fresh_head: bool
    loss: str
    loss_note: str | None
    counts: dict[str, int]
    metrics: dict[str, Any] = field(default_factory=dict)
    best_metric: float | None = None
    seconds: float = 0.0

    def table(self) -> str:
        return markdown_tables(self.metrics)

    def summary(self) -> str:
        start = "a fresh one-logit head on the packaged MiniLM" if self.fresh_head else self.base_model
        lines = [
            f"fine-tuned a cross-encoder from {start}: {LOSS_NAMES[self.loss]}, "
            f"{self.counts.get('train_rows', 0)} rows from {self.counts.get('train_pairs', 0)} train pairs "
            f"({self.counts.get('pairs_with_negatives', 0)} with mined negatives), {self.seconds:.1f} s",
        ]
        if self.loss_note:
            lines.append(f"  note: {self.loss_note}")
        if self.best_metric is not None:
            lines.append(f"  best checkpoint by val ndcg@10 (re-ranking the top k) = {self.best_metric:.4f}")
        if self.table():
            lines += ["", self.table()]
        lines.append(f"  model: {self.model_dir}")
        return "\n".join(lines)


def run_rerank(run: RunDir, config: RunConfig, *, progress: bool = True) -> RerankResult:
    """Train the re-ranker on ``run`` and write ``RUN/rerank/`` (see the module doc).

    One-line errors before training: fewer than two training pairs, a
    ``rerank.base_model`` that is not a cross-encoder or is not on this machine, a
    tracker that is not installed. Without mined negatives it trains with in-batch
    negatives and says so (run ``domainfit mine`` for hard ones).
    """
    from ..splits import ensure_splits
    from ..models import enforce_offline, load_model, resolve, resolve_cross_encoder
    from ..review import reviewed_pairs
    from ..tracking import check_tracker, flat_metrics, log_final_metrics, trainer_reporting
    from ..triplets import read_negatives
    from .trainer import fit_cross_encoder

    enforce_offline(config.allow_downloads)
    settings = config.rerank
    check_tracker(config.train.report_to)
    location, fresh_head = resolve_cross_encoder(settings.base_model, allow_downloads=config.allow_downloads)
    started = time.perf_counter()
    with stage_run(run, "rerank", config_hash=config.stage_hash("rerank")) as record:
        splits = ensure_splits(run, config.split)
        pairs = {pair.pair_id: pair for pair in reviewed_pairs(run)[0]}
        chunks = read_chunks(run.chunks)
        chunk_text = {chunk.chunk_id: chunk.text for chunk in chunks}
        real = _real_queries(config.eval.queries, chunks) if config.eval.queries else None  # a bad file fails now
        split_pairs = {name: [pairs[pid] for pid in splits.ids(name) if pid in pairs] for name in ("train", "val", "test")}
        negatives = read_negatives(run) if run.triplets.exists() else {}
        train_ids = {pair.pair_id for pair in split_pairs["train"]}
        with_negatives = sum(1 for pid, texts in negatives.items() if pid in train_ids and texts)
        loss, note = choose_loss(settings.loss, with_negatives > 0)
        rows = rerank_rows(split_pairs["train"], chunk_text, negatives, loss=loss,
                           negatives_per_pair=settings.negatives_per_pair)
        counts = {"train_pairs": len(split_pairs["train"]), "train_rows": len(rows),
                  "pairs_with_negatives": with_negatives, "val_queries": len(split_pairs["val"]),
                  "test_queries": len(split_pairs["test"]), "corpus_chunks": len(chunks)}

        relevant_of = same_text_chunks(chunks)
        cache = run_cache(run, config)
        base_encoder = ModelVectors(cache, resolve(config.base_model, allow_downloads=config.allow_downloads),
                                    load=lambda: load_model(config.base_model, allow_downloads=config.allow_downloads),
                                    batch_size=config.eval.batch_size, settings=config.encode)
        samples = None
        if settings.validation and split_pairs["val"]:
            queries, relevant = _questions(split_pairs["val"], relevant_of)
            candidates, _ = dense_candidates(base_encoder, queries, chunk_text, k=settings.top_k,
                                            encode_settings=config.encode)
            samples = reranking_samples(queries, relevant, {q: [c for c, _ in found] for q, found in candidates.items()},
                                        chunk_text)
        report_to, callbacks = trainer_reporting(config.train.report_to, run)
        checkpoints = run.root / "rerank_checkpoints"
        model, history = fit_cross_encoder(
            location, rows, loss=loss, settings=settings, output_dir=checkpoints, fresh_head=fresh_head,
            validation_samples=samples, report_to=report_to, callbacks=callbacks, run_name=f"{run.root.name}-rerank",
            progress=progress,
        )
        best = _best(history)
        result = RerankResult(run.rerank_dir / "model", settings.base_model, fresh_head, loss, note, counts,
                              best_metric=best)
        _save_model(model, result.model_dir, result)
        shutil.rmtree(checkpoints, ignore_errors=True)

        result.metrics = _two_stage_metrics(run, config, split_pairs["test"], chunks, chunk_text, relevant_of,
                                            real, base_encoder, None if fresh_head else location, model, result)
        write_json(run.rerank_dir / "metrics.json", result.metrics)
        write_text(run.rerank_dir / "report.md", markdown_report(result.metrics))
        log_final_metrics(run, config.train.report_to,
                          flat_metrics({row["setup"]: {k: v for k, v in row.items() if k != "setup"}
                                        for row in result.metrics.get("rows", [])}, "rerank"))
        result.seconds = round(time.perf_counter() - started, 2)
        record.counts.update({**counts, **cache.counts()})
        record.details.update({"loss": LOSS_NAMES[loss], "loss_note": note, "fresh_head": fresh_head,
                               "best_val_ndcg_at_10": best, "main_table": result.table()})
    return result


def _questions(pairs, relevant_of) -> tuple[dict[str, str], dict[str, set[str]]]:
    usable = [pair for pair in pairs if pair.query.strip() and pair.chunk_id in relevant_of]
    return {pair.pair_id: pair.query for pair in usable}, {pair.pair_id: set(relevant_of[pair.chunk_id]) for pair in usable}


def _two_stage_metrics(run: RunDir, config: RunConfig, test_pairs, chunks, corpus, relevant_of, real, base_encoder,
                       base_reranker: str | None, finetuned_reranker, result: RerankResult) -> dict[str, Any]:
    """Every (bi-encoder, re-ranker) combination on the test split, dense rows first; and on the
    real queries of ``eval.queries`` (``real``, judged by document) when there are some.

    Both question sets go through one retrieval per bi-encoder and one re-ranking per
    cross-encoder, so each corpus is encoded once.
    """
    from sentence_transformers.cross_encoder import CrossEncoder

    from ..models import load_model

    settings = config.rerank
    queries, relevant = _questions(test_pairs, relevant_of)
    meta = {"queries": len(queries), "corpus": len(corpus), "top_k": settings.top_k, "base_model": settings.base_model,
            "fresh_head": result.fresh_head, "loss": LOSS_NAMES[result.loss], "loss_note": result.loss_note}
    # name -> (query texts, relevance, chunk -> document when judged by document, the ids a ranking is over)
    question_sets: dict[str, tuple[dict[str, str], dict[str, set[str]], dict[str, str] | None, dict[str, str]]] = {}
    if queries:
        question_sets["test"] = (queries, relevant, None, corpus)
    real_meta = None
    if real is not None:
        real_meta, real_queries, real_relevant = real
        document_of = {chunk.chunk_id: chunk.source for chunk in chunks}
        question_sets["real"] = (real_queries, real_relevant, document_of, dict.fromkeys(document_of.values(), ""))
    if not question_sets:
        return {"meta": meta, "rows": []}
    encoders = {"base": base_encoder}
    if (run.model_dir / "modules.json").exists():
        encoders["finetuned"] = ModelVectors(base_encoder.cache, run.model_dir, load=lambda: load_model(run.model_dir),
                                             batch_size=config.eval.batch_size, settings=config.encode)
    rerankers = {}
    if base_reranker is not None:
        rerankers["base reranker"] = CrossEncoder(base_reranker, max_length=settings.max_length)
    rerankers["finetuned reranker"] = finetuned_reranker
    every_query = {f"{name}\t{qid}": text for name, (texts, *_) in question_sets.items() for qid, text in texts.items()}
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in question_sets}

    def add_rows(setup: str, ranking, ms: float) -> None:
        for name, (texts, judged, document_of, ranked) in question_sets.items():
            mine = {qid: ranking[f"{name}\t{qid}"] for qid in texts}
            if document_of is not None:
                mine = pool_by_document(mine, document_of)
            rows[name].append({"setup": setup, **ranking_metrics(texts, ranked, judged, mine),
                               "ms_per_query": round(ms, 2)})

    for encoder_name, encoder in encoders.items():
        candidates, dense_ms = dense_candidates(encoder, every_query, corpus, k=settings.top_k,
                                                batch_size=config.eval.batch_size, encode_settings=config.encode)
        encoder.close()  # its vectors are in the cache; stop an encoding pool, if one started
        add_rows(f"{encoder_name} (dense top {settings.top_k})", candidates, dense_ms)
        for reranker_name, reranker in rerankers.items():
            reranked, rerank_ms = rerank_candidates(reranker, every_query, corpus, candidates,
                                                    batch_size=settings.predict_batch_size)
            add_rows(f"{encoder_name} + {reranker_name}", reranked, dense_ms + rerank_ms)
    metrics: dict[str, Any] = {"meta": meta, "rows": rows.get("test", [])}
    if real_meta is not None:
        metrics["real_queries"] = {"meta": real_meta, "rows": rows["real"]}
    return metrics


def _real_queries(path: str, chunks) -> tuple[dict[str, Any], dict[str, str], dict[str, set[str]]]:
    """The queries file of ``eval.queries`` judged against the run's documents: meta, texts, relevance."""
    from ..queries import judge_by_document, load_queries

    source = Path(path).name
    judged = judge_by_document(load_queries(path), chunks, source=source)
    meta = {"source": source, "queries": len(judged.queries), "documents": len(judged.documents),
            "unknown": judged.unknown.as_dict() if judged.unknown else None,
            "warning": judged.unknown.warning(source, len(judged.documents)) if judged.unknown else None}
    texts = {query.query_id: query.query for query in judged.queries}
    return meta, texts, {qid: set(docs) for qid, docs in judged.relevant.items()}


def _best(history: list[dict[str, Any]]) -> float | None:
    values = [entry["eval_val_ndcg@10"] for entry in history if isinstance(entry.get("eval_val_ndcg@10"), (int, float))]
    return round(float(max(values)), 4) if values else None


def _save_model(model, target: Path, result: RerankResult) -> None:
    """Save the cross-encoder with a domainfit card section, atomically (temp folder renamed into place)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        model.save_pretrained(str(staging))
        readme = staging / "README.md"
        text = readme.read_text(encoding="utf-8") if readme.exists() else "# Cross Encoder model\n"
        counts = result.counts
        start = ("the packaged all-MiniLM-L6-v2 transformer with a fresh one-logit head (no trained re-ranker was "
                 "available offline)") if result.fresh_head else f"`{result.base_model}`"
        section = "\n".join([
            CARD_TITLE, "",
            f"- **Started from:** {start}",
            f"- **Loss:** {LOSS_NAMES[result.loss]}" + (f" ({result.loss_note})" if result.loss_note else ""),
            f"- **Training pairs:** {counts['train_pairs']} ({counts['pairs_with_negatives']} with mined negatives; "
            f"{counts['train_rows']} rows), train split only",
            f"- **Validation:** {counts['val_queries']} questions, re-ranking their retrieved chunks"
            + (f"; best checkpoint val ndcg@10 = {result.best_metric:.4f}" if result.best_metric is not None else ""),
            "", "Load it with `CrossEncoder(path)`; score with `model.predict([(question, chunk), ...])`.", "",
        ])
        write_text(readme, text.rstrip() + "\n\n" + section)
        replace_dir(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)



