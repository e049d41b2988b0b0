"""A retrieval task: queries, a corpus, and which corpus entries answer each query.

Built from a run's held-out pairs (:func:`task_from_pairs`), from a BEIR folder
(:mod:`.beir`) or from a file of real queries judged by document (:mod:`.queries`).
Chunks whose normalised text is identical share relevance: a query written for one
copy is answered by every copy, so a duplicate is not scored as a miss.

When ``document_ids`` is set the corpus entries are chunks of those documents
(``document_of[i]`` is chunk ``i``'s document), relevance names documents, and a
document ranks by its best chunk.

Example::

    task = task_from_pairs(test_pairs, chunks)
    task.validate()
    len(task.queries), len(task.corpus)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from ..artifacts import Chunk, Pair, content_hash, same_text_chunks
from ..errors import EvaluationError


@dataclass
class RetrievalTask:
    """Queries against a corpus with graded relevance (grade ≥ 1 = relevant)."""

    query_ids: list[str]
    queries: list[str]
    corpus_ids: list[str]
    corpus: list[str]
    relevant: dict[str, dict[str, int]]
    name: str = "held-out"
    details: dict[str, Any] = field(default_factory=dict)
    document_ids: list[str] | None = None
    document_of: list[int] | None = None
    query_styles: list[str] | None = None
    """Each query's style (question, claim, keywords) when it came from a generated pair."""

    @property
    def by_document(self) -> bool:
        """True when relevance is judged on documents and chunk scores are max-pooled."""
        return self.document_ids is not None

    @property
    def ranked_ids(self) -> list[str]:
        """The ids a ranking is over: documents when judged by document, else the corpus entries."""
        return self.document_ids if self.document_ids is not None else self.corpus_ids

    @property
    def graded(self) -> bool:
        """True when some judgement is above 1 (BEIR's graded qrels)."""
        return any(grade > 1 for grades in self.relevant.values() for grade in grades.values())

    def relevance_by_index(self) -> list[dict[int, int]]:
        """Per query (in order), the positions in :attr:`ranked_ids` of its relevant entries, with their grades."""
        position = {rid: index for index, rid in enumerate(self.ranked_ids)}
        return [{position[rid]: grade for rid, grade in self.relevant[qid].items()} for qid in self.query_ids]

    def relevant_sets(self) -> dict[str, set[str]]:
        """Relevance as sentence-transformers' evaluator takes it: query id -> set of corpus ids."""
        return {qid: set(self.relevant[qid]) for qid in self.query_ids}

    def validate(self, source: str = "") -> None:
        """Raise :class:`EvaluationError` (one line, with counts) if this cannot be evaluated."""
        where = f" in {source}" if source else ""
        if not self.query_ids:
            raise EvaluationError(f"no queries to evaluate{where}")
        if not self.corpus_ids:
            raise EvaluationError(f"the corpus is empty{where}")
        if len(set(self.corpus_ids)) != len(self.corpus_ids):
            raise EvaluationError(f"{len(self.corpus_ids) - len(set(self.corpus_ids))} duplicate corpus id(s){where}")
        if len(set(self.query_ids)) != len(self.query_ids):
            raise EvaluationError(f"{len(self.query_ids) - len(set(self.query_ids))} duplicate query id(s){where}")
        if self.by_document:
            if self.document_of is None or len(self.document_of) != len(self.corpus_ids):
                raise EvaluationError(f"every corpus entry needs its document{where}")
            if len(set(self.ranked_ids)) != len(self.ranked_ids):
                raise EvaluationError(f"duplicate document id(s){where}")
            if any(not 0 <= index < len(self.ranked_ids) for index in self.document_of):
                raise EvaluationError(f"a corpus entry points at no document{where}")
        without = [qid for qid in self.query_ids if not self.relevant.get(qid)]
        if without:
            raise EvaluationError(
                f"{len(without)} of {len(self.query_ids)} queries have no relevant document{where}, e.g. {without[0]}"
            )
        known = set(self.ranked_ids)
        missing = sorted({cid for qid in self.query_ids for cid in self.relevant[qid]} - known)
        if missing:
            raise EvaluationError(
                f"{len(missing)} relevant id(s) are not in the corpus of {len(known)}{where}, e.g. {missing[0]}"
            )

    def fingerprints(self) -> dict[str, str]:
        """Hashes of the corpus and of the queries+judgements: when they match, results can be reused."""
        corpus = content_hash(*(f"{cid}\x1e{text}" for cid, text in zip(self.corpus_ids, self.corpus)))
        if self.by_document:
            documents = self.ranked_ids
            corpus = content_hash(corpus, *(documents[index] for index in self.document_of or []))
        queries = content_hash(
            *(
                f"{qid}\x1e{text}\x1e{sorted(self.relevant[qid].items())}"
                for qid, text in zip(self.query_ids, self.queries)
            )
        )
        return {"corpus_hash": corpus, "queries_hash": queries}

    def counts(self) -> dict[str, Any]:
        judged = [len(self.relevant[qid]) for qid in self.query_ids]
        return {
            "queries": len(self.query_ids),
            "corpus": len(self.ranked_ids),
            **({"chunks": len(self.corpus_ids), "judged_by": "document"} if self.by_document else {}),
            "relevant_per_query": round(sum(judged) / max(1, len(judged)), 3),
            **self.details,
        }


def task_from_pairs(pairs: Sequence[Pair], chunks: Sequence[Chunk], *, name: str = "held-out") -> RetrievalTask:
    """Held-out pairs as queries against every chunk; identical chunk texts share relevance.

    Raises :class:`EvaluationError` when there are no pairs or a pair's chunk is not
    among ``chunks``.
    """
    if not pairs:
        raise EvaluationError("the test split is empty: no held-out pairs to evaluate")
    by_id = {chunk.chunk_id: chunk for chunk in chunks}
    missing = sorted({pair.chunk_id for pair in pairs} - by_id.keys())
    if missing:
        raise EvaluationError(
            f"{len(missing)} test pair chunk id(s) are not in chunks.parquet ({len(by_id)} chunks), e.g. {missing[0]}"
        )
    copies = same_text_chunks(chunks)
    relevant: dict[str, dict[str, int]] = {}
    shared = 0
    for pair in pairs:
        same_text = copies[pair.chunk_id]
        relevant[pair.pair_id] = {chunk_id: 1 for chunk_id in same_text}
        shared += len(same_text) - 1
    return RetrievalTask(
        query_ids=[pair.pair_id for pair in pairs],
        queries=[pair.query for pair in pairs],
        corpus_ids=[chunk.chunk_id for chunk in chunks],
        corpus=[chunk.text for chunk in chunks],
        relevant=relevant,
        name=name,
        details={"duplicate_relevant": shared},
        query_styles=[pair.style for pair in pairs],
    )
