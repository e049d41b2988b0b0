"""Mining over vectors: search every training question in the index, pick negatives.

:func:`mine_negatives` is the core (no run directory: the 1M-row benchmark calls it
directly); the stage around it is :func:`domainfit.mining.stage.run_mining`.

Example::

    outcome = mine_negatives(index, question_vectors, positives, config.mining)
    outcome.stats.queries_short
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..config import MiningConfig
from ..errors import MiningError
from ..lance import vectors_from_arrow
from .index import AnnReport, ChunkIndex
from .negatives import Candidate, ChunkRef, Exclusions, Selection, select_negatives, window_size
from .stats import MiningStats


def check_window(config: MiningConfig) -> None:
    """A strategy cannot pick more negatives than its rank window holds: say so in one line."""
    if config.range_min >= config.range_max and config.strategy != "semi-hard":
        raise MiningError(f"mining.range_min ({config.range_min}) must be below mining.range_max ({config.range_max})")
    window = window_size(config)
    if config.num_negatives > window:
        raise MiningError(
            f"mining.num_negatives ({config.num_negatives}) is larger than the window of {window} candidates "
            f"(range_max {config.range_max} - range_min {config.range_min}); lower num_negatives or raise range_max"
        )


@dataclass
class MiningOutcome:
    """What :func:`mine_negatives` found, aligned with its inputs."""

    selections: list[Selection]
    positive_scores: np.ndarray
    stats: MiningStats
    ann: AnnReport | None = None
    search_seconds: float = 0.0


def mine_negatives(
    index: ChunkIndex,
    query_vectors: np.ndarray,
    positives: Sequence[ChunkRef],
    config: MiningConfig,
    *,
    other_positives: Sequence[frozenset[str]] | None = None,
    exclusions: Exclusions = Exclusions(),
    seed_keys: Sequence[str] | None = None,
    progress: bool = True,
) -> MiningOutcome:
    """Pick negatives for each (query vector, positive chunk) from the index.

    Queries go to LanceDB ``query_batch_size`` at a time (one call per batch); each
    gets ``range_max`` + its positives' count candidates. The positive's score is
    its cosine to the query from the stored vectors, retrieved or not.
    ``other_positives[i]`` are further chunk ids that answer query ``i``;
    ``seed_keys[i]`` seeds the random strategy per pair (stable across runs).
    """
    from tqdm.auto import tqdm

    check_window(config)
    query_vectors = np.atleast_2d(np.asarray(query_vectors, dtype=np.float32))
    if len(query_vectors) != len(positives):
        raise MiningError(f"{len(query_vectors)} query vectors for {len(positives)} positives")
    if index.rows == 0:
        raise MiningError(f"the index at {index.root} is empty: there are no chunks to mine negatives from")
    others = list(other_positives) if other_positives is not None else [frozenset()] * len(positives)
    positive_vectors = index.vectors_of([positive.chunk_id for positive in positives])
    positive_scores = np.einsum("ij,ij->i", query_vectors, positive_vectors) if len(positives) else np.zeros(0)
    stats = MiningStats(num_negatives=config.num_negatives)
    outcome = MiningOutcome(selections=[], positive_scores=positive_scores, stats=stats)
    if not len(positives):
        return outcome
    limit = config.range_max + 1 + max(len(extra) for extra in others)
    if index.ann is not None:
        sampler = np.random.default_rng(config.seed)
        sample = sampler.choice(len(query_vectors), size=min(config.ann_recall_queries, len(query_vectors)), replace=False)
        outcome.ann = index.tune_ann(query_vectors[np.sort(sample)], limit, config)
    start = time.perf_counter()
    batch_size = config.query_batch_size
    with tqdm(total=len(positives), desc="Mining negatives", unit="query", disable=not progress) as bar:
        for first in range(0, len(positives), batch_size):
            last = min(first + batch_size, len(positives))
            hits = index.search(query_vectors[first:last], limit)
            candidates = _candidates_per_query(hits, positive_vectors[first:last], index.dim)
            for offset, found in enumerate(candidates):
                number = first + offset
                positive = positives[number]
                rng = None
                if config.strategy == "random":  # per pair, so a pair's sample does not depend on the others
                    rng = random.Random(f"{config.seed}:{seed_keys[number] if seed_keys else number}")
                selection = select_negatives(
                    found,
                    positive,
                    float(positive_scores[number]),
                    config,
                    other_positive_ids=others[number],
                    exclusions=exclusions,
                    rng=rng,
                )
                stats.add(selection, float(positive_scores[number]))
                stats.positive_retrieved += any(item.chunk.chunk_id == positive.chunk_id for item in found)
                outcome.selections.append(selection)
            bar.update(last - first)
    outcome.search_seconds = time.perf_counter() - start
    return outcome


def _candidates_per_query(hits, positive_vectors: np.ndarray, dim: int) -> list[list[Candidate]]:
    """Group a batch search result by query, with each hit's cosine to that query's positive."""
    per_query: list[list[Candidate]] = [[] for _ in range(len(positive_vectors))]
    if hits.num_rows == 0:
        return per_query
    query_index = hits["query_index"].to_numpy()
    vectors = vectors_from_arrow(hits["vector"], dim)
    positive_cosines = np.einsum("ij,ij->i", vectors, positive_vectors[query_index]).tolist()
    columns = [hits[name].to_pylist() for name in ("chunk_id", "doc_id", "char_start", "char_end", "text_hash")]
    scores = hits["score"].to_pylist()
    for row, (chunk_id, doc_id, start, end, text_hash) in enumerate(zip(*columns)):
        chunk = ChunkRef(chunk_id=chunk_id, doc_id=doc_id, char_start=start, char_end=end, text_hash=text_hash)
        per_query[query_index[row]].append(Candidate(chunk=chunk, score=scores[row], positive_cosine=positive_cosines[row]))
    return per_query
