"""synth.max_chunks takes a trial's chunks round-robin over documents."""

from domainfit.artifacts import Chunk
from domainfit.synth.stage import spread_across_documents


def chunk(doc: str, n: int) -> Chunk:
    return Chunk(chunk_id=f"{doc}{n}", doc_id=doc, source=f"{doc}.md", text="t", char_start=0, char_end=1, n_tokens=1)


def test_every_document_is_covered_before_any_gets_a_second_chunk():
    chunks = [chunk("a", 0), chunk("a", 1), chunk("a", 2), chunk("b", 0), chunk("c", 0), chunk("c", 1)]
    assert [c.chunk_id for c in spread_across_documents(chunks, 4)] == ["a0", "b0", "c0", "a1"]


def test_a_limit_above_the_count_returns_everything_once():
    chunks = [chunk("a", 0), chunk("b", 0), chunk("a", 1)]
    assert sorted(c.chunk_id for c in spread_across_documents(chunks, 10)) == ["a0", "a1", "b0"]
