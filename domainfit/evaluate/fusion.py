"""Hybrid retrieval by reciprocal rank fusion (RRF) of a dense ranking and BM25's.

An entry's fused score is ``sum over systems of 1 / (k + rank)`` (rank from 1, in
each system's top list; absent = no contribution), Cormack et al. 2009, ``k = 60``
by default (``eval.rrf_k``). Fused scores are ranked like every other score (ties by
ascending id), so a hybrid row is scored with the same metrics, at every dim of its
dense model. Each system contributes its top ``max_k`` entries (100 with ``map@100``),
the depth the evaluation ranks to anyway.

Example (hand-made rankings of 3 entries by two systems)::

    scores = rrf_scores([np.array([[0, 1, 2]]), np.array([[2, 0, 1]])], 3, k=60)
    # entry 0: 1/61 + 1/62, entry 1: 1/62 + 1/63, entry 2: 1/63 + 1/61 -> order 0, 2, 1
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

RRF_K = 60


def rrf_scores(rankings: Sequence[np.ndarray], n_entries: int, *, k: int = RRF_K) -> torch.Tensor:
    """(queries × entries) fused scores from rankings (each queries × depth of entry indices, best first)."""
    if not rankings:
        raise ValueError("fusion needs at least one ranking")
    n_queries = rankings[0].shape[0]
    scores = torch.zeros((n_queries, n_entries), dtype=torch.float64)
    for ranked in rankings:
        if ranked.shape[0] != n_queries:
            raise ValueError("every ranking needs one row per query")
        index = torch.as_tensor(np.asarray(ranked, dtype=np.int64))
        gains = 1.0 / (k + torch.arange(1, index.shape[1] + 1, dtype=torch.float64))
        scores.scatter_add_(1, index, gains.expand(n_queries, -1).contiguous())
    return scores


def fuse(rankings: Sequence[np.ndarray], n_entries: int, depth: int, entry_rank: torch.Tensor, *,
         k: int = RRF_K) -> np.ndarray:
    """The fused top-``depth`` entry indices per query (ties by ``entry_rank``, i.e. ascending id)."""
    from .retrieval import rank_block

    return rank_block(rrf_scores(rankings, n_entries, k=k), depth, entry_rank).cpu().numpy()
