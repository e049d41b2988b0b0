"""export: the adapted model at one dim and a LanceDB table of every chunk, for a RAG stack.

``run_export(run, config)`` writes ``RUN/export/``: ``model/`` (loads with plain
``SentenceTransformer(path)`` and gives vectors of the chosen dim), ``lancedb/``
(a table of every chunk embedded with it) and, with ``export.onnx``, ``onnx/`` (the
encoder as ONNX and int8 ONNX, loaded by :class:`OnnxEncoder`).

Example::

    result = run_export(RunDir("runs/demo"), load_config(overrides={"export.dim": 128}))
    print(result.summary())
"""

from __future__ import annotations

from .dims import check_export_dim
from .onnx import OnnxEncoder
from .stage import ExportResult, run_export
from .table import chunk_rows, quantize_vectors, write_chunk_table

__all__ = [
    "ExportResult", "OnnxEncoder", "check_export_dim", "chunk_rows", "quantize_vectors", "run_export",
    "write_chunk_table",
]
