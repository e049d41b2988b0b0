"""Review decisions: append-only log in, effective training pairs out.

``review.jsonl`` holds one :class:`~domainfit.artifacts.ReviewDecision` per click;
the latest per pair wins and ``reset`` clears one. Pairs without a decision keep
their generated form, so a run with no ``review.jsonl`` trains on ``pairs.jsonl``
exactly. An auto-rejected question (a ``rejected.jsonl`` row with a ``query``) that
a reviewer rescues becomes a pair whose id is ``pair_id_for(chunk_id, query)``.

Example::

    record_decision(run, ReviewDecision(pair_id="ab12", decision="reject"))
    pairs, summary = reviewed_pairs(run)   # 'ab12' is gone; edits applied
    print(summary.counts())
"""

from __future__ import annotations

import json
import threading
from typing import Iterable

from ..artifacts import (
    Pair,
    Reject,
    ReviewDecision,
    RunDir,
    append_jsonl,
    iter_jsonl,
    pair_id_for,
    read_rows,
    repair_jsonl_tail,
)
from .stage import ReviewSummary

RESCUING_DECISIONS = frozenset({"rescue", "edit", "accept"})

# One lock for repair + append: a concurrent repair must never see (and cut) a line
# another thread is still writing.
_record_lock = threading.Lock()


def latest_decisions(decisions: Iterable[ReviewDecision]) -> dict[str, ReviewDecision]:
    """The last decision per pair id ('reset' clears a pair's decision)."""
    latest: dict[str, ReviewDecision] = {}
    for decision in decisions:
        if decision.decision == "reset":
            latest.pop(decision.pair_id, None)
        else:
            latest[decision.pair_id] = decision
    return latest


def edited_query(decision: ReviewDecision | None, original: str) -> str | None:
    """The reviewer's replacement question, or None when the decision changes no text.

    An 'edit' whose text equals the original (after trimming) counts as an accept.
    """
    if decision is None or decision.decision == "reject" or not decision.edited_query:
        return None
    text = decision.edited_query.strip()
    return text if text and text != original.strip() else None


def read_decisions(run: RunDir) -> list[ReviewDecision]:
    """All decisions in ``review.jsonl`` in order (none if the file does not exist)."""
    if not run.review.exists():
        return []
    with _record_lock:
        repair_jsonl_tail(run.review)
    return read_rows(run.review, ReviewDecision)


def record_decision(run: RunDir, decision: ReviewDecision) -> None:
    """Append one decision to ``review.jsonl``, durably (fsynced before returning).

    Thread-safe within one process; one review server per run directory.
    """
    with _record_lock:
        repair_jsonl_tail(run.review)
        append_jsonl(run.review, [decision])


def apply_review(
    pairs: list[Pair],
    decisions: dict[str, ReviewDecision],
    rescued: Iterable[Pair] = (),
) -> tuple[list[Pair], ReviewSummary]:
    """Drop rejected pairs, apply edited questions, add rescued auto-rejects.

    ``decisions`` is the output of :func:`latest_decisions`; ``rescued`` the output of
    :func:`rescued_pairs`. Pairs without a decision are kept as generated.
    """
    summary = ReviewSummary()
    kept: list[Pair] = []
    rescued = list(rescued)
    rescued_ids = {pair.pair_id for pair in rescued}
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
        if pair.pair_id in rescued_ids:
            summary.rescued += 1
        replacement = edited_query(decision, pair.query)
        if replacement is not None:
            summary.edited += 1
            pair = pair.model_copy(
                update={
                    "query": replacement,
                    "checks": {**pair.checks, "edited": True, "original_query": pair.query},
                }
            )
        else:
            summary.accepted += 1
        kept.append(pair)
    return kept, summary


def read_rejects(run: RunDir) -> list[Reject]:
    """The rows of ``rejected.jsonl`` (none if the file does not exist)."""
    if not run.rejected.exists():
        return []
    return [Reject.model_validate(row) for row in iter_jsonl(run.rejected)]


def reject_evidence(reject: Reject) -> str:
    """The evidence span a rejected question came with (synth keeps it in ``raw`` as JSON)."""
    try:
        answer = json.loads(reject.raw)
    except ValueError:
        return ""
    evidence = answer.get("evidence") if isinstance(answer, dict) else None
    return evidence if isinstance(evidence, str) else ""


def rescued_pairs(rejects: Iterable[Reject], decisions: dict[str, ReviewDecision]) -> list[Pair]:
    """Auto-rejected questions that a reviewer rescued (accept, rescue or edit), as pairs.

    A reject's review id is the pair id its question would have had; the same
    question rejected twice is rescued once.
    """
    rescued: dict[str, Pair] = {}
    for reject in rejects:
        if not reject.query:
            continue
        pair_id = pair_id_for(reject.chunk_id, reject.query)
        decision = decisions.get(pair_id)
        if decision is None or decision.decision not in RESCUING_DECISIONS or pair_id in rescued:
            continue
        rescued[pair_id] = Pair(
            pair_id=pair_id,
            chunk_id=reject.chunk_id,
            query=reject.query,
            evidence=reject_evidence(reject),
            checks={"rescued_from": reject.reason},
        )
    return list(rescued.values())


def rescued_rejects(run: RunDir, decisions: dict[str, ReviewDecision]) -> list[Pair]:
    """:func:`rescued_pairs` over the run's ``rejected.jsonl``."""
    return rescued_pairs(read_rejects(run), decisions)


def reviewed_pairs(run: RunDir) -> tuple[list[Pair], ReviewSummary]:
    """The pairs downstream stages train and evaluate on, after human review.

    With no ``review.jsonl`` this is exactly ``pairs.jsonl``'s generated pairs; rows
    written by people (``origin: human``) are a test set only and never returned here
    (see :mod:`.human`).
    """
    pairs = [pair for pair in read_rows(run.pairs, Pair) if pair.origin != "human"]
    decisions = latest_decisions(read_decisions(run))
    if not decisions:
        return pairs, ReviewSummary(unreviewed=len(pairs))
    known = {pair.pair_id for pair in pairs}
    rescued = [pair for pair in rescued_rejects(run, decisions) if pair.pair_id not in known]
    return apply_review(pairs, decisions, rescued)
