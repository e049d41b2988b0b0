"""The rerank section: ``RUN/rerank/metrics.json`` rows as Markdown tables.

Each row is one retrieval setup: a bi-encoder's top k alone (dense), or followed by a
cross-encoder. There is a table for the generated test questions and, when the run
has real queries (``eval.queries``), one for those first: they are the evidence that
counts. The run report and ``RUN/rerank/report.md`` both show these tables.

Example::

    print(markdown_tables(read_json("runs/demo/rerank/metrics.json")))
"""

from __future__ import annotations

from typing import Any, Mapping

from ..markdown import pipe_table


def markdown_table(metrics: Mapping[str, Any]) -> str:
    """One row per setup: NDCG@10, MRR@10 and milliseconds per query, deltas against dense base."""
    rows = metrics.get("rows", [])
    if not rows:
        return ""
    baseline = rows[0]
    cells = []
    for row in rows:
        scores = []
        for metric in ("ndcg@10", "mrr@10"):
            value = row[metric]
            text = f"{value:.4f}"
            if row is not baseline:
                text += f" ({value - baseline[metric]:+.4f})"
            scores.append(text)
        cells.append([row["setup"], *scores, f"{row['ms_per_query']:.1f}"])
    return pipe_table(["retrieval", "ndcg@10", "mrr@10", "ms / query"], cells)


def markdown_tables(metrics: Mapping[str, Any]) -> str:
    """The real-queries table (when there is one) above the generated test questions' table, each titled."""
    parts = []
    real = metrics.get("real_queries")
    if real and real.get("rows"):
        meta = real.get("meta", {})
        parts.append(
            f"**Real queries** ({meta.get('queries', '?')} from `{meta.get('source', '?')}`, judged by document: "
            "a document ranks at its best chunk among the top k):\n\n" + markdown_table(real)
        )
        if meta.get("warning"):
            parts.append(f"Warning: {meta['warning']}.")
    table = markdown_table(metrics)
    if table:
        parts.append(f"**Generated test questions** ({metrics.get('meta', {}).get('queries', '?')}, "
                     "written by the LLM from the test chunks):\n\n" + table)
    return "\n\n".join(parts)


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
        markdown_tables(metrics),
        "",
        "Deltas are against each table's first row (the base bi-encoder alone). Time per query is query encoding and "
        "search (dense) plus scoring the top k pairs with the cross-encoder, on this machine; corpus encoding "
        "is paid once at indexing and not counted. NDCG@10 and MRR@10 are sentence-transformers' "
        "InformationRetrievalEvaluator's, as in eval/metrics.json.",
        "",
    ]
    return "\n".join(lines)
