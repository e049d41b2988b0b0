"""What the review page shows: one item per generated pair or rescuable auto-reject.

Pure functions over rows: :func:`build_items` joins pairs, rejects and chunks;
:func:`present` turns an item and its latest decision into what a reviewer sees
(status, current question, the chunk split around its evidence, the checks).
Document text is never turned into markup here: :func:`highlight` returns plain
text segments and the template escapes each one.

Example::

    items = build_items(pairs, rejects, chunks)
    view = present(items[0], decisions.get(items[0].pair_id))
    view.status, [segment.marked for segment in view.segments]
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, Iterable, Literal, Mapping

from ..artifacts import Chunk, Pair, Reject, ReviewDecision, pair_id_for
from .decisions import edited_query, reject_evidence

Origin = Literal["generated", "auto-rejected"]
Status = Literal["unreviewed", "accepted", "rejected", "edited", "rescued", "auto-rejected"]

FILTERS: tuple[str, ...] = ("unreviewed", "accepted", "rejected", "edited", "auto-rejected", "all")
"""The page's filter tabs, in order."""

FUZZY_MIN_SCORE = 85.0


@dataclass(frozen=True)
class ReviewItem:
    """One question a reviewer can decide on, with the chunk it should be answered by."""

    pair_id: str
    origin: Origin
    query: str
    chunk_id: str
    chunk: Chunk | None
    evidence: str = ""
    checks: Mapping[str, Any] = field(default_factory=dict)
    generator: Mapping[str, Any] = field(default_factory=dict)
    reasons: tuple[str, ...] = ()
    raw: str = ""


@dataclass(frozen=True)
class Segment:
    """A run of chunk text; ``marked`` runs are the evidence span."""

    text: str
    marked: bool = False


@dataclass(frozen=True)
class CheckBadge:
    """One synth check as shown: name, short value, and whether it passed (None: not a pass/fail)."""

    name: str
    value: str
    passed: bool | None


@dataclass(frozen=True)
class ItemView:
    """An item as the reviewer sees it now."""

    item: ReviewItem
    status: Status
    query: str
    filters: tuple[str, ...]
    segments: tuple[Segment, ...]
    evidence_match: Literal["exact", "normalized", "fuzzy", "none"]
    badges: tuple[CheckBadge, ...]

    def state(self) -> dict[str, Any]:
        """The JSON the page's script and API clients get for this item."""
        return {
            "pair_id": self.item.pair_id,
            "origin": self.item.origin,
            "status": self.status,
            "query": self.query,
            "original_query": self.item.query,
            "filters": list(self.filters),
        }


def build_items(pairs: Iterable[Pair], rejects: Iterable[Reject], chunks: Iterable[Chunk]) -> list[ReviewItem]:
    """Generated pairs in file order, then auto-rejected questions a reviewer could rescue.

    Rejects without a question (unparseable LLM output) cannot become pairs and are
    left out; a rejected question with the id of a generated pair (a duplicate) too.
    The same question rejected more than once is one item listing every reason.
    """
    by_id = {chunk.chunk_id: chunk for chunk in chunks}
    items: dict[str, ReviewItem] = {}
    for pair in pairs:
        items[pair.pair_id] = ReviewItem(
            pair_id=pair.pair_id,
            origin="generated",
            query=pair.query,
            chunk_id=pair.chunk_id,
            chunk=by_id.get(pair.chunk_id),
            evidence=pair.evidence,
            checks=pair.checks,
            generator=pair.generator,
        )
    rescuable: dict[str, ReviewItem] = {}
    for reject in rejects:
        if not reject.query or not reject.query.strip():
            continue
        pair_id = pair_id_for(reject.chunk_id, reject.query)
        if pair_id in items:
            continue
        seen = rescuable.get(pair_id)
        if seen is not None:
            if reject.reason not in seen.reasons:
                rescuable[pair_id] = replace(seen, reasons=(*seen.reasons, reject.reason))
            continue
        rescuable[pair_id] = ReviewItem(
            pair_id=pair_id,
            origin="auto-rejected",
            query=reject.query,
            chunk_id=reject.chunk_id,
            chunk=by_id.get(reject.chunk_id),
            evidence=reject_evidence(reject),
            reasons=(reject.reason,),
            raw=reject.raw,
        )
    return [*items.values(), *rescuable.values()]


def item_status(item: ReviewItem, decision: ReviewDecision | None) -> Status:
    """The item's status under its latest decision (None: never decided, or reset)."""
    if decision is None:
        return "unreviewed" if item.origin == "generated" else "auto-rejected"
    if decision.decision == "reject":
        return "rejected"
    if edited_query(decision, item.query) is not None:
        return "edited"
    return "accepted" if item.origin == "generated" else "rescued"


def item_filters(item: ReviewItem, status: Status) -> tuple[str, ...]:
    """The filter tabs an item appears under."""
    filters = ["all"]
    if status in ("unreviewed", "rejected", "edited"):
        filters.append(status)
    elif status in ("accepted", "rescued"):
        filters.append("accepted")
    if item.origin == "auto-rejected":
        filters.append("auto-rejected")
    return tuple(filters)


def review_counts(items: Iterable[ReviewItem], decisions: Mapping[str, ReviewDecision]) -> dict[str, int]:
    """Counts for the page header: one per filter tab, plus ``reviewed`` (items with a decision)."""
    counts = dict.fromkeys(("reviewed", *FILTERS), 0)
    for item in items:
        decision = decisions.get(item.pair_id)
        counts["reviewed"] += decision is not None
        for name in item_filters(item, item_status(item, decision)):
            counts[name] += 1
    return counts


@lru_cache(maxsize=4096)
def highlight(text: str, evidence: str) -> tuple[tuple[Segment, ...], Literal["exact", "normalized", "fuzzy", "none"]]:
    """Split ``text`` around the evidence span, and say how the span was found.

    Tried in order: the exact string; the same words ignoring case and spacing; the
    best fuzzy match scoring at least ``FUZZY_MIN_SCORE`` (LLMs paraphrase quotes).
    """
    needle = evidence.strip()
    if not needle or not text:
        return (Segment(text),), "none"
    start = text.find(needle)
    if start >= 0:
        return _split(text, start, start + len(needle)), "exact"
    pattern = r"\s+".join(re.escape(word) for word in needle.split())
    found = re.search(pattern, text, flags=re.IGNORECASE)
    if found:
        return _split(text, found.start(), found.end()), "normalized"
    from rapidfuzz import fuzz

    alignment = fuzz.partial_ratio_alignment(needle.lower(), text.lower(), score_cutoff=FUZZY_MIN_SCORE)
    if alignment is not None and alignment.dest_end > alignment.dest_start:
        return _split(text, alignment.dest_start, alignment.dest_end), "fuzzy"
    return (Segment(text),), "none"


def _split(text: str, start: int, end: int) -> tuple[Segment, ...]:
    parts = (Segment(text[:start]), Segment(text[start:end], marked=True), Segment(text[end:]))
    return tuple(part for part in parts if part.text)


def check_badges(checks: Mapping[str, Any]) -> tuple[CheckBadge, ...]:
    """The synth checks as short badges: booleans pass/fail, numbers to 2 decimals."""
    badges = []
    for name, value in checks.items():
        if isinstance(value, bool):
            badges.append(CheckBadge(name, "passed" if value else "failed", value))
        elif isinstance(value, float):
            badges.append(CheckBadge(name, f"{value:.2f}", None))
        elif value is None:
            badges.append(CheckBadge(name, "-", None))
        elif isinstance(value, (int, str)):
            badges.append(CheckBadge(name, _shorten(str(value)), None))
        else:
            badges.append(CheckBadge(name, _shorten(json.dumps(value, ensure_ascii=False, default=str)), None))
    return tuple(badges)


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def present(item: ReviewItem, decision: ReviewDecision | None) -> ItemView:
    """Everything the page shows for ``item`` under its latest ``decision``."""
    status = item_status(item, decision)
    text = item.chunk.text if item.chunk is not None else ""
    segments, match = highlight(text, item.evidence)
    return ItemView(
        item=item,
        status=status,
        query=edited_query(decision, item.query) or item.query,
        filters=item_filters(item, status),
        segments=segments,
        evidence_match=match,
        badges=check_badges(item.checks),
    )
