"""Scoring models on a :class:`RetrievalTask`: dense at every dim, BM25 once, reuse of earlier results.

Each dense model encodes the corpus and the queries once, at full size; every dim
is derived by truncation and renormalisation (see :mod:`.retrieval`). Results equal
sentence-transformers' ``InformationRetrievalEvaluator(truncate_dim=d)`` on the
same data and batch size.

Example::

    metrics, reused = evaluate_task(task, candidate_models(config), config)
    metrics["base"]["128"]["ndcg@10"], metrics["bm25"]["full"]["ndcg@10"]
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ..artifacts import content_hash, utc_now
from ..config import EncodeConfig, RunConfig
from ..errors import EvaluationError
from ..vectors import ModelVectors, VectorCache
from . import render
from .by_style import metrics_by_style
from .candidates import ModelSpec, load_dense, matryoshka_dims, model_weights_fingerprint
from .metrics import MetricSpec, score_ranking
from .task import RetrievalTask


def _rank(task: RetrievalTask, score_block, k: int, budget_mb: float) -> np.ndarray:
    """Top-k per query over the task's ranked entries (documents are max-pooled chunks)."""
    from .pooling import rank_entries

    return rank_entries(score_block, len(task.queries), task.corpus_ids, k, document_ids=task.document_ids,
                        document_of=task.document_of, budget_mb=budget_mb)


@dataclass
class ModelResult:
    """One model's metrics and costs, keyed by dim (a string, ``full`` for BM25).

    ``rankings`` (top-k indices per query, per dim) are kept in memory for fusion; they
    are not written anywhere.
    """

    metrics: dict[str, dict[str, float]]
    latency_ms: dict[str, dict[str, float]]
    similarity: str = "cosine"
    seconds: float = 0.0
    model_dim: int | None = None
    rankings: dict[str, np.ndarray] = field(default_factory=dict, repr=False)


def evaluate_dense(model, task: RetrievalTask, dims: Sequence[int], spec: MetricSpec, *, batch_size: int = 32,
                   budget_mb: float = 256.0, graded: bool | None = None,
                   encode_settings: EncodeConfig | None = None) -> ModelResult:
    """Encode once at full size, then rank and score at every dim by truncation + renormalisation.

    ``model`` is a SentenceTransformer (everything is encoded) or a
    :class:`~domainfit.vectors.ModelVectors` (only texts its cache lacks are encoded;
    the encode latency of a cached query is the one measured when it was encoded).
    Cosine scores unless the model's similarity is ``dot`` (then truncated, not renormalised).
    With a task judged by document, each document ranks by its best chunk. The corpus
    is encoded as ``encode_settings`` says (a pool, for a large one); the queries stay
    in this process, since their time is the reported per-query latency.
    """
    import torch

    from .retrieval import truncate

    vectors = model if isinstance(model, ModelVectors) else ModelVectors(
        VectorCache.disabled(), model=model, batch_size=batch_size, settings=encode_settings)
    similarity = vectors.similarity
    if similarity not in ("cosine", "dot"):
        raise EvaluationError(f"model similarity {similarity!r} is not supported; use a cosine or dot model")
    graded = task.graded if graded is None else graded
    started = time.perf_counter()
    try:
        query_array = vectors.encode(task.queries, "query")
        encode_ms = vectors.cache.last_ms_per_text
        corpus_array = vectors.encode(task.corpus, "document")
    finally:
        if vectors is not model:
            vectors.close()
    device = vectors.model.device if vectors.model_loaded else "cpu"  # score where the model runs (a GPU)
    queries, corpus = torch.from_numpy(query_array).to(device), torch.from_numpy(corpus_array).to(device)
    relevant = task.relevance_by_index()
    results, latency, rankings = {}, {}, {}
    for dim in dims:
        if dim > corpus.shape[1]:
            raise EvaluationError(f"dim {dim} is larger than the model's {corpus.shape[1]}")
        normalize = similarity == "cosine"
        began = time.perf_counter()
        query_vectors = truncate(queries, dim, normalize=normalize)
        corpus_t = truncate(corpus, dim, normalize=normalize).transpose(0, 1)
        ranked = _rank(task, lambda a, b: torch.mm(query_vectors[a:b], corpus_t), spec.max_k, budget_mb)
        search_ms = (time.perf_counter() - began) * 1000 / len(task.queries)
        results[str(dim)] = score_ranking(ranked, relevant, len(task.ranked_ids), spec, graded=graded)
        latency[str(dim)] = _latency(encode_ms, search_ms)
        rankings[str(dim)] = ranked
    return ModelResult(results, latency, similarity, time.perf_counter() - started, int(corpus.shape[1]), rankings)


def evaluate_bm25(task: RetrievalTask, spec: MetricSpec, *, budget_mb: float = 256.0,
                  graded: bool | None = None) -> ModelResult:
    """BM25 (bm25s) over the same corpus and queries: one result under the ``full`` key."""
    from .bm25 import BM25Retriever

    graded = task.graded if graded is None else graded
    started = time.perf_counter()
    retriever = BM25Retriever(task.corpus)
    began = time.perf_counter()
    ranked = _rank(task, lambda a, b: retriever.scores(task.queries[a:b]), spec.max_k, budget_mb)
    search_ms = (time.perf_counter() - began) * 1000 / len(task.queries)
    metrics = score_ranking(ranked, task.relevance_by_index(), len(task.ranked_ids), spec, graded=graded)
    return ModelResult({render.FULL: metrics}, {render.FULL: _latency(0.0, search_ms)}, "bm25",
                       time.perf_counter() - started, rankings={render.FULL: ranked})


def evaluate_hybrid(task: RetrievalTask, dense: ModelResult, bm25: ModelResult, spec: MetricSpec, *,
                    k: int = 60, graded: bool | None = None) -> ModelResult:
    """Dense + BM25 by reciprocal rank fusion at every dim of ``dense`` (both need their rankings)."""
    from .fusion import fuse
    from .retrieval import id_ranks

    graded = task.graded if graded is None else graded
    started = time.perf_counter()
    lexical = bm25.rankings[render.FULL]
    entry_rank, relevant = id_ranks(task.ranked_ids), task.relevance_by_index()
    results, latency, rankings = {}, {}, {}
    for dim, ranked in dense.rankings.items():
        began = time.perf_counter()
        fused = fuse([ranked, lexical], len(task.ranked_ids), spec.max_k, entry_rank, k=k)
        fuse_ms = (time.perf_counter() - began) * 1000 / len(task.queries)
        results[dim] = score_ranking(fused, relevant, len(task.ranked_ids), spec, graded=graded)
        rankings[dim] = fused
        dense_ms, bm25_ms = dense.latency_ms.get(dim, {}), bm25.latency_ms.get(render.FULL, {})
        latency[dim] = _latency(dense_ms.get("encode", 0.0),
                                dense_ms.get("search", 0.0) + bm25_ms.get("search", 0.0) + fuse_ms)
    return ModelResult(results, latency, "rrf", time.perf_counter() - started, dense.model_dim, rankings)


def model_vectors(spec: ModelSpec, config: RunConfig, cache: VectorCache) -> ModelVectors:
    """``spec``'s vectors through ``cache``, loading the model only when a text must be encoded."""
    from ..models import resolve

    return ModelVectors(cache, resolve(spec.location, allow_downloads=config.allow_downloads),
                        load=lambda: load_dense(spec.location, allow_downloads=config.allow_downloads),
                        batch_size=config.eval.batch_size, settings=config.encode)


def _hybrids(task: RetrievalTask, specs: Sequence[ModelSpec], config: RunConfig, spec: MetricSpec,
             done: dict[str, ModelResult], fingerprints: dict[str, str], previous: dict[str, Any] | None,
             hashes: dict[str, str], cache: VectorCache):
    """``base+bm25`` and ``finetuned+bm25`` (when both parts were evaluated): reused or fused.

    A part whose result was reused from an earlier metrics.json has no rankings, so it
    is evaluated again (BM25 is cheap; a dense model's vectors come from the cache).
    """
    if not config.eval.hybrid or render.BM25 not in fingerprints:
        return
    by_label = {model_spec.label: model_spec for model_spec in specs}
    for label in (render.BASE, render.FINETUNED):
        if label not in fingerprints or by_label[label].is_bm25:
            continue
        dense_fp, bm25_fp = fingerprints[label], fingerprints[render.BM25]
        fingerprint = f"rrf-k{config.eval.rrf_k}:{dense_fp}+{bm25_fp}"
        dims = list(done[dense_fp].metrics)
        result = _previous_result(previous, fingerprint, hashes, lambda model_dim: dims)
        if result is not None:
            yield label + render.HYBRID_SUFFIX, f"{label} + bm25 (RRF)", fingerprint, result, True
            continue
        if not done[dense_fp].rankings:
            with model_vectors(by_label[label], config, cache) as vectors:
                done[dense_fp] = evaluate_dense(vectors, task, [int(dim) for dim in dims], spec,
                                                batch_size=config.eval.batch_size, budget_mb=config.eval.score_block_mb)
        if not done[bm25_fp].rankings:
            done[bm25_fp] = evaluate_bm25(task, spec, budget_mb=config.eval.score_block_mb)
        result = evaluate_hybrid(task, done[dense_fp], done[bm25_fp], spec, k=config.eval.rrf_k)
        yield label + render.HYBRID_SUFFIX, f"{label} + bm25 (RRF)", fingerprint, result, False


def _latency(encode_ms: float, search_ms: float) -> dict[str, float]:
    return {"encode": round(encode_ms, 4), "search": round(search_ms, 4), "total": round(encode_ms + search_ms, 4)}


def _previous_result(previous: dict[str, Any] | None, fingerprint: str, hashes: dict[str, str],
                     wanted_dims: Callable[[int], list[str]]) -> ModelResult | None:
    """A result in an earlier metrics.json made from the same inputs and the same weights (any label)."""
    if not previous:
        return None
    meta = previous.get(render.META, {})
    if any(meta.get(key) != value for key, value in hashes.items()):
        return None
    for label, info in meta.get("models", {}).items():
        if info.get("fingerprint") != fingerprint or label not in previous:
            continue
        stored = previous[label]
        try:
            dims = wanted_dims(int(info.get("model_dim") or 0))
        except EvaluationError:
            continue
        if dims and all(dim in stored for dim in dims):
            latency = meta.get("latency_ms_per_query", {}).get(label, {})
            return ModelResult({dim: stored[dim] for dim in dims}, {dim: latency.get(dim, {}) for dim in dims},
                               info.get("similarity", "cosine"), float(info.get("seconds") or 0.0),
                               info.get("model_dim"))
    return None


def _say(line: str) -> None:
    """A progress line on stderr (between any progress bars): a long eval is never silent."""
    import sys

    from tqdm.auto import tqdm

    tqdm.write(line, file=sys.stderr)


def _headline(metrics: dict[str, dict[str, float]], metric: str) -> str:
    """``ndcg@10 384: 0.6123, 64: 0.5102`` (or the one score of BM25)."""
    scores = [(dim, values[metric]) for dim, values in metrics.items() if metric in values]
    return f"{metric} " + ", ".join(f"{dim}: {score:.4f}" if dim != render.FULL else f"{score:.4f}" for dim, score in scores)


def evaluate_task(
    task: RetrievalTask,
    specs: Sequence[ModelSpec],
    config: RunConfig,
    *,
    previous: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
    cache: VectorCache | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Evaluate every model on ``task``; returns the nested metrics (with ``meta``) and the reused labels.

    ``previous`` is an earlier metrics.json: models found there (under any label) with
    the same corpus, queries, metric settings and weights are reused, not re-encoded.
    ``cache`` holds the vectors (default: none kept); texts it has are not encoded again.
    """
    from tqdm.auto import tqdm

    cache = cache if cache is not None else VectorCache.disabled()
    task.validate(task.name)
    spec = MetricSpec.from_config(config.eval)
    graded = task.graded
    hashes = {**task.fingerprints(), "metrics_hash": content_hash(*spec.names(graded=graded))}
    metrics: dict[str, Any] = {}
    models_meta: dict[str, Any] = {}
    latency: dict[str, Any] = {}
    reused: list[str] = []
    done: dict[str, ModelResult] = {}  # same weights under two labels are evaluated once
    by_label: dict[str, ModelResult] = {}
    fingerprints: dict[str, str] = {}
    budget = config.eval.score_block_mb
    for model_spec in tqdm(specs, desc="eval models", unit="model", disable=None):
        fingerprint = model_weights_fingerprint(model_spec, config.allow_downloads)
        fingerprints[model_spec.label] = fingerprint
        if model_spec.is_bm25:
            wanted: Callable[[int], list[str]] = lambda model_dim: [render.FULL]
        else:
            wanted = lambda model_dim: [str(dim) for dim in matryoshka_dims(config, model_dim)]
        result = done.get(fingerprint) or _previous_result(previous, fingerprint, hashes, wanted)
        if result is not None:
            reused.append(model_spec.label)
            _say(f"eval: {model_spec.label}: unchanged, reused from the last evaluation")
        elif model_spec.is_bm25:
            _say(f"eval: {model_spec.label}: indexing {len(task.corpus):,} documents")
            result = evaluate_bm25(task, spec, budget_mb=budget, graded=graded)
        else:
            _say(f"eval: {model_spec.label}: encoding {len(task.queries):,} queries and {len(task.corpus):,} documents "
                 f"({model_spec.location})")
            before = cache.encoded, cache.reused
            with model_vectors(model_spec, config, cache) as vectors:
                dims = matryoshka_dims(config, vectors.dim)
                result = evaluate_dense(vectors, task, dims, spec, batch_size=config.eval.batch_size,
                                        budget_mb=budget, graded=graded)
            if cache.enabled:
                encoded, found = cache.encoded - before[0], cache.reused - before[1]
                _say(f"eval: {model_spec.label}: {encoded:,} texts encoded, {found:,} from the vector cache")
        if model_spec.label not in reused:
            _say(f"eval: {model_spec.label}: {_headline(result.metrics, config.eval.main_metric)} in {result.seconds:.0f}s")
        done[fingerprint] = result
        by_label[model_spec.label] = result
        metrics[model_spec.label] = result.metrics
        latency[model_spec.label] = result.latency_ms
        models_meta[model_spec.label] = {
            "location": model_spec.location,
            "fingerprint": fingerprint,
            "similarity": result.similarity,
            "dims": list(result.metrics),
            "model_dim": result.model_dim,
            "seconds": round(result.seconds, 3),
        }
    for label, location, fingerprint, result, was_reused in _hybrids(
        task, specs, config, spec, done, fingerprints, previous, hashes, cache
    ):
        reused += [label] if was_reused else []
        by_label[label] = result
        metrics[label] = result.metrics
        latency[label] = result.latency_ms
        models_meta[label] = {"location": location, "fingerprint": fingerprint, "similarity": "rrf",
                              "dims": list(result.metrics), "model_dim": result.model_dim,
                              "seconds": round(result.seconds, 3), "rrf_k": config.eval.rrf_k}
    by_label.update({label: done[fp] for label, fp in fingerprints.items() if done[fp].rankings})  # re-ranked for RRF
    by_style = metrics_by_style(task, by_label, spec, config.eval.main_metric, graded=graded,
                                previous=(previous or {}).get(render.META, {}).get("by_style"))
    all_dims = sorted({dim for rows in metrics.values() for dim in rows if dim != render.FULL}, key=int, reverse=True)
    metrics[render.META] = {
        "name": task.name,
        **(meta or {}),
        **task.counts(),
        "graded": graded,
        "main_metric": config.eval.main_metric,
        "metric_names": spec.names(graded=graded),
        "batch_size": config.eval.batch_size,
        "models": models_meta,
        "bytes_per_vector": {dim: 4 * int(dim) for dim in all_dims},
        "latency_ms_per_query": latency,
        **({"by_style": by_style} if by_style else {}),
        **hashes,
        "created": utc_now(),
    }
    return metrics, reused
