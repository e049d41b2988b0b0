"""Rendering an evaluation: metrics.json, eval/report.md, two PNG plots and a rich table.

(Not to be confused with :mod:`domainfit.report`, the whole run's report, which
embeds this module's main table.)

``metrics.json`` is nested: model label -> dim (a string; ``full`` for BM25) ->
metric (sentence-transformers' names) -> value, plus a ``meta`` block. Everything
here reads only that dict, so a report can be re-rendered from the JSON alone.

Example::

    metrics = read_json("runs/demo/eval/metrics.json")
    print(markdown_table(metrics))          # main metric by dim, deltas vs base
    write_reports(Path("runs/demo/eval"), metrics)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ..artifacts import atomic_path, write_json, write_text
from ..markdown import pipe_table

BASE = "base"
FINETUNED = "finetuned"
BM25 = "bm25"
HYBRID_SUFFIX = "+bm25"
FULL = "full"
META = "meta"

Metrics = dict[str, Any]


def is_hybrid(label: str) -> bool:
    """A dense model fused with BM25 (``base+bm25``, ``finetuned+bm25``)."""
    return label.endswith(HYBRID_SUFFIX)


def labels(metrics: Metrics) -> list[str]:
    """Model labels in report order: base first, the others as evaluated, BM25, then the hybrids."""
    found = [label for label in metrics if label != META]
    order = lambda label: 0 if label == BASE else 3 if is_hybrid(label) else 2 if label == BM25 else 1  # noqa: E731
    return sorted(found, key=order)


def dims(metrics: Metrics) -> list[str]:
    """Every dense dim evaluated, largest first (as strings, the JSON keys)."""
    every = {dim for label in labels(metrics) for dim in metrics[label] if dim != FULL}
    return sorted(every, key=int, reverse=True)


def main_metric(metrics: Metrics) -> str:
    return metrics.get(META, {}).get("main_metric", "ndcg@10")


def value(metrics: Metrics, label: str, dim: str, metric: str) -> float | None:
    """A model's metric at a dim; BM25's single value stands for every dim."""
    results = metrics.get(label, {})
    row = results.get(dim) or results.get(FULL)
    return None if row is None else row.get(metric)


SYNTHETIC_TITLE = "synthetic questions from the same generator (optimistic)"


def evidence_name(metrics: Metrics) -> str:
    """The kind of queries, in words: ``real queries (file.jsonl)``, ``synthetic test questions`` …"""
    meta = metrics.get(META, {})
    if meta.get("evidence") == "queries":
        return f"real queries ({Path(str(meta.get('source', 'file'))).name})"
    if meta.get("evidence") == "human":
        return "questions written by people on the review page"
    if meta.get("evidence") == "synthetic":
        return "synthetic test questions (optimistic)"
    return "judged queries"


def evidence_title(metrics: Metrics) -> str:
    """What the numbers rest on, in words: real queries, synthetic test questions, or a BEIR folder."""
    meta = metrics.get(META, {})
    queries, corpus = meta.get("queries", "?"), meta.get("corpus", "?")
    if meta.get("evidence") == "queries":
        return (f"real queries ({Path(str(meta.get('source', 'file'))).name}): {queries} queries vs {corpus} "
                f"documents ({meta.get('chunks', '?')} chunks)")
    if meta.get("evidence") == "synthetic":
        return f"{SYNTHETIC_TITLE}: {queries} queries vs {corpus} chunks"
    if meta.get("evidence") == "human":
        return f"questions people wrote on the review page: {queries} queries vs {corpus} chunks"
    return f"{queries} queries vs {corpus} documents"


def delta(current: float | None, base: float | None) -> tuple[float | None, float | None]:
    """Absolute and relative (fraction) change against the base model."""
    if current is None or base is None:
        return None, None
    return current - base, ((current - base) / base if base else None)


def _fmt(number: float | None, *, signed: bool = False, percent: bool = False) -> str:
    if number is None:
        return "–"
    if percent:
        return f"{number * 100:+.1f}%"
    return f"{number:+.4f}" if signed else f"{number:.4f}"


def _cell(metrics: Metrics, label: str, dim: str, metric: str) -> str:
    current = value(metrics, label, dim, metric)
    if label == BASE or BASE not in metrics:
        return _fmt(current)
    absolute, relative = delta(current, value(metrics, BASE, dim, metric))
    return f"{_fmt(current)} ({_fmt(absolute, signed=True)}, {_fmt(relative, percent=True)})"


def markdown_table(metrics: Metrics, metric: str | None = None) -> str:
    """The main table as markdown: one row per model, one column per dim.

    Cells of models other than ``base`` read ``value (absolute delta, relative delta)``
    against the base model at the same dim; BM25 has no dims, so its one value is
    compared with the base at each dim.
    """
    metric = metric or main_metric(metrics)
    columns = dims(metrics) or [FULL]
    header = [f"{metric}", *(f"dim {dim}" if dim != FULL else "full" for dim in columns)]
    rows = [[label, *(_cell(metrics, label, dim, metric) for dim in columns)] for label in labels(metrics)]
    return pipe_table(header, rows)


def rich_table(metrics: Metrics, metric: str | None = None):
    """The main table for the terminal (a :class:`rich.table.Table`)."""
    from rich.table import Table

    metric = metric or main_metric(metrics)
    columns = dims(metrics) or [FULL]
    table = Table(title=f"{metric} on {evidence_title(metrics)}")
    table.add_column("model", style="bold")
    for dim in columns:
        table.add_column(f"dim {dim}" if dim != FULL else "full", justify="right")
    for label in labels(metrics):
        cells = []
        for dim in columns:
            current = value(metrics, label, dim, metric)
            absolute, relative = delta(current, value(metrics, BASE, dim, metric))
            if label == BASE or absolute is None:
                cells.append(_fmt(current))
            else:
                colour = "green" if absolute > 0 else "red" if absolute < 0 else "white"
                cells.append(
                    f"{_fmt(current)} [{colour}]{_fmt(absolute, signed=True)} {_fmt(relative, percent=True)}[/]"
                )
        table.add_row(label, *cells)
    return table


def _dim_table(metrics: Metrics, dim: str) -> str:
    others = [label for label in labels(metrics) if label != BASE and BASE in metrics]
    header = ["metric", *labels(metrics)]
    for label in others:
        header += [f"Δ {label}", f"Δ% {label}"]
    rows = []
    names = metrics.get(META, {}).get("metric_names") or sorted(
        {name for label in labels(metrics) for row in metrics[label].values() for name in row}
    )
    for name in names:
        row = [name, *(_fmt(value(metrics, label, dim, name)) for label in labels(metrics))]
        for label in others:
            absolute, relative = delta(value(metrics, label, dim, name), value(metrics, BASE, dim, name))
            row += [_fmt(absolute, signed=True), _fmt(relative, percent=True)]
        rows.append(row)
    return pipe_table(header, rows)


def _cost_table(metrics: Metrics) -> str:
    meta = metrics.get(META, {})
    latency = meta.get("latency_ms_per_query", {})
    header = ["dim", "bytes / vector (float32)", *(f"{label} ms / query" for label in labels(metrics))]
    rows = []
    for dim in dims(metrics) or [FULL]:
        row = [dim, str(meta.get("bytes_per_vector", {}).get(dim, "–"))]
        for label in labels(metrics):
            timing = latency.get(label, {}).get(dim) or latency.get(label, {}).get(FULL)
            row.append(
                "–" if not timing else f"{timing['total']:.2f} ({timing['encode']:.2f} encode + {timing['search']:.3f} search)"
            )
        rows.append(row)
    return pipe_table(header, rows)


def _style_table(metrics: Metrics) -> str:
    """The main metric per query style at each model's largest dim, Δ against base ('' with one style)."""
    by_style = metrics.get(META, {}).get("by_style") or {}
    if not by_style:
        return ""
    shown = labels(metrics)
    header = ["style", "queries", *shown]
    rows = []
    for style, entry in by_style.items():
        base_values = entry.get(BASE) or {}
        row = [style, str(entry.get("queries", "?"))]
        for label in shown:
            values = entry.get(label) or {}
            dim = next(iter(values), None)
            if dim is None:
                row.append("–")
                continue
            cell = _fmt(values[dim])
            base = base_values.get(dim) if dim != FULL else next(iter(base_values.values()), None)
            if label != BASE and base is not None:
                cell += f" ({_fmt(values[dim] - base, signed=True)})"
            row.append(cell)
        rows.append(row)
    return pipe_table(header, rows)


def _split_section(meta: dict[str, Any]) -> list[str]:
    split = meta.get("split")
    leak = meta.get("leak_check", {})
    if not split:
        return [f"- queries: {meta.get('source', 'a BEIR folder')} (no split: all judged queries are used)"]
    counts = split.get("counts", {})
    lines = [
        f"- split: by **{split.get('by')}**, seed {split.get('seed')}; pairs train / val / test = "
        f"{counts.get('train', '?')} / {counts.get('val', '?')} / {counts.get('test', '?')}",
        f"- leak check: **{leak.get('status', '?')}** ({leak.get('leaked_chunks', 0)} test chunk(s) are also "
        "training or validation positives)",
    ]
    if split.get("by") == "query":
        lines.append(
            "- **warning: optimistic.** This is the random row (by-query) split: other questions about the same "
            "test chunks were trained on, which flatters the fine-tuned model. Re-split by document or chunk "
            "for a number to trust."
        )
    return lines


HOW_TO_ADD_REAL_QUERIES = (
    "**These numbers are optimistic.** The test questions were written by the same generator as the training "
    "pairs, so they reward fitting the generator, not your users. For evidence you can trust, write 20-50 queries "
    "as your users would, one JSON line each with the documents that answer them: "
    '`{"query": "...", "relevant": ["path/relative/to/DOCS"]}`, then run `domainfit eval RUN --queries FILE` '
    "(or `domainfit run DOCS --queries FILE`); or write your own questions for chunks on the review page "
    "(`domainfit review RUN`, key `w`)."
)


def _setup_lines(metrics: Metrics) -> list[str]:
    meta = metrics.get(META, {})
    unit = "documents" if meta.get("judged_by") == "document" else "corpus entries"
    lines = _split_section(meta)
    lines += [
        f"- {meta.get('queries', '?')} queries against {meta.get('corpus', '?')} {unit}"
        + (f" ({meta['chunks']} chunks; a document ranks by its best chunk)" if meta.get("chunks") else "")
        + f" ({meta.get('relevant_per_query', '?')} relevant per query on average"
        + (
            f"; {meta['duplicate_relevant']} extra relevant from exact duplicate texts"
            if meta.get("duplicate_relevant")
            else ""
        )
        + ")",
        f"- relevance: {'graded qrels (binary for the standard metrics, grades for graded_ndcg)' if meta.get('graded') else 'binary'}",
        "- models: "
        + ", ".join(f"`{label}` = {meta.get('models', {}).get(label, {}).get('location', '?')}" for label in labels(metrics)),
    ]
    unknown = meta.get("unknown_relevant") or {}
    if unknown.get("paths"):
        lines.append(
            f"- **warning:** {unknown['paths']} relevant path(s) of the queries file are not among the run's documents "
            f"(e.g. `{(unknown.get('examples') or ['?'])[0]}`): {unknown.get('judgements', 0)} judgement(s) dropped, "
            f"{unknown.get('dropped_queries', 0)} query(ies) left with none skipped"
        )
    return lines


def _results_section(metrics: Metrics, level: int, plots: str) -> list[str]:
    """Setup bullets, the main table, plots and a table per dim, under headings of ``level``."""
    metric = main_metric(metrics)
    heading = "#" * level
    lines = [*_setup_lines(metrics), "", f"{heading} {metric} by dim", "", markdown_table(metrics, metric), "",
             f"![ndcg by dim]({plots}ndcg_by_dim.png)", ""]
    if any(label != BASE for label in labels(metrics)) and BASE in metrics:
        lines += [f"![delta by dim]({plots}delta_by_dim.png)", ""]
    styles = _style_table(metrics)
    if styles:
        top = (dims(metrics) or [FULL])[0]
        lines += [f"{heading} {metric} by query style", "",
                  f"Each style's test questions scored alone, at dim {top} (BM25: its one score); Δ against base. "
                  "Small groups move a lot by chance.", "", styles, ""]
    for dim in dims(metrics) or [FULL]:
        lines += [f"{heading} dim {dim}", "", _dim_table(metrics, dim), ""]
    lines += [f"{heading} Cost per dim", "", _cost_table(metrics), ""]
    return lines


def markdown_report(
    metrics: Metrics,
    *,
    below: Sequence[tuple[Metrics, str]] = (),
    first_line: str | None = None,
    plots: str = "",
) -> str:
    """The whole ``report.md``: setup, main table, a table per dim, costs, how to read it.

    ``metrics`` is the headline evidence; each ``below`` entry (metrics, plot folder
    prefix such as ``"queries/"``) follows it under its own heading. ``first_line``
    (the promotion verdict) goes above everything; ``plots`` prefixes the headline's plots.
    """
    meta = metrics.get(META, {})
    metric = main_metric(metrics)
    lines = [first_line, ""] if first_line else []
    lines += [f"# Retrieval evaluation: {meta.get('name', 'held-out queries')}", ""]
    if meta.get("evidence"):
        lines += [f"Headline evidence: **{evidence_title(metrics)}**.", ""]
    if meta.get("evidence") == "synthetic":
        lines += [HOW_TO_ADD_REAL_QUERIES, ""]
    lines += _results_section(metrics, 2, plots)
    for other, plots in below:
        lines += [f"## Below the headline: {evidence_title(other)}", ""]
        if other.get(META, {}).get("evidence") == "synthetic":
            lines += ["Generated by the same LLM as the training pairs: optimistic; the headline above is the "
                      "evidence to trust.", ""]
        lines += _results_section(other, 3, plots)
    lines += [
        "## How to read this",
        "",
        f"- Each cell is the mean over queries; the main metric is {metric}. Names and formulas are "
        "sentence-transformers' `InformationRetrievalEvaluator`'s, so the numbers compare 1:1 with it.",
        "- Δ is the change against `base` at the same dim: absolute, then relative. BM25 has no dims; its one "
        "number is compared with the base at each dim.",
        "- `base+bm25` and `finetuned+bm25` fuse the dense ranking with BM25's by reciprocal rank fusion "
        "(score = Σ 1 / (k + rank)): a hybrid you can deploy instead of either alone.",
        "- A dim is the first N coordinates of the full embedding, renormalised: what a Matryoshka-trained model "
        "lets you store. Bytes per vector are float32; latency is per query, encoding in batches plus an exact "
        "search of the whole corpus on this machine.",
        "- Small test sets move a lot by chance: a difference of a point or two on a few dozen queries is noise.",
        "",
    ]
    return "\n".join(lines)


def plot_by_dim(metrics: Metrics, path: Path, metric: str | None = None) -> Path:
    """``ndcg_by_dim.png``: the main metric against dim, one line per model (BM25 dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = metric or main_metric(metrics)
    columns = dims(metrics)
    figure, axes = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    for label in labels(metrics):
        if set(metrics[label]) == {FULL}:
            axes.axhline(value(metrics, label, FULL, metric) or 0.0, linestyle="--", color="grey", label=label)
            continue
        points = [(int(dim), metrics[label][dim][metric]) for dim in columns if dim in metrics[label]]
        axes.plot([x for x, _ in points], [y for _, y in points], marker="o", label=label)
    if columns:
        axes.set_xscale("log", base=2)
        axes.set_xticks([int(dim) for dim in columns], labels=columns)
        axes.minorticks_off()
    axes.set_xlabel("embedding dim")
    axes.set_ylabel(metric)
    axes.set_title(f"{metric} by embedding dim")
    axes.grid(alpha=0.3)
    axes.legend()
    return _save(figure, path)


def plot_delta(metrics: Metrics, path: Path, metric: str | None = None) -> Path | None:
    """``delta_by_dim.png``: each model's change against base at every dim (bars); None without a base."""
    others = [label for label in labels(metrics) if label != BASE]
    columns = dims(metrics)
    if BASE not in metrics or not others or not columns:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = metric or main_metric(metrics)
    figure, axes = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    width = 0.8 / len(others)
    for number, label in enumerate(others):
        changes = [delta(value(metrics, label, dim, metric), value(metrics, BASE, dim, metric))[0] or 0.0 for dim in columns]
        positions = [index + number * width - 0.4 + width / 2 for index in range(len(columns))]
        style = {"color": "lightgrey", "hatch": "//", "edgecolor": "grey"} if label == BM25 else {}
        axes.bar(positions, changes, width=width, label=label, **style)
    axes.axhline(0.0, color="black", linewidth=0.8)
    axes.set_xticks(range(len(columns)), labels=columns)
    axes.set_xlabel("embedding dim")
    axes.set_ylabel(f"Δ {metric} vs base")
    axes.set_title(f"change in {metric} against the base model")
    axes.grid(axis="y", alpha=0.3)
    axes.legend()
    return _save(figure, path)


def _save(figure, path: Path) -> Path:
    import matplotlib.pyplot as plt

    figure.tight_layout()
    with atomic_path(path) as temp:
        figure.savefig(temp, format="png")
    plt.close(figure)
    return path


def write_reports(eval_dir: Path, metrics: Metrics) -> dict[str, Path]:
    """Write metrics.json, report.md and the plots into ``eval_dir``; returns their paths."""
    eval_dir = Path(eval_dir)
    eval_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "metrics": write_json(eval_dir / "metrics.json", metrics),
        "report": write_text(eval_dir / "report.md", markdown_report(metrics)),
        "ndcg_plot": plot_by_dim(metrics, eval_dir / "ndcg_by_dim.png"),
    }
    stale = eval_dir / "delta_by_dim.png"
    delta_plot = plot_delta(metrics, stale)
    if delta_plot is not None:
        files["delta_plot"] = delta_plot
    else:
        stale.unlink(missing_ok=True)
    return files
