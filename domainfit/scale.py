"""Encoding past one machine: :func:`domainfit.encoding.encode` inside Ray Data ``map_batches``.

A corpus too large for one machine's pool is a Parquet dataset of chunks (``chunk_id``,
``text``, e.g. many ``chunks.parquet`` files). Ray Data reads it in blocks and streams
them through a fixed pool of actors; each actor loads the model once (:class:`ChunkEncoder`)
and encodes with the same function mine, eval and export use, so the vectors are the
ones a single process gives. The output is Parquet again: ``chunk_id`` and ``vector``
(a fixed-size float32 list, which LanceDB and pyarrow read as is). Needs the ``[scale]``
extra (``pip install 'domainfit[scale]'``); docs/scale.md has the walk-through, and
tests/test_scale.py runs exactly this code on a 2-worker local Ray.

Example::

    with local_ray(num_cpus=3):
        encode_parquet("chunks/", "vectors/", model="minilm", workers=2)
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np

from .encoding import Kind, encode

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa


class ChunkEncoder:
    """A Ray Data callable class: a pyarrow batch with ``chunk_id`` and ``text`` -> ``chunk_id`` and ``vector``.

    Ray builds one per actor, so the model loads once per worker, on ``device``
    (``None``: the GPU Ray gave the actor, else the CPU).
    """

    def __init__(self, model: str, *, kind: Kind = "document", batch_size: int = 64, device: str | None = None):
        from .models import load_model

        self.model = load_model(model)
        if device is not None:
            self.model.to(device)
        self.kind = kind
        self.batch_size = batch_size

    def __call__(self, batch: "pa.Table") -> "pa.Table":
        import pyarrow as pa

        texts = batch.column("text").to_pylist()
        vectors = encode(self.model, texts, kind=self.kind, batch_size=self.batch_size, progress=False)
        flat = pa.array(vectors.reshape(-1), type=pa.float32())
        column = pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1])
        return pa.table({"chunk_id": batch.column("chunk_id"), "vector": column})


def encode_parquet(
    source: str | Path,
    target: str | Path,
    *,
    model: str = "minilm",
    workers: int = 2,
    gpus_per_worker: float = 0.0,
    rows_per_batch: int = 1024,
    batch_size: int = 64,
    blocks: int | None = None,
) -> None:
    """Encode every chunk of the Parquet dataset ``source`` into Parquet files under ``target``.

    ``workers`` actors each hold one model (``gpus_per_worker=1`` gives each its own GPU);
    Ray hands them ``rows_per_batch`` rows at a time and they encode ``batch_size`` texts
    per forward pass. ``blocks`` repartitions the chunks into that many blocks first:
    Ray sizes blocks by bytes, so a small corpus is one block and keeps one worker busy;
    a large one needs no repartition (it costs a shuffle).
    ``model`` must resolve on every node ('minilm', a hub id cached
    there, or a path on shared storage). Runs on whatever Ray is initialised (a cluster,
    or :func:`local_ray`).
    """
    import ray

    chunks = ray.data.read_parquet(str(source)).select_columns(["chunk_id", "text"])
    if blocks is not None:
        chunks = chunks.repartition(blocks)
    vectors = chunks.map_batches(
        ChunkEncoder,  # __init__ loads the model, __call__ encodes a batch
        fn_constructor_kwargs={"model": model, "batch_size": batch_size},
        batch_format="pyarrow",
        batch_size=rows_per_batch,
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=1,
        num_gpus=gpus_per_worker,
    )
    vectors.write_parquet(str(target))


def read_vectors(target: str | Path) -> dict[str, np.ndarray]:
    """``chunk_id -> vector`` from :func:`encode_parquet`'s output (its files come in no set order)."""
    import pyarrow.parquet as pq

    table = pq.read_table(str(target))
    vectors = table.column("vector").combine_chunks()
    matrix = vectors.flatten().to_numpy().reshape(len(table), -1)
    return dict(zip(table.column("chunk_id").to_pylist(), matrix))


@contextmanager
def local_ray(*, num_cpus: int = 3, object_store_mb: int = 256) -> Iterator[None]:
    """A fresh single-machine Ray for the ``with`` block, small and quiet, shut down after.

    ``num_cpus`` is Ray's logical count: one per worker plus one for the read tasks.
    No dashboard, no usage reporting (offline machines); a small object store (blocks
    stream through it, they need not fit).
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    ray.init(
        address="local",
        num_cpus=num_cpus,
        object_store_memory=object_store_mb * 2**20,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )
    try:
        yield
    finally:
        ray.shutdown()
