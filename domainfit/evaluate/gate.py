"""The no-regression gate: is the adapted model better than the base on the held-out evidence?

**Better** means: on the headline evidence — real queries (``--queries``) when given,
else questions people wrote on the review page, else the synthetic test split — the
main metric (``eval.main_metric``, NDCG@10 by default) of ``finetuned`` at the
largest dim both models were evaluated at (the full dim, unless ``eval.dims`` leaves
it out) is **strictly greater** than the base model's. A tie is not better. Only
that one number decides, so the rule cannot be gamed by a good small dim; the
report shows every dim beside it.

A model that fails the gate is not deleted: the report's first line says so, the
manifest records ``promoted: false`` and the command line says which model to use.

Example::

    verdict = judge(metrics)          # metrics.json of the headline evidence
    verdict.promoted, verdict.first_line(), verdict.advice("runs/demo/model", "minilm")
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import render


@dataclass(frozen=True)
class Verdict:
    """The gate's decision and the numbers it rests on."""

    promoted: bool
    evidence: str  # 'queries', 'human' or 'synthetic'
    evidence_title: str  # e.g. "31 real queries (queries.jsonl)"
    metric: str
    dim: str
    base: float
    adapted: float

    @property
    def margin(self) -> float:
        return self.adapted - self.base

    def _numbers(self) -> str:
        return (f"{self.metric} at dim {self.dim}: adapted {self.adapted:.4f} vs base {self.base:.4f} "
                f"({self.margin:+.4f})")

    def first_line(self) -> str:
        """The report's first line."""
        caveat = ("; these are synthetic questions from the same generator (optimistic): add real queries "
                  "with --queries FILE" if self.evidence == "synthetic" else "")
        if self.promoted:
            return f"**Promoted: the adapted model beats the base model** on {self.evidence_title}, {self._numbers()}{caveat}."
        return (f"**Not promoted: the adapted model is not better than the base model** on {self.evidence_title}, "
                f"{self._numbers()}; keep using the base model (the adapted one is kept, not deleted){caveat}.")

    def advice(self, model_dir: str | Path, base_model: str) -> str:
        """One line for the terminal: which model to use."""
        if self.promoted:
            return f"use: the adapted model {model_dir} (better than base on {self.evidence_title}: {self._numbers()})"
        return (f"use: the base model {base_model}; the adapted model {model_dir} is not better on "
                f"{self.evidence_title} ({self._numbers()})")

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "margin": round(self.margin, 6),
                "rule": f"finetuned {self.metric} at the largest common dim > base, on the headline evidence"}


def judge(metrics: dict[str, Any], *, evidence: str, adapted: str = render.FINETUNED) -> Verdict | None:
    """The gate on one metrics.json (the headline evidence); None without both ``base`` and ``adapted``."""
    if render.BASE not in metrics or adapted not in metrics:
        return None
    common = [dim for dim in render.dims(metrics) if dim in metrics[render.BASE] and dim in metrics[adapted]]
    if not common:
        return None
    metric, dim = render.main_metric(metrics), max(common, key=int)
    base = render.value(metrics, render.BASE, dim, metric)
    tuned = render.value(metrics, adapted, dim, metric)
    if base is None or tuned is None:
        return None
    meta = metrics.get(render.META, {})
    title = render.evidence_name(metrics)
    return Verdict(tuned > base, evidence, f"{meta.get('queries', '?')} {title}", metric, dim, float(base), float(tuned))
