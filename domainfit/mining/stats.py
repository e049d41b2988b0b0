"""Mining statistics: what the guards and rules dropped and how the scores look.

Collected pair by pair from :class:`~domainfit.mining.negatives.Selection` objects;
:meth:`MiningStats.counts` goes to the manifest's counts, :meth:`as_details`
to its details and :meth:`summary` to the CLI.

Example::

    stats = MiningStats(num_negatives=3)
    stats.add(selection, positive_score=0.74)
    print(stats.summary())
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from .negatives import DROP_REASONS, Selection

PERCENTILES = (5, 25, 50, 75, 95)


def distribution(values: Iterable[float]) -> dict[str, float | int]:
    """count, min, mean, p5..p95 and max of ``values`` (just the count when empty)."""
    array = np.asarray(list(values), dtype=np.float64)
    if array.size == 0:
        return {"count": 0}
    summary: dict[str, float | int] = {"count": int(array.size), "min": round(float(array.min()), 4)}
    summary["mean"] = round(float(array.mean()), 4)
    for percentile, value in zip(PERCENTILES, np.percentile(array, PERCENTILES)):
        summary[f"p{percentile}"] = round(float(value), 4)
    summary["max"] = round(float(array.max()), 4)
    return summary


@dataclass
class MiningStats:
    """Running totals over all mined pairs."""

    num_negatives: int
    pairs: int = 0
    candidates_seen: int = 0
    dropped: Counter = field(default_factory=Counter)
    negatives_per_query: Counter = field(default_factory=Counter)
    positive_retrieved: int = 0  # positive among the retrieved candidates of its query
    positive_scores: list[float] = field(default_factory=list)
    negative_scores: list[float] = field(default_factory=list)
    margins: list[float] = field(default_factory=list)

    def add(self, selection: Selection, positive_score: float) -> None:
        self.pairs += 1
        self.candidates_seen += selection.seen
        self.dropped.update(selection.dropped)
        self.negatives_per_query[len(selection.negatives)] += 1
        self.positive_scores.append(float(positive_score))
        for negative in selection.negatives:
            self.negative_scores.append(negative.score)
            self.margins.append(float(positive_score) - negative.score)

    @property
    def negatives(self) -> int:
        return len(self.negative_scores)

    @property
    def queries_short(self) -> int:
        """Pairs left with fewer than ``num_negatives`` negatives (reported, never padded)."""
        return sum(count for found, count in self.negatives_per_query.items() if found < self.num_negatives)

    def counts(self) -> dict[str, int]:
        counts = {
            "pairs": self.pairs,
            "negatives": self.negatives,
            "candidates_seen": self.candidates_seen,
            "queries_short": self.queries_short,
            "positive_retrieved": self.positive_retrieved,
        }
        counts.update({f"dropped_{reason}": self.dropped.get(reason, 0) for reason in DROP_REASONS})
        return counts

    def as_details(self) -> dict[str, Any]:
        return {
            "negatives_per_query": {str(found): self.negatives_per_query[found] for found in sorted(self.negatives_per_query)},
            "positive_score": distribution(self.positive_scores),
            "negative_score": distribution(self.negative_scores),
            "margin": distribution(self.margins),
        }

    def summary(self) -> str:
        """A few plain lines for the terminal."""
        lines = [
            f"candidates seen: {self.candidates_seen:,}; negatives: {self.negatives:,} for {self.pairs:,} pairs; "
            f"short of {self.num_negatives}: {self.queries_short:,}",
        ]
        dropped = ", ".join(f"{reason} {self.dropped[reason]:,}" for reason in DROP_REASONS if self.dropped.get(reason))
        lines.append(f"dropped: {dropped or 'none'}")
        histogram = ", ".join(f"{found}: {count:,}" for found, count in sorted(self.negatives_per_query.items()))
        lines.append(f"negatives per query: {histogram or 'none'}")
        details = self.as_details()
        for label, key in (("positive score", "positive_score"), ("negative score", "negative_score"), ("margin", "margin")):
            lines.append(f"{label}: {_format_distribution(details[key])}")
        return "\n".join(lines)


def _format_distribution(summary: dict[str, float | int]) -> str:
    if not summary.get("count"):
        return "n/a"
    return (
        f"min {summary['min']:.3f}  mean {summary['mean']:.3f}  p5 {summary['p5']:.3f}  "
        f"median {summary['p50']:.3f}  p95 {summary['p95']:.3f}  max {summary['max']:.3f}"
    )
