"""Leak-free train / validation / test splits of question–chunk pairs: the split stage.

Its own module, not part of a stage package, because mining, training and evaluation
all read the same split (a model trained on one split is tested on the same one).

Pairs are grouped into units — a document (default), a chunk, or a single query —
and whole units are assigned to a split, deterministically by seed. Validation is
carved from what is left after test, by the same units. Splitting by document or by
chunk guarantees that no test question's chunk (nor a chunk with the same text) is
the positive of a training or validation pair: documents that share a chunk text are
kept together, and chunks with the same text are one unit. Splitting by query is the
random row split of many tutorials and is labelled optimistic, because a test chunk's
other questions can be trained on.

Questions written by people on the review page (``origin: human``) are never put in
train, val or test: they go only to the ``human`` set (``splits/human.jsonl``), a
test set that nothing trains on. Their chunks may be trained on through generated
pairs, as any document a user searches is (in-corpus adaptation is the point).

Example::

    splits = make_splits(pairs, chunks, SplitConfig(by="document"))
    write_splits(RunDir("runs/demo"), splits, pairs)
    splits.test[:3]        # pair ids
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Sequence

from .artifacts import (
    Chunk,
    Pair,
    RunDir,
    normalize_text,
    read_chunks,
    read_json,
    read_jsonl,
    stage_run,
    update_manifest,
    write_json,
    write_jsonl,
)
from .config import RunConfig, SplitConfig
from .errors import ArtifactError, SplitError
from .review import human_pairs, reviewed_pairs

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
    test_fraction: float | None = None
    val_fraction: float | None = None
    human: list[str] = field(default_factory=list)

    @property
    def optimistic(self) -> bool:
        """True when test chunks are also training positives (the by-query split)."""
        return bool(self.leaked_chunks)

    def ids(self, name: str) -> list[str]:
        return getattr(self, name)

    def counts(self) -> dict[str, int]:
        """Pairs per split (and ``human`` when people wrote test questions)."""
        counts = {name: len(self.ids(name)) for name in SPLIT_NAMES}
        return {**counts, "human": len(self.human)} if self.human else counts

    def split_of(self) -> dict[str, str]:
        """``{pair_id: split name}`` for every pair in a split."""
        return {pair_id: name for name in SPLIT_NAMES for pair_id in self.ids(name)}


def make_splits(pairs: Sequence[Pair], chunks: Sequence[Chunk], config: SplitConfig) -> Splits:
    """Assign every pair to exactly one of train, val or test, by whole units (see module doc).

    Shares are counted in pairs; whole units are taken until a share is reached, so a
    large document can make its split larger than asked. Raises
    :class:`SplitError` when there are no pairs, pairs point at unknown chunks,
    there are fewer than two units, or (by document / chunk) the leak check fails.
    Human-written pairs (``origin: human``) go to ``human`` only, never to a split
    that is trained on or to the generated test split.
    """
    human = [pair.pair_id for pair in pairs if pair.origin == "human"]
    pairs = [pair for pair in pairs if pair.origin != "human"]
    if not pairs:
        raise SplitError("no pairs to split: run synth first (or review accepted none)")
    chunk_by_id = {chunk.chunk_id: chunk for chunk in chunks}
    missing = sorted({pair.chunk_id for pair in pairs} - chunk_by_id.keys())
    if missing:
        raise SplitError(f"{len(missing)} pair(s) point at chunk ids not in chunks, e.g. {missing[0]}")

    unit_of = _unit_keys(pairs, chunk_by_id, config.by)
    units: dict[str, list[str]] = defaultdict(list)
    for pair in pairs:
        if pair.pair_id not in units[unit_of[pair.pair_id]]:
            units[unit_of[pair.pair_id]].append(pair.pair_id)
    if len(units) < 2:
        raise SplitError(
            f"cannot split by {config.by}: all {len(pairs)} pairs belong to one {config.by} "
            "(documents sharing a chunk text count as one); set split.by = \"chunk\" (or add documents)"
        )

    order = sorted(units)
    random.Random(config.seed).shuffle(order)
    total = sum(len(ids) for ids in units.values())
    test_units, rest = _take_share(order, units, config.test_fraction, total=total)
    rest_pairs = sum(len(units[unit]) for unit in rest)
    val_units, train_units = (
        _take_share(rest, units, config.val_fraction, total=rest_pairs) if config.val_fraction > 0 else ([], rest)
    )
    splits = Splits(
        train=[pid for unit in train_units for pid in units[unit]],
        val=[pid for unit in val_units for pid in units[unit]],
        test=[pid for unit in test_units for pid in units[unit]],
        by=config.by,
        seed=config.seed,
        test_fraction=config.test_fraction,
        val_fraction=config.val_fraction,
        human=list(dict.fromkeys(human)),
    )
    splits.leaked_chunks = leaked_chunks(splits, pairs, chunks)
    if splits.leaked_chunks and config.by != "query":
        raise SplitError(
            f"leak check failed: {len(splits.leaked_chunks)} test chunk(s) are training positives"
        )
    return splits


def _unit_keys(pairs: Sequence[Pair], chunk_by_id: dict[str, Chunk], by: str) -> dict[str, str]:
    """The unit each pair belongs to: its query, its chunk's text, or its document group."""
    if by == "query":
        return {pair.pair_id: pair.pair_id for pair in pairs}
    text_of = {pair.pair_id: normalize_text(chunk_by_id[pair.chunk_id].text) for pair in pairs}
    if by == "chunk":
        # chunks with identical text are one unit, so a copy cannot leak across splits
        return text_of
    # by document: documents that share a positive chunk's text are one unit (union-find)
    parent: dict[str, str] = {}

    def root(doc: str) -> str:
        parent.setdefault(doc, doc)
        while parent[doc] != doc:
            parent[doc] = parent[parent[doc]]
            doc = parent[doc]
        return doc

    first_doc_of_text: dict[str, str] = {}
    for pair in pairs:
        doc = chunk_by_id[pair.chunk_id].doc_id
        other = first_doc_of_text.setdefault(text_of[pair.pair_id], doc)
        low, high = sorted((root(doc), root(other)))
        parent[high] = low
    return {pair.pair_id: root(chunk_by_id[pair.chunk_id].doc_id) for pair in pairs}


def _take_share(
    order: list[str], units: dict[str, list[str]], fraction: float, *, total: int
) -> tuple[list[str], list[str]]:
    """Take whole units from the front of ``order`` until ``fraction`` of ``total`` pairs.

    At least one unit is taken and at least one is left, so no split that was asked
    for comes out empty while another holds everything.
    """
    target = max(1, round(fraction * total))
    taken: list[str] = []
    count = 0
    for unit in order[: len(order) - 1]:
        if count >= target:
            break
        taken.append(unit)
        count += len(units[unit])
    return taken, order[len(taken) :]


def leaked_chunks(splits: Splits, pairs: Sequence[Pair], chunks: Sequence[Chunk]) -> list[str]:
    """Test chunks (by id or identical text) that are also positives of train or val pairs.

    Split ids that are no longer among ``pairs`` (rejected in review after the split
    was written) are ignored.
    """
    text_of = {chunk.chunk_id: normalize_text(chunk.text) for chunk in chunks}
    chunk_of = {pair.pair_id: pair.chunk_id for pair in pairs}

    def positives(ids: list[str]) -> list[str]:
        return [chunk_of[pid] for pid in ids if pid in chunk_of]

    trained = {text_of.get(chunk_id, chunk_id) for chunk_id in positives(splits.train + splits.val)}
    return sorted({chunk_id for chunk_id in positives(splits.test) if text_of.get(chunk_id, chunk_id) in trained})


def write_splits(run: RunDir, splits: Splits, pairs: Sequence[Pair] | None = None) -> None:
    """Write ``splits/{train,val,test}.jsonl`` (pair ids, chunk ids), ``human.jsonl`` if any, and ``split.json``."""
    chunk_of = {pair.pair_id: pair.chunk_id for pair in pairs or ()}
    for name in SPLIT_NAMES:
        write_jsonl(
            run.split_file(name),
            ({"pair_id": pid, "chunk_id": chunk_of.get(pid)} for pid in splits.ids(name)),
        )
    if splits.human:
        write_jsonl(run.split_file("human"), ({"pair_id": pid, "chunk_id": chunk_of.get(pid)} for pid in splits.human))
    else:
        run.split_file("human").unlink(missing_ok=True)
    write_json(
        run.splits_dir / "split.json",
        {
            "by": splits.by,
            "seed": splits.seed,
            "test_fraction": splits.test_fraction,
            "val_fraction": splits.val_fraction,
            "counts": splits.counts(),
            "optimistic": splits.optimistic,
            "leaked_chunks": splits.leaked_chunks,
        },
    )


def read_splits(run: RunDir) -> Splits:
    """Read the splits written by :func:`write_splits`."""
    meta_path = run.splits_dir / "split.json"
    if not meta_path.exists():
        raise ArtifactError(f"no splits in {run.splits_dir}: run `domainfit eval` or `domainfit mine` first")
    meta = read_json(meta_path)
    ids = {name: [row["pair_id"] for row in read_jsonl(run.split_file(name))] for name in SPLIT_NAMES}
    leaked = meta.get("leaked_chunks", [])
    human_file = run.split_file("human")
    human = [row["pair_id"] for row in read_jsonl(human_file)] if human_file.exists() else []
    return Splits(
        **ids,
        by=meta["by"],
        seed=meta["seed"],
        leaked_chunks=list(leaked) if isinstance(leaked, list) else ["?"] * int(leaked),
        test_fraction=meta.get("test_fraction"),
        val_fraction=meta.get("val_fraction"),
        human=human,
    )


def ensure_splits(run: RunDir, config: SplitConfig) -> Splits:
    """Read the run's splits, or make and write them from the reviewed pairs if absent.

    Splits are written once: a model trained on one split must be tested on the same
    one. If the written split was made with other settings than ``config`` asks for,
    this raises :class:`SplitError` instead of silently using either. Pairs that
    appear after the split was written (a later synth, a rescued reject) are not added
    to any split: delete ``splits/`` (or ``domainfit run --from split``) to re-split.
    """
    if (run.splits_dir / "split.json").exists():
        splits = read_splits(run)
        asked = {"by": config.by, "seed": config.seed, "test_fraction": config.test_fraction,
                 "val_fraction": config.val_fraction}
        written = {"by": splits.by, "seed": splits.seed, "test_fraction": splits.test_fraction,
                   "val_fraction": splits.val_fraction}
        changed = [key for key in asked if written[key] is not None and written[key] != asked[key]]
        if changed:
            key = changed[0]
            raise SplitError(
                f"{run.splits_dir / 'split.json'} has split.{key} = {written[key]!r} but the config asks for "
                f"{asked[key]!r}: delete {run.splits_dir} to re-split (and retrain), or keep the config"
            )
        return splits
    pairs = split_input(run)
    splits = make_splits(pairs, read_chunks(run.chunks), config)
    write_splits(run, splits, pairs)
    return splits


def run_split(run: RunDir, config: RunConfig) -> Splits:
    """The split stage: split the reviewed pairs anew and write ``splits/`` (see :func:`make_splits`).

    Human-written pairs (``human.jsonl``) are passed along and land in ``splits.human`` only.

    Unlike :func:`ensure_splits` it always re-splits; the pipeline runs it when the
    pairs or ``split.*`` changed. The split's and review's counts go to the manifest's
    top-level ``split`` and ``review`` (the run report's sections), the timing to
    ``stages.split``.

    Example::

        splits = run_split(RunDir("runs/demo"), load_config())
        splits.counts()     # {'train': 40, 'val': 5, 'test': 10}
    """
    with stage_run(run, "split", config_hash=config.stage_hash("split")):
        pairs, review = reviewed_pairs(run)
        pairs += human_pairs(run)  # the split puts these in its human test set only
        splits = make_splits(pairs, read_chunks(run.chunks), config.split)
        write_splits(run, splits, pairs)
        update_manifest(run, review=review.counts(), split={"by": splits.by, **splits.counts()})
    return splits


def split_input(run: RunDir) -> list[Pair]:
    """What the split is made from: the reviewed generated pairs, then the human-written ones."""
    pairs, _ = reviewed_pairs(run)
    return [*pairs, *human_pairs(run)]
