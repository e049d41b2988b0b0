"""The eval stage: held-out queries (or a BEIR folder) against the whole corpus, every
model at every Matryoshka dim, side by side, written to ``eval/``.

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

from ..artifacts import RunDir, read_chunks, read_json, stage_run
from ..config import RunConfig
from ..errors import ArtifactError, EvaluationError
from ..splits import Splits, ensure_splits, leaked_chunks
from ..tracking import flat_metrics, log_final_metrics
from . import report
from .candidates import ModelSpec, candidate_models
from .engine import evaluate_task
from .task import RetrievalTask, task_from_pairs


@dataclass
class EvalResult:
    """What an evaluation wrote and found: ``metrics`` is the metrics.json content."""

    eval_dir: Path
    metrics: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)
    reused: list[str] = field(default_factory=list)

    @property
    def meta(self) -> dict[str, Any]:
        return self.metrics[report.META]

    def labels(self) -> list[str]:
        return report.labels(self.metrics)

    def counts(self) -> dict[str, Any]:
        """What goes into the manifest."""
        return {
            "queries": self.meta.get("queries"),
            "corpus": self.meta.get("corpus"),
            "models": len(self.labels()),
            "dims": len(report.dims(self.metrics)),
            "reused_models": len(self.reused),
            "leaked_chunks": self.meta.get("leak_check", {}).get("leaked_chunks", 0),
        }

    def table(self):
        """The main table for the terminal (rich)."""
        return report.rich_table(self.metrics)

    def markdown(self) -> str:
        return report.markdown_table(self.metrics)

    def summary(self) -> str:
        metric = report.main_metric(self.metrics)
        dims = report.dims(self.metrics)
        dim = dims[0] if dims else report.FULL
        parts = []
        for label in self.labels():
            current = report.value(self.metrics, label, dim, metric)
            absolute, relative = report.delta(current, report.value(self.metrics, report.BASE, dim, metric))
            if label == report.BASE or absolute is None:
                parts.append(f"{label} {current:.4f}")
            else:
                parts.append(f"{label} {current:.4f} ({absolute:+.4f}, {relative * 100 if relative else 0:+.1f}%)")
        split = self.meta.get("split")
        how = f"split by {split['by']}, leak check {self.meta['leak_check']['status']}" if split else self.meta.get("name")
        return (
            f"eval: {self.meta['queries']} queries vs {self.meta['corpus']} documents ({how}); "
            f"{metric} at dim {dim}: " + ", ".join(parts) + f"\nreport: {self.eval_dir / 'report.md'}"
        )


def _previous_metrics(eval_dir: Path) -> dict[str, Any] | None:
    try:
        return read_json(eval_dir / "metrics.json")
    except ArtifactError:
        return None


def _finish(target: RunDir, task: RetrievalTask, specs: list[ModelSpec], config: RunConfig, *,
            meta: dict[str, Any], stage: str) -> EvalResult:
    with stage_run(target.ensure(), stage, config_hash=config.section_hash("eval", "split")) as record:
        previous = _previous_metrics(target.eval_dir)
        metrics, reused = evaluate_task(task, specs, config, previous=previous, meta=meta)
        files = report.write_reports(target.eval_dir, metrics)
        result = EvalResult(target.eval_dir, metrics, files, reused)
        record.input_hash = metrics[report.META]["queries_hash"]
        record.counts.update(result.counts())
        record.details.update({"labels": result.labels(), "main_table": result.markdown()})
    scores = {label: metrics[label] for label in result.labels()}
    log_final_metrics(target, config.train.report_to, flat_metrics(scores, stage))
    return result


def run_evaluation(
    run: RunDir,
    config: RunConfig,
    *,
    models: Sequence[str] = (),
    out: RunDir | None = None,
    labels: Sequence[str] | None = None,
    include_finetuned: bool = True,
    stage: str = "eval",
) -> EvalResult:
    """Evaluate the run's held-out test queries against all of its chunks.

    Queries are the test split's reviewed pairs; the corpus is every chunk; a query's
    relevant chunks are its own and any chunk with the same normalised text. Models:
    ``base``, ``finetuned`` (``RUN/model`` if it exists and ``include_finetuned``),
    each of ``models`` (``LABEL=PATH`` or ``PATH``), and ``bm25`` if ``eval.bm25``.
    ``labels`` keeps only those labels. Results go to ``(out or run)/eval/``.
    """
    from ..models import enforce_offline
    from ..review import reviewed_pairs

    enforce_offline(config.allow_downloads)
    pairs, _ = reviewed_pairs(run)
    chunks = read_chunks(run.chunks)
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
    finetuned = run.model_dir if include_finetuned and run.model_dir.exists() else None
    specs = candidate_models(config, models, finetuned=finetuned)
    if labels is not None:
        specs = [spec for spec in specs if spec.label in set(labels)]
        if not specs:
            raise EvaluationError(f"none of the labels {list(labels)} is among the models to evaluate")
    meta = {
        "source": str(run.root),
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
    return _finish(out or run, task, specs, config, meta=meta, stage=stage)


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
    stage: str = "eval",
) -> EvalResult:
    """Evaluate models on a BEIR folder (human-written queries); writes ``OUT/eval/``.

    Models: ``base`` (``config.base_model``, or a ``--model`` labelled base such as
    ``minilm``), each of ``models``, and ``bm25`` if ``eval.bm25``.
    """
    from ..models import enforce_offline
    from .beir import load_beir

    enforce_offline(config.allow_downloads)
    task = load_beir(Path(beir_dir), split=split)
    specs = candidate_models(config, models)
    meta = {"source": f"BEIR folder {beir_dir} (qrels/{split}.tsv)", "split": None,
            "leak_check": {"status": "not applicable (human-written queries)", "leaked_chunks": 0}}
    return _finish(out, task, specs, config, meta=meta, stage=stage)
