"""Real queries from a JSONL file: the evidence a user trusts more than generated questions.

Shared by the stages that measure on them (``eval``, ``rerank``) and the pipeline's
early check; it only reads the file and matches its paths to the run's documents.

One JSON object per line::

    {"query": "how is heat transfer affected by a blunt nose?", "relevant": ["aero/0012.txt", "aero/0140.txt"]}

``query`` is the text a person would search with; ``relevant`` lists the documents
that answer it, as paths relative to the document folder (the ``source`` of the
run's chunks). An optional ``id`` (string or number) names the query in the
results; otherwise it is ``line-N``. Relevance is by document: a document ranks by
its best chunk (see :mod:`domainfit.evaluate.pooling`). These queries are only ever
evaluated on, never trained on: only ``eval`` and ``rerank`` read this file.

A malformed line is an error naming the file and the line. A relevant path that is
not among the run's documents (a typo, or a file the run did not read) is dropped
and counted; a query left with no known document is dropped and counted; both
counts are reported as a warning, in ``metrics.json`` and in ``report.md``. Only
when no query is left is it an error.

Example::

    queries = load_queries(Path("queries.jsonl"))
    judged = judge_by_document(queries, read_chunks(run.chunks), source="queries.jsonl")
    len(judged.queries), judged.documents[:2]     # (225, ['0001.txt', '0002.txt'])
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Sequence

from .artifacts import Chunk
from .errors import EvaluationError

_KEYS = {"query", "relevant", "id"}


class QueriesError(EvaluationError):
    """A queries file that cannot be read, or that names none of the run's documents."""


@dataclass(frozen=True)
class RealQuery:
    """One line of a queries file: its id, text and relevant document paths (normalised)."""

    query_id: str
    query: str
    relevant: tuple[str, ...]
    line: int


@dataclass
class UnknownPaths:
    """Relevant paths of a queries file that name no document of the run."""

    paths: list[str] = field(default_factory=list)
    judgements: int = 0
    dropped_queries: int = 0

    def __bool__(self) -> bool:
        return bool(self.paths)

    def as_dict(self) -> dict[str, Any]:
        return {"paths": len(self.paths), "judgements": self.judgements, "dropped_queries": self.dropped_queries,
                "examples": self.paths[:5]}

    def warning(self, source: str, n_documents: int) -> str:
        """One line for the terminal and the report."""
        return (
            f"{source}: {len(self.paths)} relevant path(s) are not among the run's {n_documents} documents "
            f"(e.g. {self.paths[0]!r}); {self.judgements} judgement(s) dropped, "
            f"{self.dropped_queries} quer{'y' if self.dropped_queries == 1 else 'ies'} left with none and skipped"
        )


def normalize_path(path: str) -> str:
    """A relevant path as chunks store ``source``: posix, without ``./`` or a leading slash-dot."""
    return PurePosixPath(path.strip().replace("\\", "/")).as_posix().removeprefix("./")


def _fail(path: Path, number: int, message: str) -> QueriesError:
    return QueriesError(f"{path} line {number}: {message}")


def parse_query_line(text: str, path: Path, number: int) -> RealQuery | None:
    """One line of a queries file; ``None`` for a blank line; a bad line raises a one-line error."""
    if not text.strip():
        return None
    try:
        row = json.loads(text)
    except json.JSONDecodeError as error:
        raise _fail(path, number, f"not valid JSON ({error.msg})") from None
    if not isinstance(row, dict):
        raise _fail(path, number, 'expected an object like {"query": "...", "relevant": ["doc.txt"]}')
    extra = sorted(set(row) - _KEYS)
    if extra:
        raise _fail(path, number, f"unknown key {extra[0]!r} (allowed: query, relevant, id)")
    query = row.get("query")
    if not isinstance(query, str) or not query.strip():
        raise _fail(path, number, "'query' must be a non-empty string")
    relevant = row.get("relevant")
    if isinstance(relevant, str):
        relevant = [relevant]
    if not isinstance(relevant, list) or not relevant:
        raise _fail(path, number, "'relevant' must be a non-empty list of document paths")
    if not all(isinstance(item, str) and item.strip() for item in relevant):
        raise _fail(path, number, "every 'relevant' entry must be a non-empty path string")
    query_id = row.get("id", f"line-{number}")
    if isinstance(query_id, bool) or not isinstance(query_id, (str, int)) or not str(query_id).strip():
        raise _fail(path, number, "'id' must be a non-empty string or a number")
    paths = tuple(dict.fromkeys(normalize_path(item) for item in relevant))
    return RealQuery(str(query_id).strip(), query.strip(), paths, number)


def load_queries(path: str | Path) -> list[RealQuery]:
    """Every query of a JSONL queries file (format in the module doc); errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise QueriesError(f"queries file not found: {path}")
    queries: list[RealQuery] = []
    seen: dict[str, int] = {}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            query = parse_query_line(line, path, number)
            if query is None:
                continue
            if query.query_id in seen:
                raise _fail(path, number, f"id {query.query_id!r} is also on line {seen[query.query_id]}")
            seen[query.query_id] = number
            queries.append(query)
    if not queries:
        raise QueriesError(f"{path} has no queries: one JSON object per line, "
                              '{"query": "...", "relevant": ["path/relative/to/DOCS"]}')
    return queries


@dataclass
class JudgedQueries:
    """The queries that name a document of the run, their relevant documents, and what was dropped."""

    queries: list[RealQuery]
    relevant: dict[str, dict[str, int]]
    documents: list[str]
    unknown: UnknownPaths


def judge_by_document(queries: Sequence[RealQuery], chunks: Sequence[Chunk], *, source: str = "queries") -> JudgedQueries:
    """Keep the queries with a relevant document among ``chunks``' sources; count the rest.

    ``documents`` is every source in ascending order (the tie-break of equal scores).
    Raises :class:`QueriesError` when no query names a document of the run.
    """
    documents = sorted({chunk.source for chunk in chunks})
    known = set(documents)
    unknown = UnknownPaths()
    missing: dict[str, None] = {}
    kept: list[RealQuery] = []
    relevant: dict[str, dict[str, int]] = {}
    for query in queries:
        found = [doc for doc in query.relevant if doc in known]
        for doc in query.relevant:
            if doc not in known:
                missing.setdefault(doc)
                unknown.judgements += 1
        if not found:
            unknown.dropped_queries += 1
            continue
        kept.append(query)
        relevant[query.query_id] = {doc: 1 for doc in found}
    unknown.paths = list(missing)
    if not kept:
        example = unknown.paths[0] if unknown.paths else "?"
        raise QueriesError(
            f"{source}: none of the {len(queries)} queries names a document of the run "
            f"({len(documents)} documents, e.g. {documents[0] if documents else 'none'!r}; the file names "
            f"{example!r}): paths must be relative to the document folder"
        )
    return JudgedQueries(kept, relevant, documents, unknown)
