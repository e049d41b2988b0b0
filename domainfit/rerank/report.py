"""The rerank section: ``RUN/rerank/metrics.json`` rows as a Markdown table.

Each row is one retrieval setup on the held-out questions: a bi-encoder's top k alone
(dense), or followed by a cross-encoder. The run report and ``RUN/rerank/report.md``
both show this table.

Example::

    print(markdown_table(read_json("runs/demo/rerank/metrics.json")))
"""

from __future__ import annotations

from typing import Any, Mapping


def markdown_table(metrics: Mapping[str, Any]) -> str:
    """One row per setup: NDCG@10, MRR@10 and milliseconds per query, deltas against dense base."""
    rows = metrics.get("rows", [])
    if not rows:
        return ""
    baseline = rows[0]
    lines = ["| retrieval | ndcg@10 | mrr@10 | ms / query |", "| --- | --- | --- | --- |"]
    for row in rows:
        cells = []
        for metric in ("ndcg@10", "mrr@10"):
            value = row[metric]
            text = f"{value:.4f}"
            if row is not baseline:
                text += f" ({value - baseline[metric]:+.4f})"
            cells.append(text)
        lines.append(f"| {row['setup']} | {cells[0]} | {cells[1]} | {row['ms_per_query']:.1f} |")
    return "\n".join(lines)


def markdown_report(metrics: Mapping[str, Any]) -> str:
    """The whole ``RUN/rerank/report.md``."""
    meta = metrics.get("meta", {})
    lines = [
        "# Re-ranking on held-out questions",
        "",
        f"- {meta.get('queries', '?')} test questions against {meta.get('corpus', '?')} chunks; "
        f"the bi-encoder retrieves the top {meta.get('top_k', '?')}, the cross-encoder re-scores them",
        f"- re-ranker: fine-tuned from `{meta.get('base_model', '?')}`"
        + (" (a fresh one-logit head on the packaged MiniLM: there is no base re-ranker to compare)"
           if meta.get("fresh_head") else ""),
        f"- loss: {meta.get('loss', '?')}" + (f" ({meta['loss_note']})" if meta.get("loss_note") else ""),
        "",
        markdown_table(metrics),
        "",
        "Deltas are against the first row (the base bi-encoder alone). Time per query is query encoding and "
        "search (dense) plus scoring the top k pairs with the cross-encoder, on this machine; corpus encoding "
        "is paid once at indexing and not counted. NDCG@10 and MRR@10 are sentence-transformers' "
        "InformationRetrievalEvaluator's, as in eval/metrics.json.",
        "",
    ]
    return "\n".join(lines)
