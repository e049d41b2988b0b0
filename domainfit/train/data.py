"""Training and validation rows from reviewed pairs, chunk texts and mined negatives.

Pure functions: they take pairs, chunk texts and the rows of ``triplets.parquet``
and return plain rows; :func:`to_datasets` turns them into Hugging Face datasets.

Training rows, by loss:

+-------------------------+------------------------------------------------+
| loss                    | columns                                        |
+=========================+================================================+
| mnrl / cached-mnrl      | anchor, positive[, negative_1 .. negative_k]   |
+-------------------------+------------------------------------------------+
| triplet                 | anchor, positive, negative (one row per        |
|                         | negative)                                      |
+-------------------------+------------------------------------------------+

The anchor is the pair's question after review (an edited question wins over the
text the miner saw) and the positive is its chunk's text; a pair whose question or
chunk is blank is dropped (and counted). A mined negative with the positive's own
text is dropped (a false negative). Pairs with fewer than ``k`` mined
negatives are never padded: under MNRL they train as plain (anchor, positive) rows in
a second dataset; under triplet loss they have nothing to train on and are counted
as dropped.

Example::

    negatives = read_negatives(run)          # domainfit.triplets
    train = build_training_set(train_pairs, chunk_text, negatives, loss="mnrl", negatives_per_pair=1)
    dataset = to_datasets(train)       # Dataset, or DatasetDict when some pairs have fewer negatives
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping, Sequence

from ..artifacts import Chunk, Pair, normalize_text
from ..errors import TrainingError
from ..triplets import NEGATIVE, negative_columns, negatives_by_pair  # noqa: F401  (re-exported)

if TYPE_CHECKING:  # pragma: no cover
    from datasets import Dataset, DatasetDict

ANCHOR = "anchor"
POSITIVE = "positive"


@dataclass
class TrainingSet:
    """The rows the trainer sees, and what happened to each training pair."""

    columns: tuple[str, ...]
    rows: list[dict[str, str]]
    short_rows: list[dict[str, str]] = field(default_factory=list)  # fewer negatives than ``columns``
    n_pairs: int = 0
    n_with_negatives: int = 0
    dropped_pairs: int = 0
    dropped_negatives: int = 0

    @property
    def n_negatives(self) -> int:
        """Mined negative columns per row (triplet rows count 1)."""
        return sum(1 for column in self.columns if column.startswith(NEGATIVE))

    @property
    def n_rows(self) -> int:
        return len(self.rows) + len(self.short_rows)

    def groups(self) -> dict[str, list[dict[str, str]]]:
        """Rows by number of negatives, named ``<n>_negatives``, most negatives first."""
        grouped: dict[int, list[dict[str, str]]] = {}
        for row in self.rows + self.short_rows:
            grouped.setdefault(len(row) - 2, []).append(row)
        return {f"{n}_negatives": grouped[n] for n in sorted(grouped, reverse=True)}

    def counts(self) -> dict[str, int]:
        return {
            "train_pairs": self.n_pairs,
            "train_rows": self.n_rows,
            "pairs_with_negatives": self.n_with_negatives,
            "pairs_with_fewer_negatives": sum(1 for row in self.short_rows if len(row) > 2),
            "pairs_without_negatives": self.n_pairs - self.dropped_pairs - self.n_with_negatives,
            "negatives_per_row": self.n_negatives,
            "dropped_pairs": self.dropped_pairs,
            "dropped_negatives": self.dropped_negatives,
        }


@dataclass
class ValidationSet:
    """Val questions against the whole corpus: what InformationRetrievalEvaluator takes."""

    queries: dict[str, str]
    corpus: dict[str, str]
    relevant: dict[str, set[str]]

    def __bool__(self) -> bool:
        return bool(self.queries)


def build_training_set(
    pairs: Sequence[Pair],
    chunk_text: Mapping[str, str],
    negatives: Mapping[str, list[str]] | None,
    *,
    loss: str,
    negatives_per_pair: int | None = 1,
    use_negatives: bool = True,
) -> TrainingSet:
    """Rows for ``loss`` from training pairs and (optionally) their mined negatives.

    ``negatives_per_pair`` caps the negatives used per pair (None = all mined). See
    the module doc for the columns and for pairs with too few negatives.

    Example::

        train = build_training_set(pairs, {c.chunk_id: c.text for c in chunks}, None, loss="cached-mnrl")
        train.columns   # ('anchor', 'positive')
    """
    missing_chunks = sorted({pair.chunk_id for pair in pairs} - set(chunk_text))
    if missing_chunks:
        raise TrainingError(
            f"{len(missing_chunks)} training pair(s) point at chunk ids not in chunks.parquet, e.g. {missing_chunks[0]}"
        )
    usable = [pair for pair in pairs if pair.query.strip() and chunk_text[pair.chunk_id].strip()]
    mined, dropped_negatives = _usable_negatives(usable, chunk_text, negatives if use_negatives else None)
    if loss == "triplet":
        training = _triplet_rows(usable, chunk_text, mined, negatives_per_pair, dropped_negatives)
    else:
        training = _ranking_rows(usable, chunk_text, mined, negatives_per_pair, dropped_negatives)
    training.n_pairs = len(pairs)
    training.dropped_pairs += len(pairs) - len(usable)
    return training


def _usable_negatives(
    pairs: Sequence[Pair], chunk_text: Mapping[str, str], negatives: Mapping[str, list[str]] | None
) -> tuple[dict[str, list[str]], int]:
    """Each pair's negatives minus copies of its own positive text (order kept), and how many went."""
    if not negatives:
        return {}, 0
    usable, dropped = {}, 0
    for pair in pairs:
        positive = normalize_text(chunk_text[pair.chunk_id])
        texts = negatives.get(pair.pair_id, [])
        usable[pair.pair_id] = [text for text in texts if normalize_text(text) != positive]
        dropped += len(texts) - len(usable[pair.pair_id])
    return usable, dropped


def _ranking_rows(
    pairs: Sequence[Pair],
    chunk_text: Mapping[str, str],
    mined: Mapping[str, list[str]],
    negatives_per_pair: int | None,
    dropped_negatives: int,
) -> TrainingSet:
    most = max((len(texts) for texts in mined.values()), default=0)
    k = most if negatives_per_pair is None else min(negatives_per_pair, most)  # some pair has k: rows is not empty
    rows, short_rows = [], []
    for pair in pairs:
        texts = mined.get(pair.pair_id, [])[:k]
        row = {ANCHOR: pair.query, POSITIVE: chunk_text[pair.chunk_id]}
        row.update({f"{NEGATIVE}_{i}": text for i, text in enumerate(texts, start=1)})
        (rows if len(texts) == k else short_rows).append(row)
    dropped = 0
    by_count: dict[int, int] = {}
    for row in short_rows:
        by_count[len(row)] = by_count.get(len(row), 0) + 1
    if any(count == 1 for count in by_count.values()):  # a batch of one ranks nothing against nothing
        short_rows = [row for row in short_rows if by_count[len(row)] > 1]
        dropped = sum(1 for count in by_count.values() if count == 1)
    return TrainingSet(
        columns=(ANCHOR, POSITIVE, *(f"{NEGATIVE}_{i}" for i in range(1, k + 1))),
        rows=rows,
        short_rows=short_rows,
        n_pairs=len(pairs),
        n_with_negatives=sum(1 for row in rows + short_rows if len(row) > 2),
        dropped_pairs=dropped,
        dropped_negatives=dropped_negatives,
    )


def _triplet_rows(
    pairs: Sequence[Pair],
    chunk_text: Mapping[str, str],
    mined: Mapping[str, list[str]],
    negatives_per_pair: int | None,
    dropped_negatives: int,
) -> TrainingSet:
    rows, with_negatives = [], 0
    for pair in pairs:
        texts = mined.get(pair.pair_id, [])
        if negatives_per_pair is not None:
            texts = texts[:negatives_per_pair]
        with_negatives += bool(texts)
        rows.extend(
            {ANCHOR: pair.query, POSITIVE: chunk_text[pair.chunk_id], NEGATIVE: text} for text in texts
        )
    return TrainingSet(
        columns=(ANCHOR, POSITIVE, NEGATIVE),
        rows=rows,
        n_pairs=len(pairs),
        n_with_negatives=with_negatives,
        dropped_pairs=len(pairs) - with_negatives,
        dropped_negatives=dropped_negatives,
    )


def build_validation_set(val_pairs: Sequence[Pair], chunks: Sequence[Chunk]) -> ValidationSet:
    """Val questions, every chunk as the corpus, and each question's own chunk as relevant.

    Chunks with the same text share the first one's id, so a copy of the answer in
    another document is not scored as a miss.

    Example::

        val = build_validation_set(val_pairs, chunks)
        len(val.corpus) == len({normalize_text(c.text) for c in chunks})
    """
    corpus: dict[str, str] = {}
    canonical: dict[str, str] = {}
    first_of_text: dict[str, str] = {}
    for chunk in chunks:
        key = normalize_text(chunk.text)
        canonical[chunk.chunk_id] = first_of_text.setdefault(key, chunk.chunk_id)
        if canonical[chunk.chunk_id] == chunk.chunk_id:
            corpus[chunk.chunk_id] = chunk.text
    queries, relevant = {}, {}
    for pair in val_pairs:
        if not pair.query.strip():
            continue
        if pair.chunk_id not in canonical:
            raise TrainingError(f"validation pair {pair.pair_id} points at chunk {pair.chunk_id}, not in chunks.parquet")
        queries[pair.pair_id] = pair.query
        relevant[pair.pair_id] = {canonical[pair.chunk_id]}
    return ValidationSet(queries=queries, corpus=corpus, relevant=relevant)


def to_datasets(training: TrainingSet) -> "Dataset | DatasetDict":
    """A ``datasets.Dataset``, or a DatasetDict with one dataset per number of negatives.

    Example::

        dataset = to_datasets(train)
        dataset.column_names     # ['anchor', 'positive', 'negative_1']
    """
    from datasets import Dataset, DatasetDict

    groups = {
        name: Dataset.from_dict({column: [row[column] for row in rows] for column in rows[0]})
        for name, rows in training.groups().items()
    }
    if len(groups) == 1:
        return next(iter(groups.values()))
    return DatasetDict(groups)
