"""The end-to-end run: synth -> split -> mine -> baseline -> train -> eval -> report.

Each stage's output files double as its cache. Each stage records itself in the
manifest (``stages.<name>``, an :class:`~domainfit.artifacts.StageRecord`) with the
hash of the config sections that govern it (``artifacts.STAGE_SECTIONS``); the
pipeline adds the hash of its inputs (the outputs of the stages before it). Re-running skips a stage whose hashes match and whose
outputs exist; a stage whose config or inputs changed is redone, and since that
changes its outputs, every stage after it is redone too. A stage that was killed
half way is re-entered and continues on its own (synth from its last flushed pair,
train from its last checkpoint).

Example::

    result = run_pipeline("data/sample", RunDir("runs/demo"), load_config())
    print(result.summary())
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .artifacts import RunDir, content_hash, read_manifest, record_stage, stage_record, update_manifest
from .config import RunConfig
from .errors import ArtifactError, ConfigError, DocumentError

STAGES = ("synth", "split", "mine", "baseline", "train", "eval", "rerank")  # rerank only when rerank.enabled


@dataclass
class StageOutcome:
    """What happened to one stage in this invocation."""

    name: str
    action: str  # 'ran', 'skipped', 'resumed'
    seconds: float = 0.0


@dataclass
class PipelineResult:
    """The stages this invocation ran or skipped, and where the report is."""

    run: RunDir
    outcomes: list[StageOutcome] = field(default_factory=list)
    report_path: Path | None = None
    table: str = ""
    advice: str = ""

    def ran(self) -> list[str]:
        return [outcome.name for outcome in self.outcomes if outcome.action != "skipped"]

    def summary(self) -> str:
        lines = [f"run directory: {self.run.root}"]
        for outcome in self.outcomes:
            timing = f" in {outcome.seconds:.1f}s" if outcome.action != "skipped" else ""
            lines.append(f"  {outcome.name:<9} {outcome.action}{timing}")
        if self.table:
            lines += ["", self.table]
        if self.report_path is not None:
            lines += ["", f"report: {self.report_path}", f"model:  {self.run.model_dir}"]
        if self.advice:
            lines.append(self.advice)
        return "\n".join(lines)


# --------------------------------------------------------------------------- fingerprints


def _file_bytes(path: Path) -> bytes:
    return path.read_bytes() if path.exists() else b"<missing>"


def documents_fingerprint(docs: Path) -> str:
    """Hash of every file's relative path, size and mtime under the document folder."""
    entries = []
    for path in sorted(docs.rglob("*")):
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(docs).parts):
            stat = path.stat()
            entries.append(f"{path.relative_to(docs).as_posix()}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return content_hash(*entries)


def _synth_outputs(run: RunDir) -> str:
    return content_hash(_chunk_ids(run), _file_bytes(run.pairs), _file_bytes(run.review), *_human_bytes(run))


def _human_bytes(run: RunDir) -> tuple[bytes, ...]:
    # only when people wrote questions, so runs without them keep their hashes
    return (_file_bytes(run.human),) if run.human.exists() else ()


def _chunk_ids(run: RunDir) -> bytes:
    if not run.chunks.exists():
        return b"<missing>"
    from .artifacts import read_parquet

    table = read_parquet(run.chunks, ["chunk_id", "text"])
    return "\n".join(sorted(table.column("chunk_id").to_pylist())).encode()


def _split_outputs(run: RunDir) -> str:
    return content_hash(*(_file_bytes(run.split_file(name)) for name in ("train", "val", "test")))


def _model_outputs(run: RunDir) -> str:
    weights = sorted(run.model_dir.glob("*.safetensors")) + sorted(run.model_dir.glob("*.bin"))
    return content_hash(*(_file_bytes(path) for path in weights)) if weights else "<missing>"


# --------------------------------------------------------------------------- pipeline


def run_pipeline(
    docs: str | Path,
    run: RunDir,
    config: RunConfig,
    *,
    from_stage: str | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> PipelineResult:
    """Run every stage that is not already complete for this config and these documents."""
    docs = Path(docs)
    if not docs.is_dir():
        raise DocumentError(f"document folder not found: {docs}")
    if from_stage is not None and from_stage not in STAGES:
        raise ConfigError(f"--from must be one of {', '.join(STAGES)}, got {from_stage!r}")
    if config.eval.queries:
        from .queries import load_queries

        load_queries(config.eval.queries)  # a bad queries file fails now, not after training
    run.ensure()
    update_manifest(
        run,
        config=config.public_dict(),
        documents_folder=str(docs.resolve()),
    )
    if from_stage == "synth":
        _archive_synth_outputs(run)

    result = PipelineResult(run=run)
    forced = set(STAGES[STAGES.index(from_stage) :]) if from_stage else set()
    for stage in _stages(docs, run, config, progress):
        inputs = stage.inputs()
        record = stage_record(run, stage.name)
        up_to_date = (
            stage.name not in forced
            and record is not None
            and record.status == "done"
            and record.config_hash == config.stage_hash(stage.name)
            and record.input_hash == inputs
            and stage.complete()
        )
        if up_to_date:
            result.outcomes.append(StageOutcome(stage.name, "skipped"))
            log(f"[{stage.name}] up to date, skipped")
            continue
        interrupted = record is not None and record.status in ("running", "failed")
        action = "resumed" if interrupted else "ran"
        log(f"[{stage.name}] {'resuming' if interrupted else 'running'}")
        start = time.perf_counter()
        stage.execute()
        seconds = time.perf_counter() - start
        _record_inputs(run, stage.name, inputs)
        result.outcomes.append(StageOutcome(stage.name, action, seconds))

    from .report import write_run_report

    result.report_path, result.table = write_run_report(run, config)
    result.advice = _advice(run, config)
    return result


def _advice(run: RunDir, config: RunConfig) -> str:
    """The gate's line: which model to use (the adapted one only if it beat the base)."""
    from .report import verdict

    decided = verdict(read_manifest(run))
    return decided.advice(run.model_dir, config.base_model) if decided else ""


@dataclass
class _Stage:
    name: str
    inputs: Callable[[], str]  # hash of what the stage reads
    execute: Callable[[], None]  # runs (or resumes) the stage
    complete: Callable[[], bool]  # its outputs exist


def _stages(docs: Path, run: RunDir, config: RunConfig, progress: bool) -> list[_Stage]:
    synth_and_split = lambda: content_hash(_synth_outputs(run).encode(), _split_outputs(run).encode())  # noqa: E731
    real_queries = lambda: _file_bytes(Path(config.eval.queries)) if config.eval.queries else b""  # noqa: E731
    metrics_exist = lambda: (run.eval_dir / "metrics.json").exists()  # noqa: E731
    return [
        _Stage(
            "synth",
            lambda: documents_fingerprint(docs),
            lambda: _do_synth(docs, run, config, progress),
            lambda: run.pairs.exists() and run.chunks.exists(),
        ),
        _Stage(
            "split",
            lambda: _synth_outputs(run),
            lambda: _do_split(run, config),
            lambda: (run.splits_dir / "split.json").exists(),
        ),
        _Stage("mine", synth_and_split, lambda: _do_mine(run, config, progress), lambda: run.triplets.exists()),
        _Stage(
            "baseline",
            lambda: content_hash(synth_and_split().encode(), real_queries()),
            lambda: _do_eval(run, config, include_finetuned=False),
            metrics_exist,
        ),
        _Stage(
            "train",
            lambda: content_hash(_split_outputs(run).encode(), _file_bytes(run.triplets)),
            lambda: _do_train(run, config, progress),
            lambda: (run.model_dir / "modules.json").exists(),
        ),
        _Stage(
            "eval",
            lambda: content_hash(_split_outputs(run).encode(), _model_outputs(run).encode(), real_queries(),
                                 *_human_bytes(run)),
            lambda: _do_eval(run, config, include_finetuned=True),
            metrics_exist,
        ),
        *(
            [
                _Stage(
                    "rerank",
                    lambda: content_hash(
                        _split_outputs(run).encode(), _file_bytes(run.triplets), _model_outputs(run).encode(),
                        real_queries(),
                    ),
                    lambda: _do_rerank(run, config, progress),
                    lambda: (run.rerank_dir / "model" / "config.json").exists()
                    and (run.rerank_dir / "metrics.json").exists(),
                )
            ]
            if config.rerank.enabled
            else []
        ),
    ]


def _record_inputs(run: RunDir, name: str, inputs: str) -> None:
    """Add the inputs' hash to the record the stage just wrote (the stage cannot know the pipeline's)."""
    record = stage_record(run, name)
    if record is None:
        raise ArtifactError(f"stage {name} wrote no record to {run.manifest}")
    record.input_hash = inputs
    record_stage(run, name, record)


def _archive_synth_outputs(run: RunDir) -> None:
    """`--from synth` regenerates pairs; the old ones are moved aside, never deleted."""
    existing = [path for path in (run.pairs, run.rejected, run.synth_state) if path.exists()]
    if not existing:
        return
    backup = run.root / "previous" / time.strftime("%Y%m%d-%H%M%S")
    backup.mkdir(parents=True, exist_ok=True)
    for path in existing:
        shutil.move(str(path), backup / path.name)


def _do_synth(docs: Path, run: RunDir, config: RunConfig, progress: bool) -> None:
    from .synth import run_synth

    run_synth(docs, run, config, progress=progress)


def _do_split(run: RunDir, config: RunConfig) -> None:
    from .splits import run_split

    run_split(run, config)


def _do_mine(run: RunDir, config: RunConfig, progress: bool) -> None:
    from .mining import run_mining

    run_mining(run, config, progress=progress)


def _do_train(run: RunDir, config: RunConfig, progress: bool) -> None:
    from .train import run_training

    run_training(run, config, progress=progress)


def _do_eval(run: RunDir, config: RunConfig, *, include_finetuned: bool) -> None:
    from .evaluate import run_evaluation

    run_evaluation(run, config, include_finetuned=include_finetuned)


def _do_rerank(run: RunDir, config: RunConfig, progress: bool) -> None:
    from .rerank import run_rerank

    run_rerank(run, config, progress=progress)
