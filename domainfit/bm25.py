"""BM25 over a list of texts with bm25s: one tokenizer and one set of settings for the run.

Lucene's BM25 (k1 = 1.5, b = 0.75), lower-cased word tokens, English stop words, no
stemming (no extra dependency, and the same tokens everywhere). Synth's round-trip
filter and eval's lexical baseline both score with this index, so "BM25" means one
thing in a run. bm25s loads on first use.

Example::

    index = BM25Index(["the turbine warranty is five years", "pumps are serviced yearly"])
    index.scores(["turbine warranty"])      # float32 array, one row per query
    index.top(["turbine warranty"][0], 1)   # [(0, 1.23...)]
"""

from __future__ import annotations

from importlib import metadata
from typing import Sequence

import numpy as np

K1 = 1.5
B = 0.75


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    """Lower-cased word tokens without English stop words, one list per text."""
    import bm25s

    return bm25s.tokenize(list(texts), stopwords="en", return_ids=False, show_progress=False)


class BM25Index:
    """A bm25s index of ``corpus`` that scores queries against every entry."""

    def __init__(self, corpus: Sequence[str], *, k1: float = K1, b: float = B):
        import bm25s

        self.n_corpus = len(corpus)
        self.index = bm25s.BM25(k1=k1, b=b)
        self.index.index(tokenize(corpus), show_progress=False)

    @staticmethod
    def fingerprint() -> str:
        """What identifies these scores (library version and settings)."""
        return f"bm25s-{metadata.version('bm25s')}-lucene-k1={K1}-b={B}-en-stopwords"

    def scores(self, queries: Sequence[str]) -> np.ndarray:
        """BM25 scores, one row per query, one column per corpus entry (float32)."""
        rows = np.zeros((len(queries), self.n_corpus), dtype=np.float32)
        for row, tokens in enumerate(tokenize(queries)):
            ids = self.index.get_tokens_ids(tokens)
            if ids:
                rows[row] = self.index.get_scores_from_ids(ids)
        return rows

    def top(self, query: str, k: int) -> list[tuple[int, float]]:
        """The ``k`` best (corpus index, score) pairs for one query, best first; [] for no tokens."""
        k = min(k, self.n_corpus)
        tokens = tokenize([query])
        if k == 0 or not tokens[0]:
            return []
        documents, scores = self.index.retrieve(tokens, k=k, show_progress=False)
        return [(int(index), float(score)) for index, score in zip(documents[0], scores[0])]
