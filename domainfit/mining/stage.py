"""The mining stage: :func:`run_mining` and what it reports, :class:`MiningResult`.

It reads ``chunks.parquet``, the reviewed pairs and the splits, keeps ``RUN/index/``
in step with the chunks, mines with :func:`~domainfit.mining.mine.mine_negatives`
and writes ``RUN/triplets.parquet`` plus the manifest record.

Example::

    result = run_mining(RunDir("runs/demo"), load_config("run.toml"))
    print(result.summary())
    pq.read_table("runs/demo/triplets.parquet").column_names
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import models
from ..artifacts import Chunk, Pair, RunDir, normalize_text, read_chunks, stage_run, write_parquet
from ..config import MiningConfig, RunConfig
from ..errors import MiningError
from ..encoding import unit_rows
from ..vectors import ModelVectors, VectorCache, run_cache
from .index import AnnReport, ChunkIndex, IndexUpdate, chunk_ref
from .mine import MiningOutcome, check_window, mine_negatives
from .negatives import Exclusions
from .stats import MiningStats
from .triplets import MinedPair, triplets_table

if TYPE_CHECKING:  # pragma: no cover
    from sentence_transformers import SentenceTransformer


@dataclass
class MiningResult:
    """What ``domainfit mine`` did: printed by the CLI, counted in the manifest."""

    triplets_path: str
    output_format: str
    rows: int
    pairs_by_split: dict[str, int]
    pairs_unsplit: int
    index: IndexUpdate
    ann: AnnReport | None
    stats: MiningStats
    seconds: float = 0.0

    def counts(self) -> dict[str, Any]:
        """Counts for ``manifest.json``'s mine stage."""
        counts: dict[str, Any] = {
            "rows": self.rows,
            **{f"pairs_{name}": count for name, count in self.pairs_by_split.items()},
            "pairs_unsplit": self.pairs_unsplit,
            "chunks_indexed": self.index.rows,
            "chunks_embedded": self.index.embedded,
            "chunks_reused": self.index.reused,
            "chunks_removed": self.index.removed,
        }
        counts.update(self.stats.counts())
        if self.ann is not None:
            counts["ann_recall"] = self.ann.recall
        return counts

    def summary(self) -> str:
        index = self.index
        reuse = f"rebuilt ({index.rebuilt})" if index.rebuilt else "re-used"
        search = "exact search"
        if self.ann is not None:
            search = (
                f"{self.ann.index_type} nprobes={self.ann.nprobes} refine={self.ann.refine_factor}, "
                f"recall {self.ann.recall:.3f} vs exact on {self.ann.sample_queries} queries"
            )
        split_text = ", ".join(f"{count} {name}" for name, count in self.pairs_by_split.items())
        lines = [
            f"mined {self.stats.negatives:,} negatives for {self.stats.pairs:,} pairs ({split_text}) "
            f"-> {self.triplets_path} ({self.rows:,} {self.output_format} rows) in {self.seconds:.1f}s",
            f"index: {index.rows:,} chunks, {reuse}: {index.embedded:,} embedded, {index.reused:,} re-used, "
            f"{index.removed:,} removed; {search}",
            self.stats.summary(),
        ]
        if self.pairs_unsplit:
            lines.append(f"{self.pairs_unsplit} pair(s) are in no split (added after the split was made) and were skipped")
        return "\n".join(lines)


def _encoder(vectors: ModelVectors, kind: str):
    """texts -> unit float32 vectors through the run's vector cache (raw vectors are kept there)."""

    def encode(texts: list[str]) -> np.ndarray:
        return unit_rows(vectors.encode(texts, kind))

    return encode


def run_mining(
    run: RunDir,
    config: RunConfig,
    *,
    progress: bool = True,
    model: "SentenceTransformer | None" = None,
    cache: VectorCache | None = None,
) -> MiningResult:
    """Mine negatives for the run's train and val pairs into ``triplets.parquet``.

    Writes the default split first if the run has none (so the test chunks are
    known and never become negatives). ``model`` overrides ``config.base_model``
    (it must be that model: its identity keys the index). Chunk and question vectors
    go through ``cache`` (default ``RUN/vectors``), where the baseline eval finds them.

    Example::

        result = run_mining(RunDir("runs/demo"), RunConfig())
        result.stats.queries_short
    """
    from ..splits import ensure_splits

    check_window(config.mining)
    chunk_by_id, pairs = _read_inputs(run)
    started = time.perf_counter()
    with stage_run(run, "mine", config_hash=config.stage_hash("mine")) as record:
        split_of = ensure_splits(run, config.split).split_of()
        cache = cache if cache is not None else run_cache(run, config)
        location = models.resolve(config.base_model, allow_downloads=config.allow_downloads)
        vectors = ModelVectors(cache, location, model=model, batch_size=config.mining.batch_size,
                               load=lambda: models.load_model(config.base_model, allow_downloads=config.allow_downloads),
                               settings=config.encode, query_settings=config.encode)
        with vectors:  # one encoding pool (if [encode] asks for one) for every slice of chunks and the questions
            index, update = _synced_index(run, config, vectors, list(chunk_by_id.values()), progress)
            mined_pairs = [pair for pair in pairs if split_of.get(pair.pair_id) in ("train", "val")]
            outcome = _mine_pairs(index, vectors, mined_pairs, pairs, split_of, chunk_by_id, config.mining, progress)
        mined = [
            MinedPair(
                pair_id=pair.pair_id,
                split=split_of[pair.pair_id],
                anchor=pair.query,
                positive_id=pair.chunk_id,
                positive_score=float(score),
                negatives=selection.negatives,
            )
            for pair, selection, score in zip(mined_pairs, outcome.selections, outcome.positive_scores)
        ]
        table = triplets_table(
            mined,
            {chunk_id: chunk.text for chunk_id, chunk in chunk_by_id.items()},
            num_negatives=config.mining.num_negatives,
            output_format=config.mining.output_format,
        )
        write_parquet(run.triplets, table)
        result = MiningResult(
            triplets_path=str(run.triplets),
            output_format=config.mining.output_format,
            rows=table.num_rows,
            pairs_by_split={name: sum(1 for pair in mined if pair.split == name) for name in ("train", "val")},
            pairs_unsplit=sum(1 for pair in pairs if pair.pair_id not in split_of),
            index=update,
            ann=outcome.ann,
            stats=outcome.stats,
            seconds=time.perf_counter() - started,
        )
        record.counts = {**result.counts(), **cache.counts()}
        record.details = {
            **outcome.stats.as_details(),
            "index": {**update.__dict__, "ann": index.ann},
            "search_seconds": round(outcome.search_seconds, 3),
        }
    return result


def _read_inputs(run: RunDir) -> tuple[dict[str, Chunk], list[Pair]]:
    """The run's chunks by id and its reviewed pairs; a one-line error when there is nothing to mine."""
    from ..review import reviewed_pairs

    chunks = read_chunks(run.chunks)
    if not chunks:
        raise MiningError(f"{run.chunks} holds no chunks: there is no corpus to mine negatives from")
    pairs, _ = reviewed_pairs(run)
    if not pairs:
        raise MiningError(f"no pairs to mine for in {run.pairs} (none generated, or all rejected in review)")
    chunk_by_id = {chunk.chunk_id: chunk for chunk in chunks}
    missing = [pair for pair in pairs if pair.chunk_id not in chunk_by_id]
    if missing:
        raise MiningError(
            f"{len(missing)} pair(s) in {run.pairs} point at chunk ids not in {run.chunks}, "
            f"e.g. pair {missing[0].pair_id} -> chunk {missing[0].chunk_id}"
        )
    return chunk_by_id, pairs


def _synced_index(
    run: RunDir, config: RunConfig, vectors: ModelVectors, chunks: list[Chunk], progress: bool
) -> tuple[ChunkIndex, IndexUpdate]:
    """``RUN/index/`` for this model, with every chunk embedded (changed ones only) and the ANN index if due."""
    model_id = models.model_fingerprint(vectors.location)
    index, rebuilt = ChunkIndex.open(run.index_dir, model_id=model_id, dim=vectors.dim)
    update = index.sync(chunks, _encoder(vectors, "document"), progress=progress)
    update.rebuilt = rebuilt
    index.ensure_ann(config.mining)
    return index, update


def _mine_pairs(
    index: ChunkIndex,
    vectors: ModelVectors,
    mined_pairs: list[Pair],
    pairs: list[Pair],
    split_of: dict[str, str],
    chunk_by_id: dict[str, Chunk],
    mining: MiningConfig,
    progress: bool,
) -> MiningOutcome:
    """Encode each distinct question once and mine its pair's negatives.

    A question's other positives (the same question asked of another chunk) are never
    its negatives, and no test chunk is anyone's negative.
    """
    positives_of_question: dict[str, set[str]] = defaultdict(set)
    for pair in pairs:
        positives_of_question[normalize_text(pair.query)].add(pair.chunk_id)
    questions = list(dict.fromkeys(pair.query for pair in mined_pairs))
    question_vectors = (
        _encoder(vectors, "query")(questions)
        if questions
        else np.zeros((0, index.dim), np.float32)
    )
    row_of = {question: row for row, question in enumerate(questions)}
    test_pairs = [pair for pair in pairs if split_of.get(pair.pair_id) == "test"]
    return mine_negatives(
        index,
        question_vectors[[row_of[pair.query] for pair in mined_pairs]],
        [chunk_ref(chunk_by_id[pair.chunk_id]) for pair in mined_pairs],
        mining,
        other_positives=[
            frozenset(positives_of_question[normalize_text(pair.query)] - {pair.chunk_id}) for pair in mined_pairs
        ],
        exclusions=Exclusions.of(chunk_ref(chunk_by_id[pair.chunk_id]) for pair in test_pairs),
        seed_keys=[pair.pair_id for pair in mined_pairs],
        progress=progress,
    )
