"""Reading a BEIR-format folder as a :class:`RetrievalTask`.

A BEIR folder holds ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl``
(``_id``, ``text``) and ``qrels/test.tsv`` (``query-id``, ``corpus-id``, ``score``,
with a header line). A document's text is ``title + " " + text`` as in
sentence-transformers' BEIR examples, unless the text already starts with its title.
A qrel with score ≤ 0 is a judged non-relevant document and is dropped; the rest keep
their grade. Queries that no qrel mentions (BEIR folders often ship train/dev queries
too) are skipped and counted; qrels that name unknown queries or documents are errors.

Example::

    task = load_beir(Path("../shared/benchmarks/cranfield"))
    task.counts()    # {'queries': 225, 'corpus': 1400, ...}
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from pathlib import Path

from ..artifacts import iter_jsonl
from ..errors import ArtifactError, EvaluationError
from .task import RetrievalTask


def document_text(title: str, text: str) -> str:
    """``title text``, without repeating a title that the text already starts with."""
    title, text = (title or "").strip(), (text or "").strip()
    if not title or text.lower().startswith(title.lower()):
        return text
    return f"{title} {text}".strip()


def _jsonl_texts(path: Path, *, with_title: bool) -> dict[str, str]:
    if not path.exists():
        raise EvaluationError(f"not a BEIR folder: {path} is missing")
    texts: dict[str, str] = {}
    for number, row in enumerate(iter_jsonl(path), start=1):
        if "_id" not in row:
            raise ArtifactError(f"{path} row {number}: no '_id' field")
        if row["_id"] is None or not str(row["_id"]).strip():
            raise ArtifactError(f"{path} row {number}: '_id' is empty")
        text = str(row.get("text") or "")
        text = document_text(str(row.get("title") or ""), text) if with_title else text
        if not with_title and not text.strip():  # a corpus may hold empty documents; a query cannot be empty
            raise ArtifactError(f"{path} row {number} (_id {row['_id']}): the query text is empty")
        texts[str(row["_id"])] = text
    return texts


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """``query-id -> corpus-id -> score`` from a BEIR qrels TSV (header optional)."""
    if not path.exists():
        raise EvaluationError(f"not a BEIR folder: {path} is missing")
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        line = path.read_bytes()[: error.start].count(b"\n") + 1
        raise ArtifactError(f"{path} line {line} is not UTF-8 text; save the file as UTF-8") from None
    for number, row in enumerate(csv.reader(io.StringIO(text, newline=""), delimiter="\t"), start=1):
        if not row or (number == 1 and row[0].strip().lower() in ("query-id", "query_id", "qid")):
            continue
        if len(row) < 3:
            raise ArtifactError(f"{path} line {number}: expected query-id, corpus-id, score")
        try:
            score = int(float(row[2]))
        except ValueError:
            raise ArtifactError(f"{path} line {number}: score {row[2]!r} is not a number") from None
        qrels[row[0].strip()][row[1].strip()] = score
    return dict(qrels)


def load_beir(folder: Path, *, split: str = "test") -> RetrievalTask:
    """The queries of ``qrels/<split>.tsv`` against the whole corpus, with graded relevance."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EvaluationError(f"BEIR folder not found: {folder}")
    corpus = _jsonl_texts(folder / "corpus.jsonl", with_title=True)
    queries = _jsonl_texts(folder / "queries.jsonl", with_title=False)
    qrels_path = folder / "qrels" / f"{split}.tsv"
    qrels = read_qrels(qrels_path)
    unknown_queries = sorted(qrels.keys() - queries.keys())
    if unknown_queries:
        raise EvaluationError(
            f"{len(unknown_queries)} query id(s) in {qrels_path} are not in queries.jsonl, e.g. {unknown_queries[0]}"
        )
    judged = {qid: {cid: grade for cid, grade in grades.items() if grade > 0} for qid, grades in qrels.items()}
    unknown_docs = sorted({cid for grades in judged.values() for cid in grades} - corpus.keys())
    if unknown_docs:
        raise EvaluationError(
            f"{len(unknown_docs)} corpus id(s) in {qrels_path} are not in corpus.jsonl "
            f"({len(corpus)} documents), e.g. {unknown_docs[0]}"
        )
    query_ids = [qid for qid in queries if judged.get(qid)]
    if not query_ids:
        raise EvaluationError(f"no query in {qrels_path} has a relevant document (score > 0)")
    return RetrievalTask(
        query_ids=query_ids,
        queries=[queries[qid] for qid in query_ids],
        corpus_ids=list(corpus),
        corpus=list(corpus.values()),
        relevant={qid: judged[qid] for qid in query_ids},
        name=folder.name,
        details={
            "queries_without_qrels": len(queries) - len(query_ids),
            "judged_not_relevant": sum(len(g) for g in qrels.values()) - sum(len(g) for g in judged.values()),
        },
    )
