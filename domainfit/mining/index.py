"""The LanceDB table of chunk vectors that negatives are mined from (``RUN/index/``).

One table, ``chunks``: chunk_id, doc_id, char_start, char_end, a hash of the raw
text (did the chunk change?), a hash of the normalised text (the same-text guard)
and the unit-length vector from the base model. The model's identity and the
vector size live in ``RUN/index/domainfit_index.json``; a different model or size
rebuilds the table, the same one re-uses it and embeds only new or changed chunks.

Vectors are unit length, so LanceDB's ``dot`` distance is ``1 - cosine``. Small
tables are searched exactly; from ``ann_min_rows`` rows on an IVF index is built and
its ``nprobes`` are raised until a sample of queries finds >= ``ann_target_recall``
of what exact search finds (:meth:`ChunkIndex.tune_ann`).

Example::

    index, reason = ChunkIndex.open(run.index_dir, model_id="ab12cd", dim=384)
    update = index.sync(chunks, embedder)
    hits = index.search(query_vectors, limit=51)      # one call per batch of queries
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from ..artifacts import Chunk, content_hash, normalize_text, read_json, write_json
from ..config import MiningConfig
from ..errors import ArtifactError, MiningError
from ..lance import sql_quote, vectors_from_arrow
from .negatives import ChunkRef

TABLE_NAME = "chunks"
META_FILE = "domainfit_index.json"
META_COLUMNS = ["chunk_id", "doc_id", "char_start", "char_end", "content_hash", "text_hash"]
VECTOR_INDEX = "vector_idx"
ID_INDEX = "chunk_id_idx"
MAX_REFINE_MULTIPLE = 8  # refine_factor may grow to 8x its configured value to reach the recall
_ID_BATCH = 1000  # chunk ids per SQL ``IN (...)`` filter
_EMBED_SLICE = 4096  # chunks embedded and written per LanceDB append (a killed run keeps them)

Encoder = Callable[[list[str]], np.ndarray]


def chunk_ref(chunk: Chunk) -> ChunkRef:
    """The guard-relevant facts of a chunk."""
    return ChunkRef(
        chunk_id=chunk.chunk_id,
        doc_id=chunk.doc_id,
        char_start=chunk.char_start,
        char_end=chunk.char_end,
        text_hash=content_hash(normalize_text(chunk.text)),
    )


def table_schema(dim: int):
    """The Arrow schema of the ``chunks`` table for vectors of size ``dim``."""
    import pyarrow as pa

    return pa.schema(
        [
            ("chunk_id", pa.string()),
            ("doc_id", pa.string()),
            ("char_start", pa.int64()),
            ("char_end", pa.int64()),
            ("content_hash", pa.string()),
            ("text_hash", pa.string()),
            ("vector", pa.list_(pa.float32(), dim)),
        ]
    )


@dataclass
class IndexUpdate:
    """What :meth:`ChunkIndex.sync` did: the counts that show re-use."""

    rows: int = 0
    embedded: int = 0
    reused: int = 0
    moved: int = 0  # same text, new id-free facts (doc/span): rewritten without re-embedding
    removed: int = 0
    rebuilt: str | None = None  # why the table was started afresh, if it was


@dataclass
class AnnReport:
    """The ANN settings in use and the recall they reached against exact search."""

    index_type: str
    num_partitions: int
    nprobes: int
    refine_factor: int
    recall: float
    sample_queries: int
    limit: int


def _id_filter(chunk_ids: Sequence[str]) -> str:
    return f"chunk_id IN ({', '.join(sql_quote(chunk_id) for chunk_id in chunk_ids)})"


def _batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class ChunkIndex:
    """A LanceDB table of unit-length chunk vectors for one model (see module doc)."""

    def __init__(self, root: Path, table: Any, meta: dict[str, Any]):
        self.root = root
        self.table = table
        self.meta = meta

    # ------------------------------------------------------------------ open

    @classmethod
    def open(cls, root: str | Path, *, model_id: str, dim: int) -> tuple["ChunkIndex", str | None]:
        """Open the index for ``model_id``/``dim``, or start an empty one.

        Returns the index and why it was started afresh (``None`` when re-used).
        """
        import lancedb

        root = Path(root)
        reason = cls._stale_reason(root, model_id=model_id, dim=dim)
        if reason is None:
            try:
                table = lancedb.connect(str(root)).open_table(TABLE_NAME)
                if table.schema.remove_metadata() == table_schema(dim):
                    return cls(root, table, read_json(root / META_FILE)), None
                reason = "table schema changed"
            except (ValueError, OSError, RuntimeError) as error:  # a damaged table: rebuild it
                reason = f"table unreadable ({type(error).__name__})"
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        table = lancedb.connect(str(root)).create_table(TABLE_NAME, schema=table_schema(dim))
        meta = {"model": model_id, "dim": dim, "table": TABLE_NAME, "ann": None}
        write_json(root / META_FILE, meta)
        return cls(root, table, meta), reason

    @staticmethod
    def _stale_reason(root: Path, *, model_id: str, dim: int) -> str | None:
        meta_path = root / META_FILE
        if not meta_path.exists():
            return "new index" if not root.exists() else "no index metadata"
        try:
            meta = read_json(meta_path)
        except ArtifactError:
            return "index metadata corrupt"
        if meta.get("dim") != dim:
            return f"vector size changed ({meta.get('dim')} -> {dim})"
        if meta.get("model") != model_id:
            return "model changed"
        return None

    # ------------------------------------------------------------------ facts

    @property
    def dim(self) -> int:
        return int(self.meta["dim"])

    @property
    def rows(self) -> int:
        return self.table.count_rows()

    @property
    def ann(self) -> dict[str, Any] | None:
        return self.meta.get("ann")

    def _save_meta(self) -> None:
        write_json(self.root / META_FILE, self.meta)

    def _metadata_rows(self) -> dict[str, dict[str, Any]]:
        """chunk_id -> stored facts (no vectors), by a scan of the small columns."""
        stored = self.table.search().select(META_COLUMNS).limit(None).to_arrow()
        return {row["chunk_id"]: row for row in stored.to_pylist()}

    # ------------------------------------------------------------------ write

    def add(self, refs: Sequence[ChunkRef], vectors: np.ndarray, content_hashes: Sequence[str] | None = None) -> None:
        """Append chunks and their vectors (unit length, shape ``(len(refs), dim)``)."""
        import pyarrow as pa

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape != (len(refs), self.dim):
            raise MiningError(
                f"vectors of shape {vectors.shape} do not fit {len(refs)} chunks of the index's size {self.dim}"
            )
        if not refs:
            return
        hashes = list(content_hashes) if content_hashes is not None else [ref.text_hash for ref in refs]
        columns = {
            "chunk_id": [ref.chunk_id for ref in refs],
            "doc_id": [ref.doc_id for ref in refs],
            "char_start": [ref.char_start for ref in refs],
            "char_end": [ref.char_end for ref in refs],
            "content_hash": hashes,
            "text_hash": [ref.text_hash for ref in refs],
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), self.dim),
        }
        self.table.add(pa.table(columns, schema=table_schema(self.dim)))

    def delete(self, chunk_ids: Sequence[str]) -> None:
        for batch in _batches(list(chunk_ids), _ID_BATCH):
            self.table.delete(_id_filter(batch))

    def sync(
        self,
        chunks: Sequence[Chunk],
        encode: Encoder,
        *,
        progress: bool = True,
    ) -> IndexUpdate:
        """Make the table hold exactly ``chunks``, embedding only new or changed text.

        ``encode`` turns texts into unit vectors of the index's size. Chunks are
        embedded and written in slices, so an interrupted sync keeps what it wrote.
        """
        from tqdm.auto import tqdm

        stored = self._metadata_rows()
        wanted = {chunk.chunk_id: chunk for chunk in chunks}
        update = IndexUpdate()
        to_embed: list[Chunk] = []
        moved: list[Chunk] = []
        stale_ids: list[str] = [chunk_id for chunk_id in stored if chunk_id not in wanted]
        update.removed = len(stale_ids)
        for chunk in wanted.values():
            ref, raw_hash = chunk_ref(chunk), content_hash(chunk.text)
            old = stored.get(chunk.chunk_id)
            if old is None or old["content_hash"] != raw_hash:
                to_embed.append(chunk)
                if old is not None:
                    stale_ids.append(chunk.chunk_id)
            elif (old["doc_id"], old["char_start"], old["char_end"], old["text_hash"]) != (
                ref.doc_id,
                ref.char_start,
                ref.char_end,
                ref.text_hash,
            ):
                moved.append(chunk)
            else:
                update.reused += 1
        if moved:
            kept_vectors = self.vectors_of([chunk.chunk_id for chunk in moved])
            self.delete([chunk.chunk_id for chunk in moved])
            self.add([chunk_ref(chunk) for chunk in moved], kept_vectors, [content_hash(c.text) for c in moved])
            update.moved = len(moved)
            update.reused += len(moved)
        self.delete(stale_ids)
        if to_embed:
            bar = tqdm(total=len(to_embed), desc="Embedding chunks", unit="chunk", disable=not progress)
            with bar:
                for batch in _batches(to_embed, _EMBED_SLICE):
                    vectors = encode([chunk.text for chunk in batch])
                    self.add([chunk_ref(chunk) for chunk in batch], vectors, [content_hash(c.text) for c in batch])
                    bar.update(len(batch))
            update.embedded = len(to_embed)
        update.rows = self.rows
        return update

    # ------------------------------------------------------------------ read

    def vectors_of(self, chunk_ids: Sequence[str]) -> np.ndarray:
        """The stored vectors of ``chunk_ids``, in that order; an unknown id is a MiningError."""
        unique = list(dict.fromkeys(chunk_ids))
        found: dict[str, np.ndarray] = {}
        for batch in _batches(unique, _ID_BATCH):
            rows = self.table.search().where(_id_filter(batch)).select(["chunk_id", "vector"]).limit(None).to_arrow()
            vectors = vectors_from_arrow(rows["vector"], self.dim)
            found.update(zip(rows["chunk_id"].to_pylist(), vectors))
        missing = [chunk_id for chunk_id in unique if chunk_id not in found]
        if missing:
            raise MiningError(f"{len(missing)} chunk id(s) are not in the index {self.root}, e.g. {missing[0]}")
        if not unique:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([found[chunk_id] for chunk_id in chunk_ids])

    def search(
        self,
        queries: np.ndarray,
        limit: int,
        *,
        exact: bool = False,
        nprobes: int | None = None,
        refine_factor: int | None = None,
    ):
        """Nearest chunks of each query vector, in one LanceDB call for the whole batch.

        Returns an Arrow table with ``query_index`` (row of ``queries``), the chunk
        facts, ``vector`` and ``score`` (the exact cosine, recomputed from the
        stored vectors so ANN quantisation never leaks into the scores).
        """
        import pyarrow as pa

        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        if queries.shape[1] != self.dim:
            raise MiningError(
                f"query vectors have size {queries.shape[1]} but the index at {self.root} holds size {self.dim}"
            )
        builder = (
            self.table.search(queries, vector_column_name="vector")
            .distance_type("dot")
            .limit(limit)
            .select([*META_COLUMNS, "vector", "_distance"])
        )
        ann = self.ann
        if exact:
            builder = builder.bypass_vector_index()
        elif ann is not None:
            builder = builder.nprobes(nprobes or ann["nprobes"]).refine_factor(refine_factor or ann["refine_factor"])
            if ann["index_type"] == "IVF_HNSW_SQ":
                builder = builder.ef(limit * (refine_factor or ann["refine_factor"]))
        hits = builder.to_arrow()
        if "query_index" not in hits.column_names:  # a single query vector comes back without it
            hits = hits.append_column("query_index", pa.array(np.zeros(hits.num_rows, dtype=np.int32)))
        vectors = vectors_from_arrow(hits["vector"], self.dim)
        query_index = hits["query_index"].to_numpy()
        scores = np.einsum("ij,ij->i", vectors, queries[query_index]) if len(vectors) else np.zeros(0)
        return hits.drop_columns(["_distance"]).append_column("score", pa.array(scores, type=pa.float32()))

    # ------------------------------------------------------------------ ANN

    def ensure_ann(self, config: MiningConfig) -> bool:
        """Build (or rebuild) the IVF index when the table has reached ``ann_min_rows``.

        An index is rebuilt when its type changed or more than a tenth of the rows
        are not in it yet (LanceDB searches unindexed rows exactly meanwhile). A
        BTree on chunk_id comes with it, so looking up positives stays cheap.
        Returns True when an index was built.
        """
        from lancedb.index import BTree, HnswSq, IvfPq

        rows = self.rows
        ann = self.ann
        if rows < config.ann_min_rows:
            if ann is not None:
                self.table.drop_index(VECTOR_INDEX)
                self.meta["ann"] = None
                self._save_meta()
            return False
        if ann is not None and ann["index_type"] == config.ann_index:
            stats = self.table.index_stats(VECTOR_INDEX)
            if stats is not None and stats.num_unindexed_rows <= rows // 10:
                return False
        partitions = max(1, round(rows / config.ann_partition_rows))
        if config.ann_index == "IVF_PQ":
            index_config = IvfPq(distance_type="dot", num_partitions=partitions)
        else:
            index_config = HnswSq(distance_type="dot", num_partitions=partitions)
        self.table.create_index("vector", config=index_config, replace=True, name=VECTOR_INDEX)
        self.table.create_index("chunk_id", config=BTree(), replace=True, name=ID_INDEX)
        self.meta["ann"] = {
            "index_type": config.ann_index,
            "num_partitions": partitions,
            "nprobes": min(config.nprobes, partitions),
            "refine_factor": config.refine_factor,
            "recall": None,
        }
        self._save_meta()
        return True

    def tune_ann(self, sample: np.ndarray, limit: int, config: MiningConfig) -> AnnReport | None:
        """Raise ``nprobes`` or ``refine_factor`` until ANN finds >= the target recall.

        Recall is |ANN top-``limit`` ∩ exact top-``limit``| / |exact top-``limit``| over
        the ``sample`` query vectors: the candidates negatives are picked from. Each
        step doubles whichever of the two gains more recall on the sample (IVF
        probes help when neighbours sit in other partitions, refinement when PQ's
        coarse distances misorder close scores). The settings reached are stored.
        """
        ann = self.ann
        if ann is None or len(sample) == 0:
            return None
        exact = _id_sets(self.search(sample, limit, exact=True))
        wanted = max(1, sum(len(ids) for ids in exact.values()))

        def recall_at(nprobes: int, refine: int) -> float:
            found = _id_sets(self.search(sample, limit, nprobes=nprobes, refine_factor=refine))
            return sum(len(found.get(query, set()) & ids) for query, ids in exact.items()) / wanted

        partitions, max_refine = ann["num_partitions"], MAX_REFINE_MULTIPLE * config.refine_factor
        nprobes, refine = min(config.nprobes, partitions), config.refine_factor
        recall = recall_at(nprobes, refine)
        while recall < config.ann_target_recall:
            options = []
            if nprobes < partitions:
                options.append((min(partitions, nprobes * 2), refine))
            if refine < max_refine:
                options.append((nprobes, min(max_refine, refine * 2)))
            if not options:
                break
            recall, nprobes, refine = max(
                ((recall_at(n, r), n, r) for n, r in options), key=lambda option: (option[0], -option[1] * option[2])
            )
        ann.update(nprobes=nprobes, refine_factor=refine, recall=round(recall, 4))
        self._save_meta()
        return AnnReport(
            index_type=ann["index_type"],
            num_partitions=partitions,
            nprobes=nprobes,
            refine_factor=refine,
            recall=round(recall, 4),
            sample_queries=len(sample),
            limit=limit,
        )


def _id_sets(hits) -> dict[int, set[str]]:
    sets: dict[int, set[str]] = {}
    for query, chunk_id in zip(hits["query_index"].to_pylist(), hits["chunk_id"].to_pylist()):
        sets.setdefault(query, set()).add(chunk_id)
    return sets

