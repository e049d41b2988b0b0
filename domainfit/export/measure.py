"""Encode speed and retrieval quality of an exported model on the run's held-out questions.

Quality is sentence-transformers' ``InformationRetrievalEvaluator`` (test questions
against every chunk, cosine), so the numbers are the library's; speed is chunks
encoded per second at the export's batch size, after one warm-up batch, in this process
(the speed of one model replica, so the forms compare; ``[encode]`` pools are not used).

Example::

    measure_model(model, queries, corpus, relevant, batch_size=64)
    # {'ndcg@10': 0.71, 'mrr@10': 0.66, 'chunks_per_s': 412.0}
"""

from __future__ import annotations

import time
from typing import Mapping

from ..encoding import encode


def measure_model(
    model,
    queries: Mapping[str, str],
    corpus: Mapping[str, str],
    relevant: Mapping[str, set[str]],
    *,
    batch_size: int = 64,
) -> dict[str, float]:
    """NDCG@10, MRR@10 and chunks encoded per second of ``model`` (any sentence-transformers backend)."""
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    texts = list(corpus.values())
    encode(model, texts[:batch_size], kind="document", batch_size=batch_size, progress=False)
    started = time.perf_counter()
    encode(model, texts, kind="document", batch_size=batch_size, progress=False)
    seconds = time.perf_counter() - started
    evaluator = InformationRetrievalEvaluator(
        dict(queries), dict(corpus), {qid: set(ids) for qid, ids in relevant.items()},
        name="test", batch_size=batch_size, mrr_at_k=[10], ndcg_at_k=[10], accuracy_at_k=[1],
        precision_recall_at_k=[10], map_at_k=[100], show_progress_bar=False,
    )
    scores = evaluator(model)
    pick = lambda suffix: float(next(value for key, value in scores.items() if key.endswith(suffix)))  # noqa: E731
    return {
        "ndcg@10": round(pick("cosine_ndcg@10"), 4),
        "mrr@10": round(pick("cosine_mrr@10"), 4),
        "chunks_per_s": round(len(texts) / seconds, 1) if seconds > 0 else float("inf"),
    }
