"""Cross-encoder training rows from reviewed pairs, chunk texts and mined negatives.

Pure functions over plain rows. Per loss:

+---------+-------------------------------------------+--------------------------------+
| loss    | columns                                   | from each training pair        |
+=========+===========================================+================================+
| bce     | query, document, label                    | (q, positive, 1) and           |
|         |                                           | (q, negative_i, 0) per mined   |
+---------+-------------------------------------------+--------------------------------+
| lambda  | query, docs, labels                       | (q, [positive, negatives...],  |
|         |                                           | [1, 0, ...]): one list         |
+---------+-------------------------------------------+--------------------------------+
| mnrl    | query, positive[, negative_1..k]          | in-batch negatives, plus the   |
|         |                                           | mined ones when every row has k|
+---------+-------------------------------------------+--------------------------------+

A negative whose text is the positive's (normalised) is dropped: it is the answer.
Without mined negatives ``bce`` and ``lambda`` have nothing to tell apart, so
:func:`choose_loss` falls back to ``mnrl`` (in-batch negatives) and says so.

Example::

    rows = rerank_rows(train_pairs, chunk_text, negatives, loss="bce", negatives_per_pair=3)
    rows[0]   # {'query': 'What was ...', 'document': '...', 'label': 1.0}
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..artifacts import Pair, normalize_text
from ..errors import TrainingError


def choose_loss(requested: str, has_negatives: bool) -> tuple[str, str | None]:
    """The loss to train with, and a note when it differs from the requested one.

    Example::

        choose_loss("bce", has_negatives=False)   # ('mnrl', 'no mined negatives ...')
    """
    if has_negatives or requested == "mnrl":
        return requested, None
    return "mnrl", (
        f"no mined negatives (RUN/triplets.parquet): rerank.loss '{requested}' needs them, so this trained with "
        "in-batch negatives (MultipleNegativesRankingLoss); run `domainfit mine RUN` for hard negatives"
    )


def usable_negatives(pair: Pair, positive: str, negatives: Mapping[str, Sequence[str]], k: int) -> list[str]:
    """Up to ``k`` of the pair's mined negatives, best first, without copies of the positive."""
    own = normalize_text(positive)
    return [text for text in negatives.get(pair.pair_id, []) if normalize_text(text) != own][:k]


def rerank_rows(
    pairs: Sequence[Pair],
    chunk_text: Mapping[str, str],
    negatives: Mapping[str, Sequence[str]] | None,
    *,
    loss: str,
    negatives_per_pair: int,
) -> list[dict[str, Any]]:
    """Training rows for ``loss`` (see the module doc); pairs with a blank question or chunk are skipped."""
    negatives = negatives or {}
    usable = [pair for pair in pairs if pair.query.strip() and chunk_text.get(pair.chunk_id, "").strip()]
    if len(usable) < 2:
        raise TrainingError(f"the re-ranker needs at least 2 training pairs, the train split has {len(usable)}")
    mined = {
        pair.pair_id: usable_negatives(pair, chunk_text[pair.chunk_id], negatives, negatives_per_pair)
        for pair in usable
    }
    rows: list[dict[str, Any]] = []
    if loss == "bce":
        for pair in usable:
            rows.append({"query": pair.query, "document": chunk_text[pair.chunk_id], "label": 1.0})
            rows += [{"query": pair.query, "document": text, "label": 0.0} for text in mined[pair.pair_id]]
    elif loss == "lambda":
        for pair in usable:
            docs = [chunk_text[pair.chunk_id], *mined[pair.pair_id]]
            rows.append({"query": pair.query, "docs": docs, "labels": [1.0] + [0.0] * (len(docs) - 1)})
    elif loss == "mnrl":
        k = min((len(texts) for texts in mined.values()), default=0)
        for pair in usable:
            row = {"query": pair.query, "positive": chunk_text[pair.chunk_id]}
            row.update({f"negative_{i}": text for i, text in enumerate(mined[pair.pair_id][:k], start=1)})
            rows.append(row)
    else:  # pragma: no cover - the config's Literal forbids it
        raise ValueError(f"unknown rerank loss {loss!r}")
    return rows


def reranking_samples(
    queries: Mapping[str, str],
    relevant: Mapping[str, set[str]],
    candidates: Mapping[str, Sequence[str]],
    corpus: Mapping[str, str],
) -> list[dict[str, Any]]:
    """``CrossEncoderRerankingEvaluator`` samples: each query's retrieved chunks, best first, and its positives."""
    return [
        {
            "query": queries[qid],
            "positive": [corpus[cid] for cid in sorted(relevant[qid])],
            "documents": [corpus[cid] for cid in candidates[qid]],
        }
        for qid in queries
    ]
