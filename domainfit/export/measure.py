"""Encode speed and retrieval quality of each exported form on the run's held-out questions.

Every form (the PyTorch model, the ONNX graph, its int8 copy) is measured the same
way: the test questions and every chunk are encoded by the form itself, ranked by
cosine, and scored by sentence-transformers' ``InformationRetrievalEvaluator.compute_metrics``,
so the numbers are the library's and differ between forms only by their vectors.
Speed is chunks encoded per second at the export's batch size, after one warm-up batch,
in this process (one replica of each form, so the forms compare; ``[encode]`` pools are
not used).

Example::

    measure_encoder(model.encode_query, model.encode_document, queries, corpus, relevant, batch_size=64)
    # {'ndcg@10': 0.71, 'mrr@10': 0.66, 'chunks_per_s': 412.0}
"""

from __future__ import annotations

import time
from typing import Callable, Mapping, Sequence

import numpy as np

from ..encoding import encode, unit_rows

Encode = Callable[[Sequence[str], int], np.ndarray]
TOP_K = 100


def measure_encoder(
    encode_query: Encode,
    encode_document: Encode,
    queries: Mapping[str, str],
    corpus: Mapping[str, str],
    relevant: Mapping[str, set[str]],
    *,
    batch_size: int = 64,
) -> dict[str, float]:
    """NDCG@10, MRR@10 and chunks encoded per second of one form, given its two encode functions.

    ``encode_query(texts, batch_size)`` and ``encode_document(texts, batch_size)`` return
    one vector per text (any length: scores are cosine).
    """
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    corpus_ids, texts = list(corpus), list(corpus.values())
    encode_document(texts[:batch_size], batch_size)
    started = time.perf_counter()
    documents = unit_rows(encode_document(texts, batch_size))
    seconds = time.perf_counter() - started
    evaluator = InformationRetrievalEvaluator(
        dict(queries), dict(corpus), {qid: set(ids) for qid, ids in relevant.items()},
        name="test", batch_size=batch_size, mrr_at_k=[10], ndcg_at_k=[10], accuracy_at_k=[1],
        precision_recall_at_k=[10], map_at_k=[TOP_K], show_progress_bar=False,
    )
    questions = unit_rows(encode_query(evaluator.queries, batch_size))
    scores = evaluator.compute_metrics(_top_hits(questions @ documents.T, corpus_ids, TOP_K))
    return {
        "ndcg@10": round(float(scores["ndcg@k"][10]), 4),
        "mrr@10": round(float(scores["mrr@k"][10]), 4),
        "chunks_per_s": round(len(texts) / seconds, 1) if seconds > 0 else float("inf"),
    }


def measure_model(model, queries, corpus, relevant, *, batch_size: int = 64) -> dict[str, float]:
    """:func:`measure_encoder` for a ``SentenceTransformer`` (its own prompts and ``truncate_dim``)."""
    def encoder(kind):
        return lambda texts, size: encode(model, texts, kind=kind, batch_size=size, progress=False)

    return measure_encoder(encoder("query"), encoder("document"), queries, corpus, relevant, batch_size=batch_size)




def _top_hits(scores: np.ndarray, corpus_ids: list[str], k: int) -> list[list[dict]]:
    """The evaluator's ``queries_result_list``: each query's ``k`` best chunks with their scores."""
    k = min(k, scores.shape[1])
    best = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return [
        [{"corpus_id": corpus_ids[index], "score": float(row[index])} for index in indices]
        for row, indices in zip(scores, best)
    ]
