"""Reading ``triplets.parquet``: the mined negatives of each pair, for every stage that trains.

Mining writes one row per pair (``negative_1 .. negative_n``, null where it found
fewer) or one row per negative (``negative``); the bi-encoder and the cross-encoder
trainers both read it through :func:`read_negatives`.

Example::

    negatives = read_negatives(run)          # {'pair_id': ['negative text', ...]}
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

from .artifacts import RunDir, read_parquet
from .errors import ArtifactError, TrainingError

NEGATIVE = "negative"
_NTUPLE_COLUMN = re.compile(r"^negative_(\d+)$")


def read_negatives(run: RunDir) -> dict[str, list[str]]:
    """Mined negative texts per pair id from ``triplets.parquet`` (n-tuple or triplet format)."""
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(run.triplets).names
    except Exception as error:  # pyarrow raises several types for a torn file
        raise ArtifactError(f"{run.triplets} is corrupt or truncated ({error}); re-run `domainfit mine`") from None
    columns = negative_columns(names)
    if not columns:
        raise ArtifactError(f"{run.triplets} has no negative or negative_1.. columns; re-run `domainfit mine`")
    table = read_parquet(run.triplets, ["pair_id", *columns]).select(["pair_id", *columns])
    return negatives_by_pair(table.to_pylist(), source=str(run.triplets))


def negatives_by_pair(rows: Iterable[Mapping[str, Any]], *, source: str = "triplets.parquet") -> dict[str, list[str]]:
    """Mined negative texts per pair id, from n-tuple or triplet rows, best first.

    n-tuple rows carry ``negative_1 .. negative_n`` (null where the miner found fewer);
    nulls are skipped, never padded. Triplet rows carry one ``negative`` each, and a
    null there is a broken file: :class:`TrainingError` naming ``source`` and the count.

    Example::

        negatives_by_pair([{"pair_id": "p1", "negative_1": "a", "negative_2": None}])  # {'p1': ['a']}
    """
    found: dict[str, list[str]] = {}
    missing_in_triplets = 0
    for row in rows:
        pair_id = row.get("pair_id")
        if not pair_id:
            raise TrainingError(f"{source}: a row has no pair_id")
        texts = found.setdefault(str(pair_id), [])
        if NEGATIVE in row:
            value = row[NEGATIVE]
            if _is_missing(value):
                missing_in_triplets += 1
            else:
                texts.append(str(value))
            continue
        for column in sorted((c for c in row if _NTUPLE_COLUMN.match(c)), key=_column_number):
            if not _is_missing(row[column]):
                texts.append(str(row[column]))
    if missing_in_triplets:
        raise TrainingError(
            f"{source}: column 'negative' has {missing_in_triplets} missing value(s); re-run `domainfit mine`"
        )
    return found


def negative_columns(column_names: Iterable[str]) -> list[str]:
    """The negative columns of a triplets table, in order (``negative`` or ``negative_1..n``)."""
    names = list(column_names)
    if NEGATIVE in names:
        return [NEGATIVE]
    return sorted((name for name in names if _NTUPLE_COLUMN.match(name)), key=_column_number)




def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value) or (isinstance(value, str) and not value.strip())


def _column_number(name: str) -> int:
    return int(_NTUPLE_COLUMN.match(name).group(1))  # type: ignore[union-attr]
