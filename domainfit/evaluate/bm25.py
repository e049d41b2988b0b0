"""The lexical baseline: BM25 with bm25s over the same corpus and queries.

Lucene's BM25 (k1 = 1.5, b = 0.75), lower-cased word tokens, English stop words, no
stemming (no extra dependency, and the same tokens everywhere). Scores for a block of
queries are ranked by the same function as dense scores, so ties are broken by
ascending corpus id in both.

Example::

    bm25 = BM25Retriever(task.corpus)
    ranked = bm25.top_k(task.queries, 100, corpus_rank=id_ranks(task.corpus_ids))
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .retrieval import rank_all

K1 = 1.5
B = 0.75


def _tokenize(texts: Sequence[str]) -> list[list[str]]:
    import bm25s

    return bm25s.tokenize(list(texts), stopwords="en", return_ids=False, show_progress=False)


class BM25Retriever:
    """A bm25s index of a corpus that scores queries against every entry."""

    def __init__(self, corpus: Sequence[str], *, k1: float = K1, b: float = B):
        import bm25s

        self.n_corpus = len(corpus)
        self.index = bm25s.BM25(k1=k1, b=b)
        self.index.index(_tokenize(corpus), show_progress=False)

    @staticmethod
    def fingerprint() -> str:
        """What identifies this baseline's results (library version and settings)."""
        from importlib import metadata

        return f"bm25s-{metadata.version('bm25s')}-lucene-k1={K1}-b={B}-en-stopwords"

    def scores(self, queries: Sequence[str]) -> torch.Tensor:
        """BM25 scores, one row per query, one column per corpus entry (float32)."""
        rows = np.zeros((len(queries), self.n_corpus), dtype=np.float32)
        for row, tokens in enumerate(_tokenize(queries)):
            ids = self.index.get_tokens_ids(tokens)
            if ids:
                rows[row] = self.index.get_scores_from_ids(ids)
        return torch.from_numpy(rows)

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
