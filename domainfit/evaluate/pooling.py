"""Documents ranked by their best chunk: chunk scores -> document scores -> ranking -> metrics.

Real queries are judged by document, but a model scores chunks. A document's score
for a query is the maximum over its chunks' scores (max-pooling, as in MaxP passage
retrieval); documents are then ranked exactly as chunks are (by score, ties broken
by ascending document id) and scored with the same metrics and names.

Pooling happens one block of queries at a time on top of the chunk scores, so a
model still encodes its corpus once and each Matryoshka dim is a truncation; only
a (block × chunks) score matrix is ever held.

Example (hand-made numbers: 2 queries, 3 chunks of 2 documents)::

    scores = torch.tensor([[0.9, 0.1, 0.5], [0.2, 0.3, 0.8]])
    metrics = document_metrics(scores, ["a.txt", "a.txt", "b.txt"], [{"b.txt"}, {"b.txt"}], MetricSpec())
    metrics["mrr@10"]   # query 1: a (0.9) before b (0.5) -> 1/2; query 2: b first -> 1; mean 0.75
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import torch

from .metrics import MetricSpec, score_ranking
from .retrieval import ScoreBlock, id_ranks, rank_all, rank_block


def pool_max(chunk_scores: torch.Tensor, document_of: torch.Tensor, n_documents: int) -> torch.Tensor:
    """(queries × chunks) scores -> (queries × documents): each document gets its best chunk's score.

    ``document_of[i]`` is chunk ``i``'s document index; a document without chunks scores -inf.
    """
    rows = chunk_scores.shape[0]
    pooled = torch.full((rows, n_documents), float("-inf"), dtype=chunk_scores.dtype, device=chunk_scores.device)
    index = document_of.to(chunk_scores.device).unsqueeze(0).expand(rows, -1)
    return pooled.scatter_reduce(1, index, chunk_scores, reduce="amax", include_self=True)


def pooled(score_block: ScoreBlock, document_of: Sequence[int], n_documents: int) -> ScoreBlock:
    """A score-block function over chunks turned into one over documents (max-pooled)."""
    owners = torch.as_tensor(list(document_of), dtype=torch.long)
    return lambda start, stop: pool_max(score_block(start, stop), owners, n_documents)


def rank_entries(
    score_block: ScoreBlock,
    n_queries: int,
    corpus_ids: Sequence[str],
    k: int,
    *,
    document_ids: Sequence[str] | None = None,
    document_of: Sequence[int] | None = None,
    budget_mb: float = 256.0,
) -> np.ndarray:
    """Top-``k`` indices per query: of the corpus entries, or of the documents when given.

    ``score_block(start, stop)`` returns the (queries × corpus entries) scores of a
    block of queries. Blocks are sized by the chunk count, which is what they hold.
    """
    if document_ids is None:
        return rank_all(score_block, n_queries, len(corpus_ids), k, id_ranks(corpus_ids), budget_mb=budget_mb)
    if document_of is None:
        raise ValueError("document_of is needed with document_ids")
    return rank_all(pooled(score_block, document_of, len(document_ids)), n_queries, len(corpus_ids), k,
                    id_ranks(document_ids), budget_mb=budget_mb)


def rank_documents(chunk_scores: torch.Tensor, chunk_documents: Sequence[str], k: int) -> tuple[np.ndarray, list[str]]:
    """Top-``k`` document indices per query from all chunk scores, and the document ids they index.

    Documents are the distinct ``chunk_documents`` in ascending order (the tie-break).
    """
    documents = sorted(set(chunk_documents))
    position = {doc: index for index, doc in enumerate(documents)}
    owners = torch.tensor([position[doc] for doc in chunk_documents], dtype=torch.long)
    scores = pool_max(torch.as_tensor(chunk_scores), owners, len(documents))
    return rank_block(scores, k, id_ranks(documents)).cpu().numpy(), documents


def document_metrics(
    chunk_scores: torch.Tensor | np.ndarray,
    chunk_documents: Sequence[str],
    relevant: Sequence[Iterable[str]],
    spec: MetricSpec | None = None,
) -> dict[str, float]:
    """Metrics over documents from (queries × chunks) scores; ``relevant[q]`` = query q's document ids.

    The whole path in one pure function: max-pool chunk scores per document, rank
    documents (ties by id), score the ranking with sentence-transformers' metrics.
    """
    spec = spec or MetricSpec()
    ranked, documents = rank_documents(torch.as_tensor(chunk_scores), chunk_documents, spec.max_k)
    position = {doc: index for index, doc in enumerate(documents)}
    judged = []
    for row, docs in enumerate(relevant):
        unknown = [doc for doc in docs if doc not in position]
        if unknown:
            raise ValueError(f"query {row}: relevant document {unknown[0]!r} has no chunk")
        judged.append({position[doc]: 1 for doc in docs})
    return score_ranking(ranked, judged, len(documents), spec, graded=False)
