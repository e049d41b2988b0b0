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
    """Write ``RUN/report.md``; returns its path and the results tables (Markdown, headline last).

    The first line is the promotion verdict when an adapted model was evaluated; the
    headline table is the real queries' when the eval had them, with the synthetic
    test split below; without them the synthetic table says what it is and how to
    add real queries.
    """
    manifest = read_manifest(run)
    evidence = _evaluated_evidence(run, manifest)
    synthetic = evidence.get("synthetic")
    caveat = _test_size_caveat(manifest) if synthetic else ""
    lines = [_first_line(manifest), ""] if manifest.get("promotion") else []
    lines += [
        f"# domainfit run report: `{run.root}`",
        "",
        f"- documents: `{manifest.get('documents_folder', '?')}`",
        f"- base model: `{config.base_model}`; LLM: `{config.llm.model or 'local Gemma 3 270M'}`"
        f" at `{config.llm.base_url or 'local llama.cpp server'}`",
        f"- updated: {manifest.get('updated', '?')}",
        "",
    ]
    tables: list[str] = []
    for number, (kind, metrics) in enumerate(evidence.items()):
        table = _table(metrics)
        heading = "## Retrieval on " if number == 0 else "## Below: "
        lines += [f"{heading}{_title(metrics)}", "", table, ""]
        if kind in ("queries", "human"):
            lines += [_HUMAN_NOTE[kind], "", f"![ndcg_by_dim.png](eval/{kind}/ndcg_by_dim.png)", ""]
        if kind == "synthetic":
            if caveat:
                lines += [caveat, ""]
            if number == 0:
                lines += [_how_to_add_real_queries(), ""]
                for plot in ("ndcg_by_dim.png", "delta_by_dim.png"):
                    if (run.eval_dir / plot).exists():
                        lines += [f"![{plot}](eval/{plot})", ""]
        tables.insert(0, "\n\n".join(part for part in (table, caveat if kind == "synthetic" else "") if part))
    if not tables:
        lines += ["## Retrieval on held-out queries", "", "_No evaluation results yet._", ""]
    rerank_table = _rerank_table(run)
    if rerank_table:
        lines += ["## Re-ranking: the bi-encoder's top k, then a cross-encoder", "", rerank_table, "",
                  "Details: [rerank/report.md](rerank/report.md).", ""]
    from .cost import cost_section

    headline = next(iter(evidence.values()), None)
    lines += cost_section(manifest, headline, verdict(manifest), config.llm)
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
    return path, "\n\n".join(tables)


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


_HUMAN_NOTE = {
    "queries": "These queries were written by people and never trained on: the evidence to trust.",
    "human": "Questions people wrote for chunks on the review page (`human.jsonl`), never trained on.",
}


def _evaluated_evidence(run: RunDir, manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The latest evaluation's metrics by evidence, headline first (real queries, human, synthetic)."""
    stages = manifest.get("stages", {})
    counts = (stages.get("eval") or stages.get("baseline") or {}).get("counts") or {}
    wanted = {"queries": bool(counts.get("real_queries")), "human": bool(counts.get("human_queries")),
              "synthetic": True}
    paths = {"queries": run.eval_dir / "queries", "human": run.eval_dir / "human", "synthetic": run.eval_dir}
    found = {}
    for kind in ("queries", "human", "synthetic"):
        metrics = _read_metrics(paths[kind] / "metrics.json") if wanted[kind] else None
        if metrics:
            found[kind] = metrics
    return found


def _read_metrics(path: Path) -> dict[str, Any] | None:
    return read_json(path) if path.exists() else None


def verdict(manifest: dict[str, Any]):
    """The manifest's promotion record as a :class:`~domainfit.evaluate.gate.Verdict`, or None."""
    from .evaluate.gate import Verdict

    promotion = manifest.get("promotion")
    if not promotion:
        return None
    return Verdict(**{key: value for key, value in promotion.items() if key not in ("margin", "rule")})


def _first_line(manifest: dict[str, Any]) -> str:
    return verdict(manifest).first_line()


def _title(metrics: dict[str, Any]) -> str:
    from .evaluate.render import SYNTHETIC_TITLE, evidence_title

    return evidence_title(metrics) if metrics.get("meta") else SYNTHETIC_TITLE


def _how_to_add_real_queries() -> str:
    from .evaluate.render import HOW_TO_ADD_REAL_QUERIES

    return HOW_TO_ADD_REAL_QUERIES


def _table(metrics: dict[str, Any]) -> str:
    from .evaluate.render import markdown_table

    return markdown_table(metrics)


def _rerank_table(run: RunDir) -> str:
    path = run.rerank_dir / "metrics.json"
    if not path.exists():
        return ""
    from .rerank.report import markdown_tables

    return markdown_tables(read_json(path))


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
