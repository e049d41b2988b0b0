"""The run report: one Markdown page gathering what every stage recorded.

It is rebuilt from ``manifest.json`` and ``eval/metrics.json`` at the end of each
``domainfit run``, so it always matches the artifacts beside it.

Example::

    path, table = write_run_report(RunDir("runs/demo"), config)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .artifacts import RunDir, read_json, read_manifest, write_text
from .config import RunConfig

MIN_MEANINGFUL_QUERIES = 30

STAGE_TITLES = {
    "synth": "Documents, chunks and generated pairs",
    "split": "Splitting",
    "mine": "Hard-negative mining",
    "baseline": "Baseline evaluation (before training)",
    "train": "Training",
    "eval": "Evaluation",
    "rerank": "Re-ranker training",
    "export": "Export for a RAG stack",
}


def write_run_report(run: RunDir, config: RunConfig) -> tuple[Path, str]:
    """Write ``RUN/report.md``; returns its path and the main results table (Markdown)."""
    manifest = read_manifest(run)
    table = _results_table(run)
    lines = [
        f"# domainfit run report: `{run.root}`",
        "",
        f"- documents: `{manifest.get('documents_folder', '?')}`",
        f"- base model: `{config.base_model}`; LLM: `{config.llm.model or 'local Gemma 3 270M'}`"
        f" at `{config.llm.base_url or 'local llama.cpp server'}`",
        f"- updated: {manifest.get('updated', '?')}",
        "",
        "## Retrieval on held-out queries",
        "",
        table or "_No evaluation results yet._",
        "",
    ]
    caveat = _test_size_caveat(manifest) if table else ""
    if caveat:
        lines += [caveat, ""]
    for plot in ("ndcg_by_dim.png", "delta_by_dim.png"):
        if (run.eval_dir / plot).exists():
            lines += [f"![{plot}](eval/{plot})", ""]
    rerank_table = _rerank_table(run)
    if rerank_table:
        lines += ["## Re-ranking: the bi-encoder's top k, then a cross-encoder", "", rerank_table, "",
                  "Details: [rerank/report.md](rerank/report.md).", ""]
    split = manifest.get("split")
    if split:
        lines += ["## Split", "", _bullets(split), ""]
    review = manifest.get("review")
    if review and review.get("reviewed"):
        lines += ["## Human review", "", _bullets(review), ""]
    for stage, record in manifest.get("stages", {}).items():
        title = STAGE_TITLES.get(stage, stage)
        lines += [f"## {title}", "", f"- status: {record.get('status')}, {record.get('seconds', 0) or 0:.1f}s"]
        if record.get("counts"):
            lines.append(_bullets(record["counts"]))
        if record.get("details"):
            lines.append(_bullets(record["details"]))
        if record.get("error"):
            lines.append(f"- error: `{record['error']}`")
        lines.append("")
    lines += [
        "## Artifacts",
        "",
        "| file | what |",
        "| --- | --- |",
        "| `chunks.parquet` | document chunks |",
        "| `pairs.jsonl`, `rejected.jsonl` | accepted pairs, rejected answers with reasons |",
        "| `splits/` | train / val / test pair ids |",
        "| `index/`, `triplets.parquet` | LanceDB chunk vectors, mined negatives |",
        "| `model/` | the fine-tuned sentence-transformers model |",
        "| `eval/` | metrics.json, report.md, plots |",
        "| `rerank/` | the fine-tuned cross-encoder (`model/`), metrics.json, report.md (when rerank ran) |",
        "| `manifest.json` | config (secrets masked), versions, stage status, timings, counts |",
        "",
    ]
    path = write_text(run.report, "\n".join(lines))
    return path, "\n\n".join(part for part in (table, caveat) if part)


def _test_size_caveat(manifest: dict[str, Any]) -> str:
    """How many held-out queries the table rests on, and a warning when that is too few."""
    split = manifest.get("split") or {}
    if split.get("test") is None:
        return ""
    caveat = f"{split['test']} held-out queries, split by {split.get('by', '?')}."
    if split["test"] < MIN_MEANINGFUL_QUERIES:
        caveat += (
            f" **Fewer than {MIN_MEANINGFUL_QUERIES} test queries: these numbers are noise, not evidence.**"
            " Generate more pairs (more chunks, a stronger LLM) before drawing conclusions."
        )
    return caveat


def _results_table(run: RunDir) -> str:
    metrics_path = run.eval_dir / "metrics.json"
    if not metrics_path.exists():
        return ""
    from .evaluate.render import markdown_table

    return markdown_table(read_json(metrics_path))


def _rerank_table(run: RunDir) -> str:
    path = run.rerank_dir / "metrics.json"
    if not path.exists():
        return ""
    from .rerank.report import markdown_table

    return markdown_table(read_json(path))


def _bullets(data: dict[str, Any], indent: str = "") -> str:
    lines = []
    for key, value in data.items():
        if value in ({}, [], None, ""):
            continue
        if isinstance(value, dict):
            lines.append(f"{indent}- {key}:")
            lines.append(_bullets(value, indent + "  "))
        elif isinstance(value, float):
            lines.append(f"{indent}- {key}: {value:.4g}")
        elif isinstance(value, list) and len(value) > 10:
            lines.append(f"{indent}- {key}: {len(value)} items, first: {value[:3]}")
        else:
            lines.append(f"{indent}- {key}: {value}")
    return "\n".join(lines)
