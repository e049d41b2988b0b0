"""A retrieval task from real queries (:mod:`domainfit.queries`): every chunk, judged by document.

The corpus is the run's chunks, each encoded once; a query's ranking is over
documents, each scored by its best chunk (see :mod:`.pooling`).

Example::

    queries = load_queries(Path("queries.jsonl"))
    task, unknown = task_from_queries(queries, read_chunks(run.chunks), source="queries.jsonl")
    task.counts()       # {'queries': 225, 'corpus': 1400, 'chunks': 2011, ...}
"""

from __future__ import annotations

from typing import Sequence

from ..artifacts import Chunk
from ..queries import RealQuery, UnknownPaths, judge_by_document
from .task import RetrievalTask


def task_from_queries(
    queries: Sequence[RealQuery], chunks: Sequence[Chunk], *, source: str = "queries", name: str = "real queries"
) -> tuple[RetrievalTask, UnknownPaths]:
    """Queries against every chunk, judged by document (``chunk.source``), and the unknown paths.

    Raises :class:`~domainfit.queries.QueriesError` when no query has a relevant
    document among the chunks.
    """
    judged = judge_by_document(queries, chunks, source=source)
    position = {doc: index for index, doc in enumerate(judged.documents)}
    task = RetrievalTask(
        query_ids=[query.query_id for query in judged.queries],
        queries=[query.query for query in judged.queries],
        corpus_ids=[chunk.chunk_id for chunk in chunks],
        corpus=[chunk.text for chunk in chunks],
        relevant=judged.relevant,
        name=name,
        document_ids=judged.documents,
        document_of=[position[chunk.source] for chunk in chunks],
    )
    return task, judged.unknown
