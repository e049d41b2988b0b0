"""Retrieval metrics from ranked results, computed exactly as sentence-transformers does.

Given, for every query, which of its top-ranked corpus entries are relevant (a
boolean ``hits`` matrix, one row per query, best rank first) and how many relevant
entries the query has, these functions return the same numbers as
``InformationRetrievalEvaluator.compute_metrics`` — vectorised over queries:

* ``accuracy@k``  — share of queries with a relevant entry in the top k
* ``precision@k`` — relevant in the top k / k (k even when fewer were retrieved)
* ``recall@k``    — relevant in the top k / number relevant
* ``mrr@k``       — 1 / rank of the first relevant entry in the top k, else 0
* ``ndcg@k``      — binary DCG@k / ideal DCG@k with ``min(relevant, k)`` ones
* ``map@k``       — sum of precision at each relevant rank / ``min(k, relevant)``

``graded_ndcg@k`` (an extra for graded qrels such as BEIR's) uses the grades as
linear gains, as trec_eval's ``ndcg_cut`` does.

Example::

    spec = MetricSpec.from_config(EvalConfig())
    scores = retrieval_metrics(hits, n_relevant, spec)
    scores["ndcg@10"]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import IR_CUTOFFS, EvalConfig


@dataclass(frozen=True)
class MetricSpec:
    """The cut-offs of each metric (sentence-transformers' evaluator defaults, ``config.IR_CUTOFFS``)."""

    accuracy_at_k: tuple[int, ...] = IR_CUTOFFS["accuracy_at_k"]
    precision_recall_at_k: tuple[int, ...] = IR_CUTOFFS["precision_recall_at_k"]
    mrr_at_k: tuple[int, ...] = IR_CUTOFFS["mrr_at_k"]
    ndcg_at_k: tuple[int, ...] = IR_CUTOFFS["ndcg_at_k"]
    map_at_k: tuple[int, ...] = IR_CUTOFFS["map_at_k"]

    @classmethod
    def from_config(cls, config: EvalConfig) -> "MetricSpec":
        return cls(
            accuracy_at_k=tuple(config.accuracy_at_k),
            precision_recall_at_k=tuple(config.precision_recall_at_k),
            mrr_at_k=tuple(config.mrr_at_k),
            ndcg_at_k=tuple(config.ndcg_at_k),
            map_at_k=tuple(config.map_at_k),
        )

    @property
    def max_k(self) -> int:
        """How many ranked results per query every metric together needs."""
        return max(
            *self.accuracy_at_k, *self.precision_recall_at_k, *self.mrr_at_k, *self.ndcg_at_k, *self.map_at_k
        )

    def names(self, *, graded: bool = False) -> list[str]:
        """Metric names in sentence-transformers' order, e.g. ``accuracy@1`` … ``map@100``."""
        names = [f"accuracy@{k}" for k in self.accuracy_at_k]
        names += [f"precision@{k}" for k in self.precision_recall_at_k]
        names += [f"recall@{k}" for k in self.precision_recall_at_k]
        names += [f"ndcg@{k}" for k in self.ndcg_at_k]
        names += [f"mrr@{k}" for k in self.mrr_at_k]
        names += [f"map@{k}" for k in self.map_at_k]
        if graded:
            names += [f"graded_ndcg@{k}" for k in self.ndcg_at_k]
        return names


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(k, dtype=np.float64) + 2.0)


def _at(matrix: np.ndarray, k: int) -> np.ndarray:
    """The first ``k`` columns, zero-padded when fewer than ``k`` results exist."""
    block = matrix[:, :k]
    if block.shape[1] < k:
        block = np.pad(block, ((0, 0), (0, k - block.shape[1])))
    return block


def retrieval_metrics(
    hits: np.ndarray,
    n_relevant: np.ndarray,
    spec: MetricSpec,
    *,
    gains: np.ndarray | None = None,
    ideal_gains: np.ndarray | None = None,
) -> dict[str, float]:
    """Mean metrics over queries, named as sentence-transformers names them.

    ``hits``: bool (queries × ranked results), best first. ``n_relevant``: relevant
    entries per query (each ≥ 1). ``gains`` / ``ideal_gains`` (queries × ranked, and
    queries × grades sorted high to low, zero-padded) add ``graded_ndcg@k``.
    """
    hits = np.asarray(hits, dtype=bool)
    n_relevant = np.asarray(n_relevant, dtype=np.float64)
    if hits.ndim != 2 or hits.shape[0] != n_relevant.shape[0]:
        raise ValueError("hits must be (queries x ranks) with one n_relevant per query")
    if np.any(n_relevant < 1):
        raise ValueError("every query needs at least one relevant entry")
    scores: dict[str, float] = {}
    for k in spec.accuracy_at_k:
        scores[f"accuracy@{k}"] = float(_at(hits, k).any(axis=1).mean())
    for k in spec.precision_recall_at_k:
        found = _at(hits, k).sum(axis=1)
        scores[f"precision@{k}"] = float(np.mean(found / k))
        scores[f"recall@{k}"] = float(np.mean(found / n_relevant))
    for k in spec.ndcg_at_k:
        top = _at(hits, k).astype(np.float64)
        discounts = _discounts(k)
        dcg = top @ discounts
        ideal = np.cumsum(discounts)[np.minimum(n_relevant, k).astype(int) - 1]
        scores[f"ndcg@{k}"] = float(np.mean(dcg / ideal))
    for k in spec.mrr_at_k:
        top = _at(hits, k)
        first = top.argmax(axis=1)
        scores[f"mrr@{k}"] = float(np.mean(np.where(top.any(axis=1), 1.0 / (first + 1.0), 0.0)))
    for k in spec.map_at_k:
        top = _at(hits, k).astype(np.float64)
        precision_at_rank = np.cumsum(top, axis=1) / np.arange(1, k + 1, dtype=np.float64)
        average_precision = (precision_at_rank * top).sum(axis=1) / np.minimum(n_relevant, k)
        scores[f"map@{k}"] = float(np.mean(average_precision))
    if gains is not None and ideal_gains is not None:
        for k in spec.ndcg_at_k:
            discounts = _discounts(k)
            dcg = _at(np.asarray(gains, dtype=np.float64), k) @ discounts
            ideal = _at(np.asarray(ideal_gains, dtype=np.float64), k) @ discounts
            scores[f"graded_ndcg@{k}"] = float(np.mean(dcg / ideal))
    return {name: scores[name] for name in spec.names(graded=gains is not None and ideal_gains is not None)}


def score_ranking(
    ranked: np.ndarray, relevant: list[dict[int, int]], n_corpus: int, spec: MetricSpec, *, graded: bool
) -> dict[str, float]:
    """Metrics of a ranking (query × top-k indices) against per-query relevance by index.

    ``relevant[q]`` maps an index of the ranked entries (corpus entries, or documents
    when chunks are pooled) to its grade; ``n_corpus`` is how many entries there are.
    """
    from .retrieval import relevance_matrix

    grades, n_relevant = relevance_matrix(ranked, relevant, n_corpus)
    if not graded:
        return retrieval_metrics(grades > 0, n_relevant, spec)
    ideal = np.zeros_like(grades)
    for row, judged in enumerate(relevant):
        best = sorted(judged.values(), reverse=True)[: grades.shape[1]]
        ideal[row, : len(best)] = best
    return retrieval_metrics(grades > 0, n_relevant, spec, gains=grades, ideal_gains=ideal)
