"""The export stage: ``RUN/model`` at one dim, a LanceDB table of every chunk, optional ONNX.

It reads ``RUN/model`` (and its ``domainfit_training.json`` for the trained dims),
``chunks.parquet`` and the test split, and writes ``RUN/export/`` in a temp folder
renamed into place, so a killed export leaves the previous one whole:

* ``model/`` — the fine-tuned model with ``truncate_dim`` in its config, so plain
  ``SentenceTransformer("RUN/export/model")`` gives vectors of the export dim;
* ``lancedb/`` — table ``export.table`` (see :mod:`.table` for the columns);
* ``onnx/`` — with ``export.onnx``: the whole encoder at the export dim as one ONNX
  graph, its int8 dynamic-quantized copy, and the tokenizer (see :mod:`.onnx`);
* ``domainfit_export.json`` — dim, counts, table facts, and the speed / NDCG@10 of
  each exported form (PyTorch, ONNX, int8 ONNX) on the run's test split.

Example::

    result = run_export(RunDir("runs/demo"), load_config(overrides={"export.dim": 128}))
    print(result.summary())
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..artifacts import RunDir, read_chunks, read_json, replace_dir, stage_run, write_json, write_text
from ..config import RunConfig
from ..errors import ArtifactError, ConfigError
from ..encoding import unit_rows
from ..vectors import ModelVectors, VectorCache, run_cache
from .dims import check_export_dim
from .measure import measure_encoder, measure_model
from .onnx import OnnxEncoder, export_onnx, onnx_unavailable
from .table import chunk_rows, quantize_vectors, write_chunk_table

EXPORT_META = "domainfit_export.json"


@dataclass
class ExportResult:
    """What :func:`run_export` wrote and measured."""

    export_dir: Path
    dim: int
    model_dim: int
    rows: int
    table: str
    quantize: str
    ann_index: dict[str, Any] | None = None
    onnx_files: dict[str, str] = field(default_factory=dict)
    measurements: dict[str, dict[str, float]] = field(default_factory=dict)
    test_queries: int = 0
    seconds: float = 0.0
    vector_counts: dict[str, int] = field(default_factory=dict)

    @property
    def model_dir(self) -> Path:
        return self.export_dir / "model"

    @property
    def lancedb_dir(self) -> Path:
        return self.export_dir / "lancedb"

    @property
    def onnx_dir(self) -> Path:
        return self.export_dir / "onnx"

    def counts(self) -> dict[str, Any]:
        return {"rows": self.rows, "dim": self.dim, "model_dim": self.model_dim, "test_queries": self.test_queries,
                **self.vector_counts}

    def summary(self) -> str:
        lines = [
            f"exported the fine-tuned model at dim {self.dim} (of {self.model_dim}) to {self.model_dir}",
            f"  LanceDB table '{self.table}': {self.rows} chunks in {self.lancedb_dir}"
            + (f", {self.ann_index['type']} index" if self.ann_index else ", exact search (small table)")
            + (f", plus {self.quantize} vectors" if self.quantize != "none" else ""),
        ]
        if self.onnx_files:
            lines.append("  ONNX: " + ", ".join(f"{self.onnx_dir / name}" for name in self.onnx_files.values()))
        if self.measurements:
            lines.append(f"  on {self.test_queries} test questions:")
            lines.append(f"    {'form':<10} {'ndcg@10':>8} {'mrr@10':>8} {'chunks/s':>9}")
            for form, values in self.measurements.items():
                lines.append(
                    f"    {form:<10} {values['ndcg@10']:>8.4f} {values['mrr@10']:>8.4f} {values['chunks_per_s']:>9.1f}"
                )
        return "\n".join(lines)


def run_export(run: RunDir, config: RunConfig, *, progress: bool = True) -> ExportResult:
    """Write ``RUN/export/`` for ``config.export`` (see the module doc).

    One-line errors before any work: no trained model (run ``domainfit train``), a dim
    the model was not trained at or above its dim, ``--onnx`` where the ONNX packages
    are missing, ``--quantize binary`` at a dim that is not a multiple of 8.
    """
    from ..models import embedding_dim, enforce_offline, load_model

    enforce_offline(config.allow_downloads)
    settings = config.export
    if not (run.model_dir / "modules.json").exists():
        raise ArtifactError(f"no trained model in {run.model_dir}: run `domainfit train {run.root}` first")
    if settings.onnx and (reason := onnx_unavailable()):
        raise ConfigError(reason)
    started = time.perf_counter()
    with stage_run(run, "export", config_hash=config.stage_hash("export")) as record:
        model = load_model(run.model_dir)
        model_dim = embedding_dim(model)
        dim = check_export_dim(settings.dim, model_dim, _trained_dims(run))
        if settings.quantize == "binary" and dim % 8:
            raise ConfigError(f"--quantize binary packs 8 dims a byte: --dim {dim} is not a multiple of 8")
        model.truncate_dim = dim
        staging = Path(tempfile.mkdtemp(prefix=".export.", suffix=".tmp", dir=run.root))
        try:
            result = _write_export(run, config, model, staging, dim=dim, model_dim=model_dim, progress=progress)
            replace_dir(staging, run.export_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        result.export_dir = run.export_dir
        result.seconds = round(time.perf_counter() - started, 2)
        record.counts.update(result.counts())
        record.details.update({"table": result.table, "quantize": result.quantize, "measurements": result.measurements})
    return result


def _write_export(run: RunDir, config: RunConfig, model, target: Path, *, dim: int, model_dim: int,
                  progress: bool) -> ExportResult:
    settings = config.export
    model.save(str(target / "model"))
    _append_card(target / "model" / "README.md", dim, model_dim, settings.table)
    chunks = read_chunks(run.chunks)
    cache = run_cache(run, config)
    vectors = _chunk_vectors(cache, run, config, model, [chunk.text for chunk in chunks], dim=dim, progress=progress)
    quantized, quantization = None, None
    if settings.quantize != "none":
        values, quantization = quantize_vectors(vectors, settings.quantize)
        quantized = (settings.quantize, values)
    facts = write_chunk_table(target / "lancedb", settings.table, chunk_rows(chunks, vectors, quantized), dim=dim,
                              ann_min_rows=settings.ann_min_rows)
    result = ExportResult(target, dim, model_dim, facts["rows"], settings.table, settings.quantize, facts["ann_index"],
                          vector_counts=cache.counts())
    if settings.onnx:
        result.onnx_files = export_onnx(model, target / "onnx", dim=dim)
    test = _test_set(run, chunks)
    if test is not None:
        result.test_queries = len(test[0])
        result.measurements["pytorch"] = measure_model(model, *test, batch_size=settings.batch_size)
        for form, file_name in result.onnx_files.items():
            encoder = OnnxEncoder(target / "onnx" / file_name)
            result.measurements[form] = measure_encoder(encoder.encode_query, encoder.encode_document, *test,
                                                        batch_size=settings.batch_size)
    write_json(target / EXPORT_META, {
        "dim": dim, "model_dim": model_dim, "table": settings.table, "rows": result.rows,
        "columns": facts["columns"], "ann_index": facts["ann_index"], "quantization": quantization,
        "onnx": result.onnx_files, "test_queries": result.test_queries, "measurements": result.measurements,
        "source_model": str(run.model_dir),
    })
    return result


def _chunk_vectors(cache: VectorCache, run: RunDir, config: RunConfig, model, texts: list[str], *, dim: int,
                   progress: bool) -> np.ndarray:
    """Unit vectors at ``dim`` from the run's vector cache (the eval stage left the fine-tuned model's there).

    The cache holds full-dim vectors, so the model's ``truncate_dim`` is lifted while
    the missing ones are encoded; the export dim is their first ``dim`` coordinates,
    renormalised, which is what ``truncate_dim`` + ``normalize_embeddings`` gives.
    """
    truncate_dim, model.truncate_dim = model.truncate_dim, None
    try:
        with ModelVectors(cache, run.model_dir, model=model, batch_size=config.export.batch_size,
                          settings=config.encode, progress=progress and len(texts) >= 2000) as vectors:
            full = vectors.encode(texts, "document")
    finally:
        model.truncate_dim = truncate_dim
    return unit_rows(full[:, :dim])


def _trained_dims(run: RunDir) -> list[int]:
    info_path = run.model_dir / "domainfit_training.json"
    return [int(dim) for dim in read_json(info_path).get("dims") or []] if info_path.exists() else []


def _test_set(run: RunDir, chunks) -> tuple[dict, dict, dict] | None:
    """Test questions, every chunk, and each question's chunk (and its same-text copies); None without a split."""
    from ..artifacts import same_text_chunks
    from ..splits import read_splits
    from ..review import reviewed_pairs

    try:
        splits = read_splits(run)
    except ArtifactError:
        return None
    pairs = {pair.pair_id: pair for pair in reviewed_pairs(run)[0]}
    copies = same_text_chunks(chunks)
    text_of = {chunk.chunk_id: chunk.text for chunk in chunks}
    test = [pairs[pid] for pid in splits.test if pid in pairs and pairs[pid].chunk_id in text_of]
    if not test:
        return None
    queries = {pair.pair_id: pair.query for pair in test}
    relevant = {pair.pair_id: set(copies[pair.chunk_id]) for pair in test}
    return queries, text_of, relevant


def _append_card(readme: Path, dim: int, model_dim: int, table: str) -> None:
    text = readme.read_text(encoding="utf-8") if readme.exists() else "# Sentence Transformer model\n"
    section = (
        "\n\n## Exported with domainfit\n\n"
        f"This is the fine-tuned model at dim {dim} of {model_dim}: `truncate_dim` is set in "
        "`config_sentence_transformers.json`, so `SentenceTransformer(path)` returns "
        f"{dim}-dim vectors. The chunks of the run are in the LanceDB table `{table}` beside it "
        "(`../lancedb`), embedded with this model and normalised to unit length.\n"
    )
    write_text(readme, text.rstrip() + section)
