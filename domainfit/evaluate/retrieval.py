"""Dense retrieval for evaluation: encode once, truncate per dim, top-k in blocks.

The corpus and the queries are encoded once at the model's full size; each
Matryoshka dim is the first ``dim`` coordinates, renormalised, so cosine scores are
plain matrix products. Scores are computed for a block of queries at a time (never
the whole queries × corpus matrix of a large set) and ranked exactly as
sentence-transformers' ``InformationRetrievalEvaluator`` ranks: by score, ties broken
by ascending corpus id.

Example::

    full = encode_texts(model, task.corpus, kind="document")
    queries = encode_texts(model, task.queries, kind="query")
    ranked = top_k(truncate(queries, 128), truncate(full, 128), 100, corpus_rank=id_ranks(task.corpus_ids))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Literal, Sequence

import numpy as np
import torch

from ..encoding import PROGRESS_FROM, encode

if TYPE_CHECKING:  # pragma: no cover
    from sentence_transformers import SentenceTransformer

    from ..config import EncodeConfig

ScoreBlock = Callable[[int, int], torch.Tensor]


def encode_texts(
    model: "SentenceTransformer",
    texts: Sequence[str],
    *,
    kind: Literal["query", "document"],
    batch_size: int = 32,
    progress: bool | None = None,
    settings: "EncodeConfig | None" = None,
) -> torch.Tensor:
    """Full-size raw embeddings (one row per text) on the model's device, with its query or document prompt.

    :func:`domainfit.encoding.encode` with ``normalize=False`` (each dim is renormalised
    by :func:`truncate`; a ``dot`` model is not normalised at all), as a tensor. A
    progress bar shows from ``PROGRESS_FROM`` texts on (a large corpus takes minutes).
    """
    home = model.device
    vectors = encode(model, texts, kind=kind, batch_size=batch_size, normalize=False, settings=settings,
                     progress=progress)
    return torch.from_numpy(vectors).to(home)


def truncate(embeddings: torch.Tensor, dim: int, *, normalize: bool = True) -> torch.Tensor:
    """The first ``dim`` coordinates, renormalised to unit length (cosine) unless ``normalize=False``."""
    sliced = embeddings[:, :dim].contiguous()
    return torch.nn.functional.normalize(sliced, p=2, dim=-1) if normalize else sliced


def id_ranks(ids: Sequence[str]) -> torch.Tensor:
    """Position of each id in ascending string order: the tie-break of equal scores."""
    order = sorted(range(len(ids)), key=ids.__getitem__)
    ranks = torch.empty(len(ids), dtype=torch.long)
    ranks[torch.tensor(order, dtype=torch.long)] = torch.arange(len(ids))
    return ranks


def block_rows(n_corpus: int, *, budget_mb: float = 256.0) -> int:
    """Queries per block so that one block of float32 scores stays under ``budget_mb``."""
    return max(1, int(budget_mb * 2**20 // (4 * max(1, n_corpus))))


def rank_block(scores: torch.Tensor, k: int, corpus_rank: torch.Tensor) -> torch.Tensor:
    """Indices of the ``k`` best columns per row, ordered by (-score, corpus rank).

    Rows with ties at the k-th score pick the tied columns with the lowest corpus rank,
    as sentence-transformers does, so results never depend on block size.
    """
    n_corpus = scores.shape[1]
    k = min(k, n_corpus)
    corpus_rank = corpus_rank.to(scores.device)
    values, indices = scores.topk(k, dim=1, largest=True, sorted=False)
    thresholds = values.min(dim=1, keepdim=True).values
    tied = (scores >= thresholds).sum(dim=1) > k
    if bool(tied.any()):
        rows = tied.nonzero().squeeze(1)
        row_scores, row_thresholds = scores[rows], thresholds[rows]
        keys = torch.where(row_scores > row_thresholds, corpus_rank, 2 * n_corpus)
        keys = torch.where(row_scores == row_thresholds, corpus_rank + n_corpus, keys)
        indices[rows] = keys.topk(k, dim=1, largest=False).indices
    by_rank = corpus_rank[indices].argsort(dim=1)
    indices = indices.gather(1, by_rank)
    by_score = scores.gather(1, indices).sort(dim=1, descending=True, stable=True).indices
    return indices.gather(1, by_score)


def rank_all(
    score_block: ScoreBlock,
    n_queries: int,
    n_corpus: int,
    k: int,
    corpus_rank: torch.Tensor,
    *,
    budget_mb: float = 256.0,
) -> np.ndarray:
    """Top-``k`` corpus indices for every query, scoring ``score_block(start, stop)`` rows at a time."""
    step = block_rows(n_corpus, budget_mb=budget_mb)
    blocks = [
        rank_block(score_block(start, min(start + step, n_queries)), k, corpus_rank).cpu()
        for start in range(0, n_queries, step)
    ]
    return torch.cat(blocks).numpy()


def top_k(
    query_vectors: torch.Tensor,
    corpus_vectors: torch.Tensor,
    k: int,
    *,
    corpus_rank: torch.Tensor,
    budget_mb: float = 256.0,
) -> np.ndarray:
    """Top-``k`` corpus indices per query by dot product (cosine on unit vectors), in blocks."""
    corpus_t = corpus_vectors.transpose(0, 1)
    return rank_all(
        lambda start, stop: torch.mm(query_vectors[start:stop], corpus_t),
        query_vectors.shape[0],
        corpus_vectors.shape[0],
        k,
        corpus_rank,
        budget_mb=budget_mb,
    )


def relevance_matrix(
    ranked: np.ndarray, relevant: Sequence[dict[int, int]], n_corpus: int
) -> tuple[np.ndarray, np.ndarray]:
    """Grades of the ranked results (0 = not relevant) and the number relevant per query.

    ``relevant[q]`` maps corpus index -> grade for query ``q``.
    """
    rows = np.fromiter((q for q, judged in enumerate(relevant) for _ in judged), dtype=np.int64)
    cols = np.fromiter((c for judged in relevant for c in judged), dtype=np.int64)
    grades = np.fromiter((g for judged in relevant for g in judged.values()), dtype=np.float64)
    codes = rows * n_corpus + cols
    order = np.argsort(codes)
    codes, grades = codes[order], grades[order]
    wanted = np.arange(ranked.shape[0], dtype=np.int64)[:, None] * n_corpus + ranked.astype(np.int64)
    position = np.minimum(np.searchsorted(codes, wanted), max(0, len(codes) - 1))
    found = codes[position] == wanted if len(codes) else np.zeros(wanted.shape, dtype=bool)
    ranked_grades = np.where(found, grades[position] if len(codes) else 0.0, 0.0)
    return ranked_grades, np.array([len(judged) for judged in relevant], dtype=np.int64)
