"""Choosing the negatives of one (query, positive) pair: strategies, score rules, guards.

Pure functions over a ranked candidate list (no LanceDB, no model), so every rule
can be tested on hand-made numbers. Scores are cosine similarities to the query.

A candidate is dropped for the *first* reason that applies, so the per-reason
counts add up to the candidates seen:

* guards against false negatives: ``positive`` (the positive itself, or another
  positive of the same question), ``same_text`` (same normalised text),
  ``overlapping_span`` (same document, character spans overlap),
  ``near_duplicate`` (cosine to the positive >= ``near_duplicate_cosine``),
  ``test_chunk`` (the chunk, or its text, is a positive of a test pair);
* rank and score rules: ``range_min``, ``relative_margin`` (NV-Retriever's
  TopK-PercPos: neg <= pos - |pos|*m), ``absolute_margin`` (neg <= pos - m),
  ``max_score``, ``min_score``, ``semi_hard_window`` (pos - margin < neg < pos).

Example::

    picked = select_negatives(candidates, positive, positive_score=0.71, config=MiningConfig())
    [negative.chunk.chunk_id for negative in picked.negatives]
    picked.dropped["relative_margin"]
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Iterable, Sequence

from ..config import MiningConfig

GUARDS = ("positive", "same_text", "overlapping_span", "near_duplicate", "test_chunk")
RULES = ("range_min", "relative_margin", "absolute_margin", "max_score", "min_score", "semi_hard_window")
DROP_REASONS = GUARDS + RULES


@dataclass(frozen=True)
class ChunkRef:
    """What the guards need to know about a chunk (its text is not needed)."""

    chunk_id: str
    doc_id: str = ""
    char_start: int = 0
    char_end: int = 0
    text_hash: str = ""  # hash of the normalised text; "" = unknown

    def overlaps(self, other: "ChunkRef") -> bool:
        """True for two different chunks of one document whose character spans overlap."""
        return (
            bool(self.doc_id)
            and self.doc_id == other.doc_id
            and self.char_start < other.char_end
            and other.char_start < self.char_end
        )


@dataclass(frozen=True)
class Candidate:
    """A retrieved chunk for one query.

    ``rank`` is its 0-based place among the retrieved chunks that are not the
    query's positives (set by :func:`select_negatives`); ``positive_cosine`` is its
    cosine to the positive chunk (``None`` when unknown: the near-duplicate guard
    then cannot fire).
    """

    chunk: ChunkRef
    score: float
    positive_cosine: float | None = None
    rank: int = -1


@dataclass(frozen=True)
class Exclusions:
    """Chunks no training pair may take as a negative: the positives of test pairs."""

    chunk_ids: frozenset[str] = frozenset()
    text_hashes: frozenset[str] = frozenset()

    @classmethod
    def of(cls, chunks: Iterable[ChunkRef]) -> "Exclusions":
        chunks = list(chunks)
        return cls(
            chunk_ids=frozenset(chunk.chunk_id for chunk in chunks),
            text_hashes=frozenset(chunk.text_hash for chunk in chunks if chunk.text_hash),
        )


@dataclass
class Selection:
    """The negatives chosen for one pair, and what happened to the other candidates."""

    negatives: list[Candidate]
    seen: int = 0
    eligible: int = 0
    dropped: Counter = field(default_factory=Counter)


def window_size(config: MiningConfig) -> int:
    """How many ranks a strategy may pick from: semi-hard ignores ``range_min``."""
    return config.range_max - (0 if config.strategy == "semi-hard" else config.range_min)


def guard_reason(
    candidate: Candidate,
    positive: ChunkRef,
    config: MiningConfig,
    exclusions: Exclusions = Exclusions(),
) -> str | None:
    """The false-negative guard that rejects ``candidate``, or ``None``."""
    chunk = candidate.chunk
    if chunk.text_hash and chunk.text_hash == positive.text_hash:
        return "same_text"
    if chunk.overlaps(positive):
        return "overlapping_span"
    if (
        config.near_duplicate_cosine is not None
        and candidate.positive_cosine is not None
        and candidate.positive_cosine >= config.near_duplicate_cosine
    ):
        return "near_duplicate"
    if chunk.chunk_id in exclusions.chunk_ids or (chunk.text_hash and chunk.text_hash in exclusions.text_hashes):
        return "test_chunk"
    return None


def rule_reason(candidate: Candidate, positive_score: float, config: MiningConfig) -> str | None:
    """The rank or score rule that rejects ``candidate``, or ``None``."""
    score = candidate.score
    if config.strategy != "semi-hard" and candidate.rank < config.range_min:
        return "range_min"
    # Subtracting |pos|*m (not multiplying by 1-m) keeps the rule right for negative scores.
    if config.relative_margin is not None and score > positive_score - abs(positive_score) * config.relative_margin:
        return "relative_margin"
    if config.absolute_margin is not None and score > positive_score - config.absolute_margin:
        return "absolute_margin"
    if config.max_score is not None and score > config.max_score:
        return "max_score"
    if config.min_score is not None and score < config.min_score:
        return "min_score"
    if config.strategy == "semi-hard" and not (positive_score - config.semi_hard_margin < score < positive_score):
        return "semi_hard_window"
    return None


def select_negatives(
    candidates: Sequence[Candidate],
    positive: ChunkRef,
    positive_score: float,
    config: MiningConfig,
    *,
    other_positive_ids: frozenset[str] | set[str] = frozenset(),
    exclusions: Exclusions = Exclusions(),
    rng: random.Random | None = None,
) -> Selection:
    """Pick ``config.num_negatives`` negatives from the ranked candidates of one query.

    ``candidates`` are the nearest chunks to the query (any order; they are ranked
    by score). The query's positive and ``other_positive_ids`` (other chunks that
    answer the same question) are dropped first and take no rank, then the first
    ``range_max`` remaining chunks are the window; guards and rules filter them, and
    the strategy picks: ``hard`` and ``semi-hard`` the highest-scored survivors,
    ``random`` a seeded sample of them (returned best first). Fewer than
    ``num_negatives`` survivors give a shorter list, never padding.

    Example::

        picked = select_negatives(candidates, positive, 0.8, MiningConfig(strategy="semi-hard"))
        assert all(0.7 < n.score < 0.8 for n in picked.negatives)
    """
    selection = Selection(negatives=[])
    eligible: list[Candidate] = []
    rank = 0
    for candidate in sorted(candidates, key=lambda item: -item.score):
        if rank >= config.range_max:
            break
        selection.seen += 1
        chunk_id = candidate.chunk.chunk_id
        if chunk_id == positive.chunk_id or chunk_id in other_positive_ids:
            selection.dropped["positive"] += 1
            continue
        candidate = replace(candidate, rank=rank)
        rank += 1
        reason = guard_reason(candidate, positive, config, exclusions) or rule_reason(
            candidate, positive_score, config
        )
        if reason is not None:
            selection.dropped[reason] += 1
            continue
        eligible.append(candidate)
    selection.eligible = len(eligible)
    if config.strategy == "random" and len(eligible) > config.num_negatives:
        sampler = rng if rng is not None else random.Random(config.seed)
        chosen = sampler.sample(eligible, config.num_negatives)
        selection.negatives = sorted(chosen, key=lambda item: item.rank)
    else:
        selection.negatives = eligible[: config.num_negatives]
    return selection
