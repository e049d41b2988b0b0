"""The lexical baseline: :mod:`domainfit.bm25` over the same corpus and queries.

Scores for a block of queries are ranked by the same function as dense scores, so
ties are broken by ascending corpus id in both.

Example::

    bm25 = BM25Retriever(task.corpus)
    ranked = bm25.top_k(task.queries, 100, corpus_rank=id_ranks(task.corpus_ids))
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..bm25 import BM25Index
from .retrieval import rank_all

class BM25Retriever:
    """The shared :class:`~domainfit.bm25.BM25Index`, ranked like dense scores (torch, ties by corpus id)."""

    fingerprint = staticmethod(BM25Index.fingerprint)

    def __init__(self, corpus: Sequence[str]):
        self.index = BM25Index(corpus)
        self.n_corpus = self.index.n_corpus

    def scores(self, queries: Sequence[str]) -> torch.Tensor:
        """BM25 scores, one row per query, one column per corpus entry (float32)."""
        return torch.from_numpy(self.index.scores(queries))

    def top_k(
        self, queries: Sequence[str], k: int, *, corpus_rank: torch.Tensor, budget_mb: float = 256.0
    ) -> np.ndarray:
        """Top-``k`` corpus indices per query, best first, ties by ascending corpus id."""
        return rank_all(
            lambda start, stop: self.scores(queries[start:stop]),
            len(queries),
            self.n_corpus,
            k,
            corpus_rank,
            budget_mb=budget_mb,
        )
