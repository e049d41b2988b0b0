"""Review decisions: append-only log in, effective training pairs out.

Example::

    record_decision(run, ReviewDecision(pair_id="ab12", decision="reject"))
    pairs, summary = reviewed_pairs(run)   # 'ab12' is gone; edits applied
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from ..artifacts import (
    Pair,
    Reject,
    ReviewDecision,
    RunDir,
    append_jsonl,
    iter_jsonl,
    read_rows,
    repair_jsonl_tail,
)


@dataclass
class ReviewSummary:
    """How review changed the pair set: what the manifest and report state."""

    reviewed: int = 0
    accepted: int = 0
    rejected: int = 0
    edited: int = 0
    rescued: int = 0
    unreviewed: int = 0
    decided_ids: set[str] = field(default_factory=set, repr=False)

    def as_counts(self) -> dict[str, int]:
        return {
            "reviewed": self.reviewed,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "edited": self.edited,
            "rescued": self.rescued,
            "unreviewed": self.unreviewed,
        }


def latest_decisions(decisions: Iterable[ReviewDecision]) -> dict[str, ReviewDecision]:
    """The last decision per pair id ('reset' clears a pair's decision)."""
    latest: dict[str, ReviewDecision] = {}
    for decision in decisions:
        if decision.decision == "reset":
            latest.pop(decision.pair_id, None)
        else:
            latest[decision.pair_id] = decision
    return latest


def read_decisions(run: RunDir) -> list[ReviewDecision]:
    """All decisions in ``review.jsonl`` in order (none if the file does not exist)."""
    if not run.review.exists():
        return []
    repair_jsonl_tail(run.review)
    return read_rows(run.review, ReviewDecision)


def record_decision(run: RunDir, decision: ReviewDecision) -> None:
    """Append one decision to ``review.jsonl``, durably."""
    repair_jsonl_tail(run.review)
    append_jsonl(run.review, [decision])


def apply_review(
    pairs: list[Pair],
    decisions: dict[str, ReviewDecision],
    rescued: Iterable[Pair] = (),
) -> tuple[list[Pair], ReviewSummary]:
    """Drop rejected pairs, apply edited questions, add rescued auto-rejects.

    ``decisions`` is the output of :func:`latest_decisions`. Pairs without a decision
    are kept as generated.
    """
    summary = ReviewSummary()
    kept: list[Pair] = []
    for pair in [*pairs, *rescued]:
        decision = decisions.get(pair.pair_id)
        if decision is None:
            summary.unreviewed += 1
            kept.append(pair)
            continue
        summary.reviewed += 1
        summary.decided_ids.add(pair.pair_id)
        if decision.decision == "reject":
            summary.rejected += 1
            continue
        if decision.decision == "rescue":
            summary.rescued += 1
        if decision.edited_query and decision.edited_query.strip() != pair.query:
            summary.edited += 1
            pair = pair.model_copy(
                update={"query": decision.edited_query.strip(), "checks": {**pair.checks, "edited": True}}
            )
        else:
            summary.accepted += 1
        kept.append(pair)
    return kept, summary


def rescued_rejects(run: RunDir, decisions: dict[str, ReviewDecision]) -> list[Pair]:
    """Auto-rejected questions that a reviewer rescued, as pairs.

    A reject's review id is the pair id its question would have had.
    """
    from ..artifacts import pair_id_for

    if not run.rejected.exists():
        return []
    rescued = []
    for row in iter_jsonl(run.rejected):
        reject = Reject.model_validate(row)
        if not reject.query:
            continue
        pair_id = pair_id_for(reject.chunk_id, reject.query)
        decision = decisions.get(pair_id)
        if decision is not None and decision.decision in ("rescue", "edit", "accept"):
            rescued.append(
                Pair(
                    pair_id=pair_id,
                    chunk_id=reject.chunk_id,
                    query=reject.query,
                    checks={"rescued_from": reject.reason},
                )
            )
    return rescued


def reviewed_pairs(run: RunDir) -> tuple[list[Pair], ReviewSummary]:
    """The pairs downstream stages train and evaluate on, after human review.

    With no ``review.jsonl`` this is exactly ``pairs.jsonl``.
    """
    pairs = read_rows(run.pairs, Pair)
    decisions = latest_decisions(read_decisions(run))
    if not decisions:
        return pairs, ReviewSummary(unreviewed=len(pairs))
    known = {pair.pair_id for pair in pairs}
    rescued = [pair for pair in rescued_rejects(run, decisions) if pair.pair_id not in known]
    return apply_review(pairs, decisions, rescued)
