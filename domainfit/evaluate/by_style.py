"""The main metric per query style (question, claim, keywords): which kind of query adaptation helps.

A run that generates several styles (``synth.query_styles``) stores the style on each
pair; the synthetic test split is then scored for each style's queries alone, from the
rankings the models already computed (nothing is encoded again). A model reused from
an earlier ``metrics.json`` has no rankings in memory and keeps its earlier per-style
numbers. Only the main metric is kept, at every dim.

Example::

    by_style = metrics_by_style(task, {"base": base_result, "finetuned": tuned}, spec, "ndcg@10")
    by_style["claim"]["queries"], by_style["claim"]["finetuned"]["128"]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from .metrics import MetricSpec, score_ranking
from .task import RetrievalTask

if TYPE_CHECKING:  # pragma: no cover
    from .engine import ModelResult


def metrics_by_style(
    task: RetrievalTask,
    results: Mapping[str, "ModelResult"],
    spec: MetricSpec,
    metric: str,
    *,
    graded: bool = False,
    previous: Mapping[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """``{style: {"queries": n, label: {dim: value}}}``; ``{}`` unless the queries have two styles or more.

    ``previous`` is an earlier ``meta.by_style``: a label without rankings takes its
    entry from there (when the style had the same number of queries), else is left out.
    """
    styles = task.query_styles
    if not styles or len(set(styles)) < 2:
        return {}
    relevant = task.relevance_by_index()
    found: dict[str, dict[str, Any]] = {}
    for style in sorted(set(styles)):
        rows = np.array([index for index, name in enumerate(styles) if name == style])
        entry: dict[str, Any] = {"queries": int(len(rows))}
        earlier = (previous or {}).get(style, {})
        for label, result in results.items():
            if result.rankings:
                entry[label] = {
                    dim: round(score_ranking(ranked[rows], [relevant[i] for i in rows], len(task.ranked_ids), spec,
                                             graded=graded)[metric], 4)
                    for dim, ranked in result.rankings.items()
                }
            elif label in earlier and earlier.get("queries") == entry["queries"]:
                entry[label] = earlier[label]
        found[style] = entry
    return found
