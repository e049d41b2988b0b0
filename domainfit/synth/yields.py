"""How much of what the LLM wrote each check kept: the yield of a run's synth stage.

Every generated query ends either in ``pairs.jsonl`` or, with the first check it
failed, in ``rejected.jsonl``; answers that held no usable query at all
(``invalid_output``, ``truncated_output``, ``llm_error``) are rejected per chunk.
:func:`synth_yield` counts both files by reason and query style, and
:meth:`SynthYield.table` is what ``domainfit synth-yield RUN`` prints.

Example::

    report = synth_yield(RunDir("runs/demo"))
    print(report.table())
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any

from ..artifacts import Pair, Reject, RunDir, read_rows
from ..errors import ArtifactError
from .filters import REASONS
from .generate import reason_group
from .styles import DEFAULT_STYLE

ACCEPTED = "accepted"


@dataclass
class SynthYield:
    """Counts of accepted queries and of rejects by reason, per query style."""

    accepted: collections.Counter = field(default_factory=collections.Counter)
    """style -> accepted pairs"""
    rejected: dict[str, collections.Counter] = field(default_factory=dict)
    """reason -> style -> rejected queries (each query counted once, at the first check it failed)"""
    failed_answers: collections.Counter = field(default_factory=collections.Counter)
    """reason -> answers with no usable query (one per chunk attempt)"""
    chunks: int = 0

    @property
    def styles(self) -> list[str]:
        seen = set(self.accepted) | {style for counts in self.rejected.values() for style in counts}
        order = ["question", "claim", "keywords"]
        return [style for style in order if style in seen] + sorted(seen - set(order))

    @property
    def generated(self) -> int:
        """Queries the LLM wrote that reached the checks (accepted + rejected queries)."""
        return sum(self.accepted.values()) + sum(sum(counts.values()) for counts in self.rejected.values())

    def reasons(self) -> list[str]:
        """Reject reasons present, in the order the checks run (others after, most common first)."""
        known = [reason for reason in REASONS if reason in self.rejected]
        others = sorted(set(self.rejected) - set(known), key=lambda r: -sum(self.rejected[r].values()))
        return known + others

    def counts(self) -> dict[str, Any]:
        """A flat dict for a manifest or JSON: totals, per reason and per style."""
        return {
            "chunks": self.chunks,
            "generated": self.generated,
            "accepted": sum(self.accepted.values()),
            "accepted_by_style": dict(self.accepted),
            "rejected": {reason: dict(self.rejected[reason]) for reason in self.reasons()},
            "failed_answers": dict(self.failed_answers),
        }

    def table(self) -> str:
        """A Markdown table: one row per outcome, one column per style, plus the total and its share."""
        styles = self.styles or [DEFAULT_STYLE]
        total = self.generated

        def share(count: int) -> str:
            return f"{100 * count / total:.1f}%" if total else "-"

        lines = [
            f"| outcome | {' | '.join(styles)} | all | share of queries |",
            "| --- |" + " ---: |" * (len(styles) + 2),
        ]
        rows = [(ACCEPTED, self.accepted)] + [(reason, self.rejected[reason]) for reason in self.reasons()]
        for name, by_style in rows:
            count = sum(by_style.values())
            cells = " | ".join(str(by_style.get(style, 0)) for style in styles)
            lines.append(f"| {name} | {cells} | {count} | {share(count)} |")
        head = f"{self.chunks} chunks answered, {total} queries checked, {sum(self.accepted.values())} accepted"
        failed = sum(self.failed_answers.values())
        if failed:
            listed = ", ".join(f"{reason} {n}" for reason, n in self.failed_answers.most_common())
            head += f"; {failed} answers held no usable query ({listed})"
        return head + "\n\n" + "\n".join(lines)


def synth_yield(run: RunDir) -> SynthYield:
    """Count a run's ``pairs.jsonl`` and ``rejected.jsonl`` by outcome and query style.

    Rows written before query styles existed count as ``question``. Raises
    :class:`~domainfit.errors.ArtifactError` when the run has no synth output.

    Example::

        synth_yield(RunDir("runs/demo")).counts()["rejected"]   # {'ungrounded': {'question': 21}, ...}
    """
    run = run if isinstance(run, RunDir) else RunDir(run)
    if not run.pairs.exists() and not run.rejected.exists():
        raise ArtifactError(f"no synth output in {run.root}: run `domainfit synth DOCS --out {run.root}` first")
    report = SynthYield()
    chunk_ids: set[str] = set()
    if run.pairs.exists():
        for pair in read_rows(run.pairs, Pair):
            report.accepted[pair.style or DEFAULT_STYLE] += 1
            chunk_ids.add(pair.chunk_id)
    if run.rejected.exists():
        for reject in read_rows(run.rejected, Reject):
            chunk_ids.add(reject.chunk_id)
            reason = reason_group(reject.reason)
            if reject.query is None:
                report.failed_answers[reason] += 1
            else:
                report.rejected.setdefault(reason, collections.Counter())[reject.style or DEFAULT_STYLE] += 1
    report.chunks = len(chunk_ids)
    return report
