"""Leak-free train / validation / test splits of question–chunk pairs.

Pairs are grouped into units — a document (default), a chunk, or a single query —
and whole units are assigned to a split, deterministically by seed. Splitting by
document or by chunk guarantees that no test question's chunk is the positive of a
training pair; splitting by query is the random row split of many tutorials and is
labelled optimistic, because a test chunk's other questions can be trained on.

Example::

    splits = make_splits(pairs, chunks, SplitConfig(by="document"))
    write_splits(RunDir("runs/demo"), splits)
    splits.test[:3]        # pair ids
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Sequence

from ..artifacts import Chunk, Pair, RunDir, normalize_text, read_json, read_jsonl, write_json, write_jsonl
from ..config import SplitConfig
from ..errors import ArtifactError, EvaluationError

SPLIT_NAMES = ("train", "val", "test")


@dataclass
class Splits:
    """Pair ids per split, and how they were made."""

    train: list[str]
    val: list[str]
    test: list[str]
    by: str
    seed: int
    leaked_chunks: list[str] = field(default_factory=list)

    @property
    def optimistic(self) -> bool:
        """True when test chunks are also training positives (the by-query split)."""
        return bool(self.leaked_chunks)

    def ids(self, name: str) -> list[str]:
        return getattr(self, name)

    def counts(self) -> dict[str, int]:
        return {name: len(self.ids(name)) for name in SPLIT_NAMES}


def make_splits(pairs: Sequence[Pair], chunks: Sequence[Chunk], config: SplitConfig) -> Splits:
    """Assign every pair to train, val or test by whole units (see module doc)."""
    if not pairs:
        raise EvaluationError("no pairs to split: run synth first (or review accepted none)")
    chunk_by_id = {chunk.chunk_id: chunk for chunk in chunks}
    missing = sorted({pair.chunk_id for pair in pairs} - chunk_by_id.keys())
    if missing:
        raise EvaluationError(f"{len(missing)} pair(s) point at chunk ids not in chunks, e.g. {missing[0]}")

    def unit_of(pair: Pair) -> str:
        if config.by == "document":
            return chunk_by_id[pair.chunk_id].doc_id
        if config.by == "chunk":
            # chunks with identical text are one unit, so a copy cannot leak across splits
            return normalize_text(chunk_by_id[pair.chunk_id].text)
        return pair.pair_id

    units: dict[str, list[str]] = defaultdict(list)
    for pair in pairs:
        units[unit_of(pair)].append(pair.pair_id)
    if len(units) < 2:
        raise EvaluationError(
            f"cannot split by {config.by}: all {len(pairs)} pairs belong to one {config.by}; "
            "set split.by = \"chunk\" (or add documents)"
        )

    rng = random.Random(config.seed)
    order = sorted(units)
    rng.shuffle(order)
    test_units, rest = _take_share(order, units, config.test_fraction, total=len(pairs))
    train_pool = sum(len(units[unit]) for unit in rest)
    val_units, train_units = (
        _take_share(rest, units, config.val_fraction, total=train_pool, keep_one=True)
        if config.val_fraction > 0
        else ([], rest)
    )
    splits = Splits(
        train=[pid for unit in train_units for pid in units[unit]],
        val=[pid for unit in val_units for pid in units[unit]],
        test=[pid for unit in test_units for pid in units[unit]],
        by=config.by,
        seed=config.seed,
    )
    splits.leaked_chunks = leaked_chunks(splits, pairs, chunks)
    if splits.leaked_chunks and config.by != "query":
        raise EvaluationError(
            f"leak check failed: {len(splits.leaked_chunks)} test chunk(s) are training positives"
        )
    return splits


def _take_share(
    order: list[str],
    units: dict[str, list[str]],
    fraction: float,
    *,
    total: int,
    keep_one: bool = False,
) -> tuple[list[str], list[str]]:
    """Take whole units from the front of ``order`` until ``fraction`` of ``total`` pairs."""
    target = max(1, round(fraction * total))
    taken: list[str] = []
    count = 0
    for unit in order:
        if count >= target or len(taken) >= len(order) - 1:
            break
        taken.append(unit)
        count += len(units[unit])
    if keep_one and len(taken) == len(order):
        taken.pop()
    rest = [unit for unit in order if unit not in set(taken)]
    return taken, rest


def leaked_chunks(splits: Splits, pairs: Sequence[Pair], chunks: Sequence[Chunk]) -> list[str]:
    """Test chunks (by id or identical text) that are also positives of training pairs."""
    text_of = {chunk.chunk_id: normalize_text(chunk.text) for chunk in chunks}
    chunk_of = {pair.pair_id: pair.chunk_id for pair in pairs}
    trained = {text_of.get(chunk_of[pid], chunk_of[pid]) for pid in splits.train + splits.val}
    return sorted(
        {chunk_of[pid] for pid in splits.test if text_of.get(chunk_of[pid], chunk_of[pid]) in trained}
    )


def write_splits(run: RunDir, splits: Splits, pairs: Sequence[Pair] | None = None) -> None:
    """Write ``splits/{train,val,test}.jsonl`` (pair ids, chunk ids) and ``splits/split.json``."""
    chunk_of = {pair.pair_id: pair.chunk_id for pair in pairs or ()}
    for name in SPLIT_NAMES:
        write_jsonl(
            run.split_file(name),
            ({"pair_id": pid, "chunk_id": chunk_of.get(pid)} for pid in splits.ids(name)),
        )
    write_json(
        run.splits_dir / "split.json",
        {
            "by": splits.by,
            "seed": splits.seed,
            "counts": splits.counts(),
            "optimistic": splits.optimistic,
            "leaked_chunks": len(splits.leaked_chunks),
        },
    )


def read_splits(run: RunDir) -> Splits:
    """Read the splits written by :func:`write_splits`."""
    meta_path = run.splits_dir / "split.json"
    if not meta_path.exists():
        raise ArtifactError(f"no splits in {run.splits_dir}: run `domainfit eval` or `domainfit mine` first")
    meta = read_json(meta_path)
    ids = {name: [row["pair_id"] for row in read_jsonl(run.split_file(name))] for name in SPLIT_NAMES}
    splits = Splits(**ids, by=meta["by"], seed=meta["seed"])
    splits.leaked_chunks = ["?"] * int(meta.get("leaked_chunks", 0))
    return splits


def ensure_splits(run: RunDir, config: SplitConfig) -> Splits:
    """Read the run's splits, or make and write them from the reviewed pairs if absent.

    Pairs that appear after the split was written (a later synth, a rescued reject)
    are not silently added to any split: re-split with ``domainfit run --from split``.
    """
    if (run.splits_dir / "split.json").exists():
        return read_splits(run)
    from ..artifacts import read_chunks
    from ..review import reviewed_pairs

    pairs, _ = reviewed_pairs(run)
    splits = make_splits(pairs, read_chunks(run.chunks), config)
    write_splits(run, splits, pairs)
    return splits
