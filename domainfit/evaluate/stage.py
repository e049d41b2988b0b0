"""The eval stage: held-out queries (or a BEIR folder) against the whole corpus, every
model at every Matryoshka dim, side by side, written to ``eval/``.

With real queries (``queries=FILE``, ``--queries``; format in :mod:`.queries`) they
are evaluated too, judged by document, and written to ``eval/queries/``; they are
the headline evidence (``EvalResult.headline``) and the synthetic test split is
shown below them.

A model whose results are already in the target's ``metrics.json`` for the same
corpus, queries, metrics and weights is not evaluated again, so the pipeline's
baseline evaluation (``include_finetuned=False``) is not repeated after training.

Example::

    result = run_evaluation(RunDir("runs/demo"), load_config())
    print(result.summary())
    result.metrics["finetuned"]["128"]["ndcg@10"]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..artifacts import RunDir, read_chunks, read_json, stage_run, update_manifest, write_text
from ..config import RunConfig
from ..errors import ArtifactError, EvaluationError, SplitError
from ..splits import Splits, ensure_splits, leaked_chunks
from ..tracking import flat_metrics, log_final_metrics
from ..vectors import VectorCache, default_cache_dir, run_cache
from . import render
from .candidates import ModelSpec, candidate_models
from .engine import evaluate_task
from .gate import Verdict, judge
from ..queries import load_queries
from .queries import task_from_queries
from .task import RetrievalTask, task_from_pairs

QUERIES_DIR = "queries"
HUMAN_DIR = "human"
HEADLINE_ORDER = ("queries", "human", "synthetic")
"""Which evidence heads the report: real queries, then questions people wrote, then generated ones."""


@dataclass
class EvalResult:
    """What an evaluation wrote and found.

    ``metrics`` is the synthetic test split's metrics.json content (``{}`` when it was
    skipped; for ``--beir`` the BEIR folder's); ``queries_metrics`` the real queries'
    (``eval/queries/metrics.json``) and ``human_metrics`` the review page's human-written
    questions' (``eval/human/metrics.json``), or None; ``warnings`` are one-line notes
    for the user (e.g. unknown relevant paths); ``verdict`` is the gate's decision.
    """

    eval_dir: Path
    metrics: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)
    reused: list[str] = field(default_factory=list)
    queries_metrics: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    verdict: Verdict | None = None
    human_metrics: dict[str, Any] | None = None
    vector_counts: dict[str, int] = field(default_factory=dict)

    @property
    def meta(self) -> dict[str, Any]:
        return self.headline[render.META]

    def by_evidence(self) -> dict[str, dict[str, Any]]:
        """Every evaluated evidence by kind, headline first (see ``HEADLINE_ORDER``)."""
        found = {"queries": self.queries_metrics, "human": self.human_metrics, "synthetic": self.metrics}
        return {kind: found[kind] for kind in HEADLINE_ORDER if found[kind]}

    @property
    def headline(self) -> dict[str, Any]:
        """The evidence the result rests on: real queries, else human-written questions, else synthetic."""
        return next(iter(self.by_evidence().values()), self.metrics)

    @property
    def evidence(self) -> str:
        """``queries``, ``human``, ``synthetic`` (the generated test split) or ``judged`` (BEIR)."""
        return self.headline.get(render.META, {}).get("evidence") or "judged"

    def labels(self) -> list[str]:
        return render.labels(self.headline)

    def counts(self) -> dict[str, Any]:
        """What goes into the manifest."""
        counts: dict[str, Any] = {"evidence": self.evidence}
        if self.metrics:
            meta = self.metrics[render.META]
            counts.update({
                "queries": meta.get("queries"),
                "corpus": meta.get("corpus"),
                "leaked_chunks": meta.get("leak_check", {}).get("leaked_chunks", 0),
            })
        if self.human_metrics:
            counts["human_queries"] = self.human_metrics[render.META].get("queries")
        if self.queries_metrics:
            meta = self.queries_metrics[render.META]
            counts.update({
                "real_queries": meta.get("queries"),
                "real_queries_documents": meta.get("corpus"),
                "unknown_relevant_paths": meta.get("unknown_relevant", {}).get("paths", 0),
            })
        counts.update({"models": len(self.labels()), "dims": len(render.dims(self.headline)),
                       "reused_models": len(self.reused)})
        return counts

    def tables(self) -> list:
        """The terminal tables (rich), the headline last."""
        return [render.rich_table(metrics) for metrics in reversed(list(self.by_evidence().values()))]

    def table(self):
        """The headline table for the terminal (rich)."""
        return render.rich_table(self.headline)

    def markdown(self) -> str:
        return render.markdown_table(self.headline)

    def summary(self) -> str:
        lines = [*(f"warning: {warning}" for warning in self.warnings)]
        evidence = self.by_evidence()
        titles = {"queries": "real queries", "human": "human-written questions", "synthetic": "synthetic test questions"}
        for kind, metrics in reversed(list(evidence.items())):
            title = "eval" if len(evidence) == 1 else titles[kind] + (" (headline)" if metrics is self.headline else "")
            lines.append(_summary_line(metrics, title))
        if not evidence and self.metrics:
            lines.append(_summary_line(self.metrics, "eval"))
        lines.append(f"report: {self.eval_dir / 'report.md'}")
        advice = self.advice()
        if advice:
            lines.append(advice)
        return "\n".join(lines)

    def advice(self) -> str:
        """The gate's one line (which model to use), or '' when no adapted model was evaluated."""
        if self.verdict is None:
            return ""
        models = self.meta.get("models", {})
        return self.verdict.advice(models.get(render.FINETUNED, {}).get("location", "?"),
                                   models.get(render.BASE, {}).get("location", "?"))


def _summary_line(metrics: dict[str, Any], title: str) -> str:
    meta = metrics[render.META]
    metric = render.main_metric(metrics)
    dims = render.dims(metrics)
    dim = dims[0] if dims else render.FULL
    parts = []
    for label in render.labels(metrics):
        current = render.value(metrics, label, dim, metric)
        absolute, relative = render.delta(current, render.value(metrics, render.BASE, dim, metric))
        if label == render.BASE or absolute is None:
            parts.append(f"{label} {current:.4f}")
        else:
            parts.append(f"{label} {current:.4f} ({absolute:+.4f}, {relative * 100 if relative else 0:+.1f}%)")
    split = meta.get("split")
    how = f"split by {split['by']}, leak check {meta['leak_check']['status']}" if split else meta.get("name")
    unit = "documents" if meta.get("judged_by") == "document" or not split else "chunks"
    return (f"{title}: {meta['queries']} queries vs {meta['corpus']} {unit} ({how}); "
            f"{metric} at dim {dim}: " + ", ".join(parts))


def _previous_metrics(eval_dir: Path) -> dict[str, Any] | None:
    try:
        return read_json(eval_dir / "metrics.json")
    except ArtifactError:
        return None


@dataclass
class _Evidence:
    """One task to evaluate and where its files go."""

    task: RetrievalTask
    eval_dir: Path
    meta: dict[str, Any]


def _finish(target: RunDir, evidence: list[_Evidence], specs: list[ModelSpec], config: RunConfig, *,
            stage: str, cache: VectorCache, warnings: Sequence[str] = ()) -> EvalResult:
    with stage_run(target.ensure(), stage, config_hash=config.stage_hash(stage)) as record:
        done: dict[str, dict[str, Any]] = {}
        files: dict[str, Path] = {}
        reused: list[str] = []
        for item in evidence:
            metrics, reused_here = evaluate_task(item.task, specs, config, previous=_previous_metrics(item.eval_dir),
                                                 meta=item.meta, cache=cache)
            written = render.write_reports(item.eval_dir, metrics)
            prefix = "" if item.eval_dir == target.eval_dir else f"{item.eval_dir.name}_"
            files.update({f"{prefix}{key}": path for key, path in written.items()})
            reused = reused or reused_here
            done[item.meta.get("evidence") or "judged"] = metrics
        synthetic = done.get("synthetic") or done.get("judged") or {}
        result = EvalResult(target.eval_dir, synthetic, files, reused, queries_metrics=done.get("queries"),
                            warnings=list(warnings), human_metrics=done.get("human"))
        result.verdict = judge(result.headline, evidence=result.evidence)
        files["report"] = _write_main_report(target.eval_dir, result)
        result.vector_counts = cache.counts()
        record.counts.update({**result.counts(), **cache.counts()})
        record.details.update({"labels": result.labels(), "main_table": result.markdown(),
                               "vector_cache": str(cache.root) if cache.enabled else None})
        if cache.rebuilt:
            record.details["vector_cache_rebuilt"] = cache.rebuilt
        if warnings:
            record.details["warnings"] = list(warnings)
        if result.verdict is not None:
            record.details["promotion"] = result.verdict.as_dict()
    if result.verdict is not None:
        update_manifest(target, promoted=result.verdict.promoted, promotion=result.verdict.as_dict())
    scores: dict[str, Any] = {label: result.metrics[label] for label in render.labels(result.metrics)}
    for kind, metrics in (("queries", result.queries_metrics), ("human", result.human_metrics)):
        if metrics:
            scores[kind] = {label: metrics[label] for label in render.labels(metrics)}
    log_final_metrics(target, config.train.report_to, flat_metrics(scores, stage))
    return result


def _plots_prefix(metrics: dict[str, Any]) -> str:
    kind = metrics.get(render.META, {}).get("evidence")
    return {"queries": f"{QUERIES_DIR}/", "human": f"{HUMAN_DIR}/"}.get(kind, "")


def _write_main_report(eval_dir: Path, result: EvalResult) -> Path:
    """``eval/report.md``: the gate's verdict first, the headline evidence, then the rest below it."""
    evidence = list(result.by_evidence().values()) or [result.metrics]
    headline, below = evidence[0], [(metrics, _plots_prefix(metrics)) for metrics in evidence[1:]]
    first_line = result.verdict.first_line() if result.verdict else None
    text = render.markdown_report(headline, below=below, first_line=first_line, plots=_plots_prefix(headline))
    return write_text(eval_dir / "report.md", text)


def run_evaluation(
    run: RunDir,
    config: RunConfig,
    *,
    models: Sequence[str] = (),
    out: RunDir | None = None,
    labels: Sequence[str] | None = None,
    include_finetuned: bool = True,
    queries: str | Path | None = None,
    cache: VectorCache | None = None,
) -> EvalResult:
    """Evaluate the run's held-out test queries (and real queries, if given) against all of its chunks.

    Queries are the test split's reviewed pairs; the corpus is every chunk; a query's
    relevant chunks are its own and any chunk with the same normalised text. Models:
    ``base``, ``finetuned`` (``RUN/model`` if it exists and ``include_finetuned``),
    each of ``models`` (``LABEL=PATH`` or ``PATH``), and ``bm25`` if ``eval.bm25``.
    ``labels`` keeps only those labels. Results go to ``(out or run)/eval/``. Without
    the fine-tuned model the manifest records stage ``baseline``, else ``eval``.

    ``queries`` (default ``eval.queries``) is a JSONL file of real queries judged by
    document (see :mod:`.queries`); they go to ``eval/queries/`` and are the headline.
    With real queries, a run without synthetic test pairs is evaluated on those alone.

    Vectors come from ``cache`` (default: the run's ``RUN/vectors``, where mining left
    the base model's chunk vectors; none kept when ``vector_cache = false``), so the
    baseline encodes only its queries.
    """
    from ..models import enforce_offline

    enforce_offline(config.allow_downloads)
    queries = queries if queries is not None else config.eval.queries
    target = out or run
    chunks = read_chunks(run.chunks)
    finetuned = run.model_dir if include_finetuned and run.model_dir.exists() else None
    specs = candidate_models(config, models, finetuned=finetuned)
    if labels is not None:
        specs = [spec for spec in specs if spec.label in set(labels)]
        if not specs:
            raise EvaluationError(f"none of the labels {list(labels)} is among the models to evaluate")
    warnings: list[str] = []
    real = None
    if queries is not None:
        real, warning = _real_queries(Path(queries), chunks, target)
        warnings += [warning] if warning else []
    human = _human_evidence(run, chunks, target)
    try:
        evidence = [_synthetic_evidence(run, config, chunks, target)]
    except (EvaluationError, ArtifactError, SplitError) as error:
        if real is None and human is None:
            raise
        evidence = []
        warnings.append(f"synthetic test split not evaluated: {error}")
    evidence += [item for item in (human, real) if item is not None]
    stage = "eval" if include_finetuned else "baseline"
    cache = cache if cache is not None else run_cache(run, config)
    return _finish(target, evidence, specs, config, stage=stage, cache=cache, warnings=warnings)


def _human_evidence(run: RunDir, chunks, target: RunDir) -> _Evidence | None:
    """Questions people wrote on the review page, as chunk-level queries (None if there are none)."""
    from ..review import human_pairs

    pairs = human_pairs(run)
    if not pairs:
        return None
    task = task_from_pairs(pairs, chunks, name=f"{run.root.name}: human-written questions")
    meta = {
        "source": str(run.human),
        "evidence": "human",
        "split": None,
        "leak_check": {"status": "not applicable (written by people on the review page, never trained on)",
                       "leaked_chunks": 0},
    }
    return _Evidence(task, target.eval_dir / HUMAN_DIR, meta)


def _synthetic_evidence(run: RunDir, config: RunConfig, chunks, target: RunDir) -> _Evidence:
    from ..review import reviewed_pairs

    pairs, _ = reviewed_pairs(run)
    splits = ensure_splits(run, config.split)
    by_id = {pair.pair_id: pair for pair in pairs}
    test_pairs = [by_id[pid] for pid in splits.test if pid in by_id]
    if not test_pairs:
        raise EvaluationError(
            f"the test split is empty: none of the {len(splits.test)} pair ids in {run.split_file('test')} "
            f"are among the {len(pairs)} reviewed pairs"
        )
    leak = _leak_check(splits, pairs, chunks, run)
    task = task_from_pairs(test_pairs, chunks, name=run.root.name)
    meta = {
        "source": str(run.root),
        "evidence": "synthetic",
        "split": {
            "by": splits.by,
            "seed": splits.seed,
            "counts": splits.counts(),
            "test_fraction": splits.test_fraction,
            "val_fraction": splits.val_fraction,
            "optimistic": bool(leak["leaked_chunks"]),
            "test_pairs_dropped_in_review": len(splits.test) - len(test_pairs),
        },
        "leak_check": leak,
    }
    return _Evidence(task, target.eval_dir, meta)


def _real_queries(path: Path, chunks, target: RunDir) -> tuple[_Evidence, str]:
    """The queries file as a task judged by document, and a warning line for unknown paths ('' if none)."""
    real = load_queries(path)
    task, unknown = task_from_queries(real, chunks, source=str(path), name=f"real queries ({path.name})")
    meta = {
        "source": str(path),
        "evidence": "queries",
        "split": None,
        "leak_check": {"status": "not applicable (real queries, never trained on)", "leaked_chunks": 0},
        "queries_in_file": len(real),
        "unknown_relevant": unknown.as_dict(),
    }
    warning = unknown.warning(str(path), len(task.ranked_ids)) if unknown else ""
    return _Evidence(task, target.eval_dir / QUERIES_DIR, meta), warning


def _leak_check(splits: Splits, pairs, chunks, run: RunDir) -> dict[str, Any]:
    """Re-run the leak check on the current pairs; by document or chunk, a leak is an error."""
    leaked = leaked_chunks(splits, pairs, chunks)
    if leaked and splits.by != "query":
        raise EvaluationError(
            f"leak check failed: {len(leaked)} test chunk(s) in {run.splits_dir} are training positives "
            f"(e.g. {leaked[0]}); delete {run.splits_dir} to re-split, then retrain"
        )
    status = "passed" if not leaked else "optimistic (by-query split: test chunks are trained on)"
    return {"status": status, "leaked_chunks": len(leaked)}


def evaluate_beir(
    beir_dir: Path,
    out: RunDir,
    config: RunConfig,
    *,
    models: Sequence[str] = (),
    split: str = "test",
    cache: VectorCache | None = None,
) -> EvalResult:
    """Evaluate models on a BEIR folder (human-written queries); writes ``OUT/eval/``.

    Models: ``base`` (``config.base_model``, or a ``--model`` labelled base such as
    ``minilm``), each of ``models``, and ``bm25`` if ``eval.bm25``. Vectors are kept in
    ``cache`` (default: :func:`~domainfit.vectors.default_cache_dir`), so a second call
    with the same models and corpus encodes only what changed.
    """
    from ..models import enforce_offline
    from .beir import load_beir

    enforce_offline(config.allow_downloads)
    task = load_beir(Path(beir_dir), split=split)
    specs = candidate_models(config, models)
    meta = {"source": f"BEIR folder {beir_dir} (qrels/{split}.tsv)", "split": None,
            "leak_check": {"status": "not applicable (human-written queries)", "leaked_chunks": 0}}
    if cache is None:
        cache = VectorCache(default_cache_dir()) if config.vector_cache else VectorCache.disabled()
    return _finish(out, [_Evidence(task, out.eval_dir, meta)], specs, config, stage="eval", cache=cache)
