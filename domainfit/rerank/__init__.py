"""rerank: fine-tune a cross-encoder on the run's pairs and mined negatives; measure two-stage retrieval.

``run_rerank(run, config)`` trains on the train split (question, positive chunk, mined
negatives from ``triplets.parquet``), validates on the val split, and writes
``RUN/rerank/model`` (plain ``CrossEncoder(path)``), ``RUN/rerank/metrics.json`` and
``RUN/rerank/report.md``.

Example::

    result = run_rerank(RunDir("runs/demo"), load_config())
    print(result.summary())
"""

from __future__ import annotations

from .data import choose_loss, rerank_rows, reranking_samples
from .evaluation import dense_candidates, pool_by_document, ranking_metrics, rerank_candidates
from .stage import RerankResult, run_rerank

__all__ = [
    "RerankResult",
    "choose_loss",
    "dense_candidates",
    "pool_by_document",
    "ranking_metrics",
    "rerank_candidates",
    "rerank_rows",
    "reranking_samples",
    "run_rerank",
]
