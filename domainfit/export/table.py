"""The LanceDB table of an export: every chunk with its vector, in a shape RAG stacks read.

Columns: ``id`` (= ``chunk_id``, what LlamaIndex and LangChain call a node / document
id), ``chunk_id``, ``doc_id``, ``source``, ``text``, ``char_start``, ``char_end``,
``vector`` (float32, unit length at the export dim), and ``metadata`` (a struct of
``chunk_id``, ``doc_id``, ``source``, ``char_start``, ``char_end``), which LlamaIndex's
``LanceDBVectorStore`` and langchain-community's ``LanceDB`` return as the hit's
metadata. With ``quantize``: ``vector_int8`` (int8 per dim, sentence-transformers'
calibrated scalar quantization) or ``vector_binary`` (1 bit per dim, packed into
uint8, searchable with LanceDB's ``hamming`` metric). Tables of ``ann_min_rows`` rows
or more get an IVF_PQ index on ``vector``.

Example::

    rows = chunk_rows(chunks, vectors)
    table = write_chunk_table(root, "chunks", rows, dim=128)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..artifacts import Chunk

METADATA_FIELDS = ("chunk_id", "doc_id", "source", "char_start", "char_end")
ANN_ROWS_PER_PARTITION = 4096


def quantize_vectors(vectors: np.ndarray, precision: str) -> tuple[np.ndarray, dict[str, Any]]:
    """int8 or packed-binary copies of unit vectors, with what a searcher needs to quantize queries alike.

    int8 uses sentence-transformers' ``quantize_embeddings`` calibrated on these
    vectors; the per-dim ranges are returned so that queries are quantized the same way.

    Example::

        packed, info = quantize_vectors(vectors, "binary")   # shape (n, dim / 8), uint8
    """
    from sentence_transformers.util import quantize_embeddings

    if precision == "int8":
        ranges = np.vstack([vectors.min(axis=0), vectors.max(axis=0)])
        quantized = quantize_embeddings(vectors, precision="int8", ranges=ranges)
        return quantized.astype(np.int8), {"precision": "int8", "ranges": ranges.tolist()}
    if precision == "binary":
        return quantize_embeddings(vectors, precision="ubinary").astype(np.uint8), {
            "precision": "binary",
            "packing": "numpy.packbits of (x > 0), search with metric 'hamming'",
        }
    raise ValueError(f"unknown precision {precision!r}")


def chunk_rows(
    chunks: Sequence[Chunk], vectors: np.ndarray, quantized: tuple[str, np.ndarray] | None = None
) -> list[dict[str, Any]]:
    """One table row per chunk (see the module doc for the columns)."""
    rows = []
    for index, chunk in enumerate(chunks):
        facts = chunk.model_dump()
        row = {
            "id": chunk.chunk_id,
            **{name: facts[name] for name in ("chunk_id", "doc_id", "source", "text", "char_start", "char_end")},
            "vector": vectors[index].astype(np.float32),
            "metadata": {name: facts[name] for name in METADATA_FIELDS},
        }
        if quantized is not None:
            name, values = quantized
            row[f"vector_{name}"] = values[index]
        rows.append(row)
    return rows


def table_schema(dim: int, quantized: tuple[str, int] | None = None):
    """The Arrow schema of the export table for vectors of size ``dim``."""
    import pyarrow as pa

    fields = [
        ("id", pa.string()),
        ("chunk_id", pa.string()),
        ("doc_id", pa.string()),
        ("source", pa.string()),
        ("text", pa.string()),
        ("char_start", pa.int64()),
        ("char_end", pa.int64()),
        ("vector", pa.list_(pa.float32(), dim)),
        (
            "metadata",
            pa.struct(
                [
                    ("chunk_id", pa.string()),
                    ("doc_id", pa.string()),
                    ("source", pa.string()),
                    ("char_start", pa.int64()),
                    ("char_end", pa.int64()),
                ]
            ),
        ),
    ]
    if quantized is not None:
        name, width = quantized
        value_type = pa.int8() if name == "int8" else pa.uint8()
        fields.append((f"vector_{name}", pa.list_(value_type, width)))
    return pa.schema(fields)


def write_chunk_table(
    root: Path, name: str, rows: list[dict[str, Any]], *, dim: int, ann_min_rows: int = 100_000
) -> dict[str, Any]:
    """(Re)create table ``name`` under ``root`` from ``rows``; returns facts about it (rows, index)."""
    import lancedb
    import pyarrow as pa

    quantized = None
    for key in ("vector_int8", "vector_binary"):
        if rows and key in rows[0]:
            quantized = (key.removeprefix("vector_"), len(rows[0][key]))
    schema = table_schema(dim, quantized)
    data = pa.Table.from_pylist(rows, schema=schema)
    db = lancedb.connect(str(root))
    table = db.create_table(name, data=data, schema=schema, mode="overwrite")
    index = None
    if len(rows) >= ann_min_rows:
        partitions = max(1, len(rows) // ANN_ROWS_PER_PARTITION)
        table.create_index(metric="l2", vector_column_name="vector", index_type="IVF_PQ", num_partitions=partitions)
        index = {"type": "IVF_PQ", "metric": "l2 (= cosine order on unit vectors)", "partitions": partitions}
    return {"rows": table.count_rows(), "ann_index": index, "columns": schema.names}
