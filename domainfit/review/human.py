"""Questions people write for a chunk on the review page: a human test set, never trained on.

A reviewer who reads a chunk can type the question they would search it with (key
``w``). Each one becomes a :class:`~domainfit.artifacts.Pair` with ``origin="human"``
appended to ``RUN/human.jsonl`` (fsynced before the page hears back). They are not
review decisions and not training pairs: :func:`~domainfit.review.reviewed_pairs`
never returns them, the split puts them only in its ``human`` set, and ``eval``
scores them as the headline evidence at chunk level (their chunk, and any chunk with
the same text, is relevant) unless real queries (``--queries``) are given. A few
dozen written in minutes are a gold set the generator cannot flatter.

Example::

    pair = write_human_pair(run, chunk_id="3f2a...", query="how long is a contractor pass valid?")
    human_pairs(run)      # [pair, ...]; the same question for the same chunk is kept once
"""

from __future__ import annotations

import threading

from ..artifacts import Pair, RunDir, append_jsonl, pair_id_for, read_rows, repair_jsonl_tail
from ..errors import ReviewError

HUMAN_GENERATOR = {"model": "human", "prompt_version": "review-page"}
MAX_HUMAN_QUERY_CHARS = 2_000

_lock = threading.Lock()


def human_pairs(run: RunDir) -> list[Pair]:
    """Every human-written pair of the run, in writing order, once per id.

    From ``human.jsonl``, plus any ``origin: human`` row that found its way into
    ``pairs.jsonl`` (so such a row can never be trained on either).
    """
    rows: list[Pair] = []
    if run.human.exists():
        with _lock:
            repair_jsonl_tail(run.human)
        rows += read_rows(run.human, Pair)
    if run.pairs.exists():
        rows += [pair for pair in read_rows(run.pairs, Pair) if pair.origin == "human"]
    unique: dict[str, Pair] = {}
    for pair in rows:
        unique.setdefault(pair.pair_id, pair.model_copy(update={"origin": "human"}))
    return list(unique.values())


def write_human_pair(run: RunDir, chunk_id: str, query: str) -> Pair:
    """Append a person's question for ``chunk_id`` to ``human.jsonl``; returns the pair.

    Raises :class:`ReviewError` (one line) for an empty or overlong question. The same
    question for the same chunk is stored once (its id is the content hash).
    """
    text = " ".join(query.split())
    if not text:
        raise ReviewError("a human question cannot be empty")
    if len(text) > MAX_HUMAN_QUERY_CHARS:
        raise ReviewError(f"a human question is at most {MAX_HUMAN_QUERY_CHARS} characters, got {len(text)}")
    pair = Pair(pair_id=pair_id_for(chunk_id, text), chunk_id=chunk_id, query=text, evidence="",
                generator=dict(HUMAN_GENERATOR), checks={"written_by": "human"}, origin="human")
    with _lock:
        if run.human.exists():
            repair_jsonl_tail(run.human)
            if any(row.pair_id == pair.pair_id for row in read_rows(run.human, Pair)):
                return pair
        append_jsonl(run.human, [pair])
    return pair
