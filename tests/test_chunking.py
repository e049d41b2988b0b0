"""Token-aware chunking with the real MiniLM tokenizer, on the sample documents."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from domainfit.artifacts import Chunk
from domainfit.config import SynthConfig
from domainfit.synth.chunking import (
    chunk_document,
    chunk_documents,
    count_tokens,
    is_boilerplate,
    is_llm_eligible,
    load_tokenizer,
    split_sentences,
)
from domainfit.synth.documents import Document, load_documents

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer("minilm")


@pytest.fixture(scope="module")
def documents() -> list[Document]:
    return load_documents(SAMPLE, SynthConfig()).documents


@pytest.fixture(scope="module")
def chunks(documents, tokenizer) -> list[Chunk]:
    return chunk_documents(documents, tokenizer, SynthConfig())


def hf_count(tokenizer, text: str) -> int:
    """The token count as the tokenizer itself reports it (the independent measure)."""
    return len(tokenizer(text, add_special_tokens=False, truncation=False, verbose=False)["input_ids"])


def make_document(text: str, source: str = "doc.txt") -> Document:
    return Document(doc_id="d" + source, source=source, text=text, format="txt")


def by_document(chunks: list[Chunk]) -> dict[str, list[Chunk]]:
    grouped: dict[str, list[Chunk]] = {}
    for chunk in chunks:
        grouped.setdefault(chunk.doc_id, []).append(chunk)
    return grouped


def test_chunks_never_exceed_the_cap_measured_by_the_tokenizer(chunks, tokenizer):
    assert len(chunks) > 50
    for chunk in chunks:
        assert chunk.n_tokens == hf_count(tokenizer, chunk.text)
        assert chunk.n_tokens <= 200
    # packing is greedy, so most chunks come close to the cap
    assert sorted(c.n_tokens for c in chunks)[len(chunks) // 2] >= 140


@pytest.mark.parametrize("cap, overlap", [(32, 8), (64, 0), (120, 40)])
def test_smaller_caps_hold_too(documents, tokenizer, cap, overlap):
    config = SynthConfig(chunk_max_tokens=cap, chunk_overlap_tokens=overlap, min_chunk_tokens=4)
    for chunk in chunk_documents(documents[:4], tokenizer, config):
        assert hf_count(tokenizer, chunk.text) <= cap


def test_spans_are_exact_and_cover_every_document(chunks, documents):
    texts = {document.doc_id: document.text for document in documents}
    for doc_id, doc_chunks in by_document(chunks).items():
        text = texts[doc_id]
        covered = [False] * len(text)
        for chunk in doc_chunks:
            assert chunk.text == text[chunk.char_start : chunk.char_end] == chunk.text.strip()
            for index in range(chunk.char_start, chunk.char_end):
                covered[index] = True
        missing = "".join(char for char, hit in zip(text, covered) if not hit)
        assert missing.strip() == ""


def test_adjacent_chunks_overlap_by_whole_sentences(chunks, documents):
    texts = {document.doc_id: document.text for document in documents}
    pairs = [(a, b) for doc_chunks in by_document(chunks).values() for a, b in zip(doc_chunks, doc_chunks[1:])]
    overlapping = [(a, b) for a, b in pairs if b.char_start < a.char_end]
    assert len(overlapping) >= 0.7 * len(pairs)
    for a, b in overlapping:
        text = texts[a.doc_id]
        shared = text[b.char_start : a.char_end]
        assert a.text.endswith(shared) and b.text.startswith(shared)
        # the shared part starts at a sentence or line start
        assert b.char_start == 0 or text[b.char_start - 1].isspace()
        assert b.char_start > a.char_start


def test_overlap_is_bounded_by_the_budget(documents, tokenizer):
    config = SynthConfig(chunk_max_tokens=100, chunk_overlap_tokens=20)
    for doc_chunks in by_document(chunk_documents(documents, tokenizer, config)).values():
        for a, b in zip(doc_chunks, doc_chunks[1:]):
            if b.char_start < a.char_end:
                text = a.text[b.char_start - a.char_start :]
                assert hf_count(tokenizer, text) <= 20


def test_ids_are_stable_across_runs(documents, chunks):
    again = chunk_documents(load_documents(SAMPLE, SynthConfig()).documents, load_tokenizer("minilm"), SynthConfig())
    assert [c.model_dump() for c in again] == [c.model_dump() for c in chunks]
    assert len({c.chunk_id for c in chunks}) == len(chunks)


def test_a_changed_document_changes_only_its_own_chunk_ids(tmp_path, tokenizer, chunks):
    folder = tmp_path / "docs"
    shutil.copytree(SAMPLE, folder)
    path = folder / "company-overview.md"
    path.write_text(path.read_text(encoding="utf-8").replace("342 people", "350 people"), encoding="utf-8")
    changed = chunk_documents(load_documents(folder, SynthConfig()).documents, tokenizer, SynthConfig())
    before = {c.chunk_id: c.source for c in chunks}
    after = {c.chunk_id: c.source for c in changed}
    gone = {before[i] for i in set(before) - set(after)}
    new = {after[i] for i in set(after) - set(before)}
    assert gone == new == {"company-overview.md"}
    kept = [i for i in before if before[i] == "company-overview.md" and i in after]
    assert kept, "chunks away from the edit keep their ids"


def test_paragraph_break_is_preferred_to_a_sentence_break(tokenizer):
    first = " ".join(f"Sentence {n} of the opening paragraph talks about turbines." for n in range(8))
    second = " ".join(f"Sentence {n} of the second paragraph covers the warranty." for n in range(8))
    document = make_document(f"{first}\n\n{second}")
    config = SynthConfig(chunk_max_tokens=120, chunk_overlap_tokens=0)
    assert hf_count(tokenizer, first) < 120 < hf_count(tokenizer, document.text)
    result = chunk_document(document, tokenizer, config)
    assert result[0].text == first
    assert result[1].text.startswith("Sentence 0 of the second paragraph")


def test_a_sentence_longer_than_the_cap_is_split_by_tokens(tokenizer):
    words = " ".join(f"word{n}" for n in range(400))
    document = make_document(f"Intro sentence here.\n\n{words}\n\nClosing sentence.")
    config = SynthConfig(chunk_max_tokens=50, chunk_overlap_tokens=10)
    result = chunk_document(document, tokenizer, config)
    assert len(result) > 10
    for chunk in result:
        assert hf_count(tokenizer, chunk.text) <= 50
        assert chunk.text == document.text[chunk.char_start : chunk.char_end]
        # windows are cut before a word, never inside one
        assert document.text[chunk.char_start - 1 : chunk.char_start].strip() == ""
    assert any(b.char_start < a.char_end for a, b in zip(result, result[1:]))
    assert result[-1].text.endswith("Closing sentence.")


def test_non_additive_tokenizer_still_respects_the_cap():
    """A tokenizer that counts spaces as tokens: sentence counts do not add up to chunk counts."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Split(" ", behavior="isolated")
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="[UNK]")
    text = " ".join(f"Short sentence {n}." for n in range(60))
    config = SynthConfig(chunk_max_tokens=30, chunk_overlap_tokens=6, min_chunk_tokens=1)
    result = chunk_document(make_document(text), tokenizer, config)
    assert all(hf_count(tokenizer, c.text) == c.n_tokens <= 30 for c in result)
    assert result[-1].text.endswith("Short sentence 59.")


def test_repeated_text_in_a_document_gives_one_chunk():
    tokenizer = load_tokenizer("minilm")
    block = " ".join(f"Repeated boilerplate sentence number {n} for the footer." for n in range(12))
    document = make_document(f"{block}\n\n{block}\n\n{block}")
    result = chunk_document(document, tokenizer, SynthConfig(chunk_max_tokens=150, chunk_overlap_tokens=0))
    assert len({c.chunk_id for c in result}) == len(result)
    assert len(result) < 3


def test_count_tokens_is_not_truncated(tokenizer):
    text = "turbine " * 700
    assert count_tokens(tokenizer, [text, "a b"]) == [700, 2]
    assert count_tokens(tokenizer, "How long is the warranty?") == [hf_count(tokenizer, "How long is the warranty?")]


def test_split_sentences_spans():
    text = "One. Two!\nThree? “Four.” Five\n\n  Six 3.5 m. Seven"
    spans = [(text[s:e], first) for s, e, first in split_sentences(text)]
    assert spans == [
        ("One.", True),
        ("Two!", False),
        ("Three?", False),
        ("“Four.”", False),
        ("Five", False),
        ("Six 3.5 m.", True),
        ("Seven", False),
    ]


def test_tiny_and_boilerplate_chunks_are_not_sent_to_the_llm(tokenizer):
    config = SynthConfig()
    tiny = chunk_document(make_document("Contact us."), tokenizer, config)
    assert len(tiny) == 1 and not is_llm_eligible(tiny[0], config)
    footer = (
        "© 2024 Northwind Hydro Ltd. All rights reserved. Registered in England and Wales.\n"
        "Privacy notice | Cookie settings | Terms of use | Sign in | Subscribe to our newsletter\n"
        "Page 3 of 12"
    )
    chunk = chunk_document(make_document(footer), tokenizer, config)[0]
    assert chunk.n_tokens >= config.min_chunk_tokens and not is_llm_eligible(chunk, config)
    numbers = chunk_document(make_document(" ".join(f"{n}.{n * 7} | {n * 3}%" for n in range(30))), tokenizer, config)
    assert not is_llm_eligible(numbers[0], config)


def test_real_content_is_eligible(chunks):
    config = SynthConfig()
    eligible = [c for c in chunks if is_llm_eligible(c, config)]
    assert len(eligible) >= 0.9 * len(chunks)
    assert not is_boilerplate("Clean the intake screen, then acknowledge the alarm on the NCX-400 front panel.")


def test_a_megabyte_document_chunks_in_seconds(documents, tokenizer):
    paragraphs = [p for document in documents for p in document.text.split("\n\n")]
    copies = 1_000_000 // sum(len(p) + 2 for p in paragraphs) + 1
    big = make_document("\n\n".join(f"{p} (copy {n})" for n in range(copies) for p in paragraphs))
    started = time.perf_counter()
    result = chunk_document(big, tokenizer, SynthConfig())
    seconds = time.perf_counter() - started
    assert len(big.text) > 1_000_000 and len(result) > 1000
    assert seconds < 20, f"chunking 1 MB took {seconds:.1f}s"
