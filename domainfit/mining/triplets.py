"""``triplets.parquet``: the mined negatives in the layout the train stage reads.

n-tuple (default), one row per pair::

    pair_id, split, anchor, positive, positive_id, positive_score,
    negative_1, negative_1_id, negative_1_score, ..., negative_n, negative_n_id, negative_n_score

A pair with fewer than n negatives keeps its row with nulls in the missing columns
(never padded with other text). triplet, one row per negative::

    pair_id, split, anchor, positive, positive_id, positive_score, negative, negative_id, negative_score

Example::

    table = triplets_table(mined, num_negatives=3, output_format="n-tuple")
    write_parquet(run.triplets, table)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Mapping, Sequence

from .negatives import Candidate

PAIR_COLUMNS = ("pair_id", "split", "anchor", "positive", "positive_id", "positive_score")


@dataclass(frozen=True)
class MinedPair:
    """One (query, positive) pair with its chosen negatives."""

    pair_id: str
    split: str
    anchor: str
    positive_id: str
    positive_score: float
    negatives: Sequence[Candidate]


def triplets_schema(num_negatives: int, output_format: Literal["n-tuple", "triplet"]):
    """The Arrow schema of ``triplets.parquet`` (fixed, so empty and null columns keep their types)."""
    import pyarrow as pa

    fields = [
        ("pair_id", pa.string()),
        ("split", pa.string()),
        ("anchor", pa.string()),
        ("positive", pa.string()),
        ("positive_id", pa.string()),
        ("positive_score", pa.float32()),
    ]
    if output_format == "triplet":
        fields += [("negative", pa.string()), ("negative_id", pa.string()), ("negative_score", pa.float32())]
    else:
        for number in range(1, num_negatives + 1):
            fields += [
                (f"negative_{number}", pa.string()),
                (f"negative_{number}_id", pa.string()),
                (f"negative_{number}_score", pa.float32()),
            ]
    return pa.schema(fields)


def triplets_table(
    mined: Sequence[MinedPair],
    texts: Mapping[str, str],
    *,
    num_negatives: int,
    output_format: Literal["n-tuple", "triplet"] = "n-tuple",
):
    """Rows of ``triplets.parquet`` as an Arrow table; ``texts`` maps chunk ids to text."""
    import pyarrow as pa

    rows = []
    for pair in mined:
        base = {
            "pair_id": pair.pair_id,
            "split": pair.split,
            "anchor": pair.anchor,
            "positive": texts[pair.positive_id],
            "positive_id": pair.positive_id,
            "positive_score": pair.positive_score,
        }
        if output_format == "triplet":
            for negative in pair.negatives:
                chunk_id = negative.chunk.chunk_id
                rows.append(
                    {**base, "negative": texts[chunk_id], "negative_id": chunk_id, "negative_score": negative.score}
                )
            continue
        row = dict(base)
        for number, negative in enumerate(pair.negatives[:num_negatives], start=1):
            chunk_id = negative.chunk.chunk_id
            row[f"negative_{number}"] = texts[chunk_id]
            row[f"negative_{number}_id"] = chunk_id
            row[f"negative_{number}_score"] = negative.score
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=triplets_schema(num_negatives, output_format))
