"""Score models on Cranfield's human queries: one corpus encoding per model, every query set.

The four sets of :mod:`cranfield_data` share one corpus (``unseen`` is a subset of it),
so each model encodes the 1,400 abstracts once at full size; every Matryoshka dim is a
truncation of those vectors, and each query set is a slice of the same score matrix.
Metrics come from :func:`domainfit.evaluate.metrics.retrieval_metrics` (binary NDCG@10
as sentence-transformers computes it; ``graded_ndcg@10`` with Cranfield's grades).

Example::

    scorer = CranfieldScorer(layout)
    scorer.dense("minilm")          # {"dev": {384: {...}, 256: ...}, "test": ..., ...}
    scorer.bm25()
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from domainfit.artifacts import read_jsonl
from domainfit.evaluate.beir import read_qrels
from domainfit.evaluate.bm25 import BM25Retriever
from domainfit.evaluate.metrics import MetricSpec, retrieval_metrics

DIMS = (384, 256, 128, 64)
K = 100
SETS = ("dev", "test", "all", "unseen")


class CranfieldScorer:
    """Encodes the corpus once per model and scores every query set of a :class:`CranfieldLayout`."""

    def __init__(self, beir_folders: dict[str, Path], spec: MetricSpec | None = None):
        self.spec = spec or MetricSpec(accuracy_at_k=(1, 10), precision_recall_at_k=(10,), map_at_k=(100,))
        corpus = read_jsonl(beir_folders["all"] / "corpus.jsonl")
        self.doc_ids = [row["_id"] for row in corpus]
        self.doc_texts = [row["text"] for row in corpus]
        self.column = {doc_id: index for index, doc_id in enumerate(self.doc_ids)}
        self.sets: dict[str, dict[str, Any]] = {}
        all_queries = {row["_id"]: row["text"] for row in read_jsonl(beir_folders["all"] / "queries.jsonl")}
        self.query_ids = sorted(all_queries, key=int)
        self.query_texts = [all_queries[query_id] for query_id in self.query_ids]
        row_of = {query_id: index for index, query_id in enumerate(self.query_ids)}
        for name in SETS:
            folder = beir_folders[name]
            qrels = read_qrels(folder / "qrels" / "test.tsv")
            ids = [row["_id"] for row in read_jsonl(folder / "queries.jsonl")]
            corpus_ids = {row["_id"] for row in read_jsonl(folder / "corpus.jsonl")}
            self.sets[name] = {
                "rows": np.array([row_of[query_id] for query_id in ids]),
                "columns": np.array(sorted(self.column[doc_id] for doc_id in corpus_ids)),
                "qrels": [qrels[query_id] for query_id in ids],
            }

    def _metrics(self, scores: np.ndarray) -> dict[str, dict[str, float]]:
        """``scores``: (all queries x all docs). Returns metrics per query set."""
        out: dict[str, dict[str, float]] = {}
        for name, subset in self.sets.items():
            block = scores[np.ix_(subset["rows"], subset["columns"])]
            order = np.argsort(-block, axis=1, kind="stable")[:, :K]
            ranked_ids = [[self.doc_ids[subset["columns"][c]] for c in row] for row in order]
            grades = np.array([[judged.get(doc, 0) for doc in row] for row, judged in zip(ranked_ids, subset["qrels"])])
            ideal = np.zeros_like(grades, dtype=np.float64)
            for index, judged in enumerate(subset["qrels"]):
                best = sorted(judged.values(), reverse=True)[:K]
                ideal[index, : len(best)] = best
            n_relevant = np.array([len(judged) for judged in subset["qrels"]])
            out[name] = retrieval_metrics(grades > 0, n_relevant, self.spec, gains=grades, ideal_gains=ideal)
        return out

    def dense(self, model_path: str, dims: Sequence[int] = DIMS, batch_size: int = 32) -> dict[str, dict[int, dict]]:
        from domainfit.models import load_model

        model = load_model(model_path, device="cpu")
        docs = model.encode_document(self.doc_texts, batch_size=batch_size, convert_to_numpy=True)
        queries = model.encode_query(self.query_texts, batch_size=batch_size, convert_to_numpy=True)
        result: dict[str, dict[int, dict]] = {name: {} for name in SETS}
        for dim in dims:
            d = docs[:, :dim] / np.linalg.norm(docs[:, :dim], axis=1, keepdims=True)
            q = queries[:, :dim] / np.linalg.norm(queries[:, :dim], axis=1, keepdims=True)
            for name, metrics in self._metrics(q @ d.T).items():
                result[name][dim] = metrics
        return result

    def bm25(self) -> dict[str, dict]:
        scores = BM25Retriever(self.doc_texts).scores(self.query_texts).numpy()
        return self._metrics(scores)
