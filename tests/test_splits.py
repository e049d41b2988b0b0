"""Splits: every pair assigned once, deterministic by seed, and never leaking a test
chunk (or its text) into training — checked on random pair sets with hypothesis."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domainfit.artifacts import Chunk, Pair, RunDir, normalize_text, write_chunks, write_jsonl
from domainfit.config import SplitConfig
from domainfit.errors import SplitError
from domainfit.splits import (
    SPLIT_NAMES,
    ensure_splits,
    leaked_chunks,
    make_splits,
    read_splits,
    write_splits,
)


def _chunk(chunk_id: str, doc_id: str, text: str) -> Chunk:
    return Chunk(chunk_id=chunk_id, doc_id=doc_id, source=f"{doc_id}.txt", text=text, char_start=0,
                 char_end=len(text), n_tokens=len(text.split()))


@st.composite
def pair_sets(draw):
    """Documents with chunks whose texts repeat across documents (boilerplate), and pairs on them."""
    n_docs = draw(st.integers(2, 8))
    texts = draw(st.lists(st.sampled_from(["alpha", "beta", "Beta ", "gamma", "delta", "eps", "zeta"]),
                          min_size=2, max_size=24))
    chunks = [_chunk(f"c{i}", f"doc{draw(st.integers(0, n_docs - 1))}", text) for i, text in enumerate(texts)]
    picks = draw(st.lists(st.integers(0, len(chunks) - 1), min_size=2, max_size=60))
    pairs = [Pair(pair_id=f"p{n}", chunk_id=chunks[i].chunk_id, query=f"question {n}") for n, i in enumerate(picks)]
    return pairs, chunks


def _positive_texts(ids, pairs, chunks):
    text_of = {c.chunk_id: normalize_text(c.text) for c in chunks}
    chunk_of = {p.pair_id: p.chunk_id for p in pairs}
    return {text_of[chunk_of[pid]] for pid in ids}, {chunk_of[pid] for pid in ids}


def _split_or_none(pairs, chunks, config):
    try:
        return make_splits(pairs, chunks, config)
    except SplitError as error:
        assert "belong to one" in str(error)  # too few units is the only acceptable refusal
        return None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=pair_sets(), by=st.sampled_from(["document", "chunk"]), seed=st.integers(0, 2**16),
       test_fraction=st.floats(0.1, 0.5), val_fraction=st.floats(0.0, 0.4))
def test_by_document_and_by_chunk_never_leak(data, by, seed, test_fraction, val_fraction):
    pairs, chunks = data
    config = SplitConfig(by=by, seed=seed, test_fraction=test_fraction, val_fraction=val_fraction)
    splits = _split_or_none(pairs, chunks, config)
    if splits is None:
        return
    every = splits.train + splits.val + splits.test
    assert sorted(every) == sorted(p.pair_id for p in pairs)  # each pair exactly once
    assert splits.test and splits.train
    test_texts, test_ids = _positive_texts(splits.test, pairs, chunks)
    train_texts, train_ids = _positive_texts(splits.train + splits.val, pairs, chunks)
    assert not test_texts & train_texts and not test_ids & train_ids
    val_texts, _ = _positive_texts(splits.val, pairs, chunks)
    train_only, _ = _positive_texts(splits.train, pairs, chunks)
    assert not val_texts & train_only  # validation is carved from train the same way
    assert not splits.optimistic and leaked_chunks(splits, pairs, chunks) == []
    if by == "document":
        doc_of = {c.chunk_id: c.doc_id for c in chunks}
        chunk_of = {p.pair_id: p.chunk_id for p in pairs}
        test_docs = {doc_of[chunk_of[pid]] for pid in splits.test}
        assert not test_docs & {doc_of[chunk_of[pid]] for pid in splits.train + splits.val}
    again = make_splits(pairs, chunks, config)
    assert (again.train, again.val, again.test) == (splits.train, splits.val, splits.test)


@settings(max_examples=100, deadline=None)
@given(data=pair_sets(), seed=st.integers(0, 2**16))
def test_by_query_is_flagged_optimistic_exactly_when_it_leaks(data, seed):
    pairs, chunks = data
    splits = _split_or_none(pairs, chunks, SplitConfig(by="query", seed=seed))
    if splits is None:
        return
    assert sorted(splits.train + splits.val + splits.test) == sorted(p.pair_id for p in pairs)
    test_texts, _ = _positive_texts(splits.test, pairs, chunks)
    train_texts, _ = _positive_texts(splits.train + splits.val, pairs, chunks)
    assert splits.optimistic == bool(test_texts & train_texts)


def test_documents_sharing_a_chunk_text_stay_together():
    chunks = [_chunk("a1", "A", "same boilerplate"), _chunk("b1", "B", "Same  boilerplate"),
              _chunk("c1", "C", "other"), _chunk("d1", "D", "more")]
    pairs = [Pair(pair_id=f"p{i}", chunk_id=c.chunk_id, query=f"q{i}") for i, c in enumerate(chunks)]
    for seed in range(20):
        splits = make_splits(pairs, chunks, SplitConfig(seed=seed, test_fraction=0.25, val_fraction=0))
        together = {name for name in SPLIT_NAMES for pid in splits.ids(name) if pid in ("p0", "p1")}
        assert len(together) == 1


def test_different_seeds_give_different_splits():
    chunks = [_chunk(f"c{i}", f"doc{i}", f"text {i}") for i in range(30)]
    pairs = [Pair(pair_id=f"p{i}", chunk_id=f"c{i}", query=f"q{i}") for i in range(30)]
    tests = {tuple(make_splits(pairs, chunks, SplitConfig(seed=seed)).test) for seed in range(5)}
    assert len(tests) > 1


def _run_with(tmp_path, n=20) -> tuple[RunDir, list[Pair], list[Chunk]]:
    run = RunDir(tmp_path / "run").ensure()
    chunks = [_chunk(f"c{i}", f"doc{i % 7}", f"text number {i}") for i in range(n)]
    pairs = [Pair(pair_id=f"p{i}", chunk_id=f"c{i}", query=f"question {i}") for i in range(n)]
    write_chunks(run.chunks, chunks)
    write_jsonl(run.pairs, pairs)
    return run, pairs, chunks


def test_written_splits_read_back_and_are_not_remade(tmp_path):
    run, pairs, chunks = _run_with(tmp_path)
    made = ensure_splits(run, SplitConfig())
    assert all(run.split_file(name).exists() for name in SPLIT_NAMES)
    read = read_splits(run)
    assert (read.train, read.val, read.test, read.by, read.seed) == (made.train, made.val, made.test, "document", 42)
    assert ensure_splits(run, SplitConfig()).test == made.test


def test_a_changed_split_config_is_refused_not_silently_used(tmp_path):
    run, _, _ = _run_with(tmp_path)
    ensure_splits(run, SplitConfig(by="document"))
    with pytest.raises(SplitError, match="split.by = 'document'.*'chunk'"):
        ensure_splits(run, SplitConfig(by="chunk"))


def test_by_query_records_its_leaks(tmp_path):
    run, pairs, chunks = _run_with(tmp_path)
    doubled = pairs + [Pair(pair_id=f"x{i}", chunk_id=f"c{i}", query=f"again {i}") for i in range(20)]
    splits = make_splits(doubled, chunks, SplitConfig(by="query", seed=1))
    assert splits.optimistic
    write_splits(run, splits, doubled)
    assert read_splits(run).leaked_chunks == splits.leaked_chunks


def test_a_single_document_cannot_be_split_by_document(tmp_path):
    chunks = [_chunk(f"c{i}", "only", f"t{i}") for i in range(5)]
    pairs = [Pair(pair_id=f"p{i}", chunk_id=f"c{i}", query="q") for i in range(5)]
    with pytest.raises(SplitError, match="all 5 pairs belong to one document"):
        make_splits(pairs, chunks, SplitConfig())
    assert make_splits(pairs, chunks, SplitConfig(by="chunk")).test
