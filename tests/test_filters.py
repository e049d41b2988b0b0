"""The question checks: one table per reason, properties where they are natural."""

from __future__ import annotations

import time
import zlib

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from domainfit.artifacts import Chunk
from domainfit.config import SynthConfig
from domainfit.synth.filters import (
    REASONS,
    DuplicateFilter,
    RoundTripChecker,
    check_grounded,
    check_not_copy,
    check_pair,
    check_well_formed,
    copy_overlap,
    grounding_ratio,
    normalize,
)

CHUNK = (
    "E415 means the controller estimates that the intake screen is blocked, because the head loss "
    "between the forebay level and the penstock pressure is above the threshold (0.35 m by default). "
    "Clean the intake screen, then acknowledge the alarm on the NCX-400 front panel."
)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("  What is  the FLOW rate? ", "what is the flow rate"),
        ("“Quoted.”", "quoted"),
        ("Straße\u00a0\tGRÖSSE", "strasse grösse"),
        ("ﬁle №5…", "file no5"),
        ("...", ""),
        ("E415 (0.35 m)", "e415 (0.35 m"),
    ],
)
def test_normalize(raw, expected):
    assert normalize(raw) == expected


@given(st.text())
def test_normalize_is_idempotent(text):
    assert normalize(normalize(text)) == normalize(text)


# --------------------------------------------------------------------------- grounded


@pytest.mark.parametrize(
    "evidence, reason",
    [
        ("the intake screen is blocked", None),
        ("THE INTAKE   screen is\nblocked.", None),
        ("Clean the intake screen, then acknowledge the alarm", None),
        ("the intake screne is blokced", None),  # near-verbatim: typos pass the fuzzy ratio
        ("E415 means the controller ... above the threshold", None),
        ("the turbine runs at 600 rpm in winter", "ungrounded"),
        ("E415 means the controller ... shuts the main inlet valve", "ungrounded"),
        (CHUNK + " It also sends an SMS to the owner, the insurer and the grid operator, and logs the event.",
         "ungrounded"),
        ("", "missing_evidence"),
        ("  ...  ", "missing_evidence"),
    ],
)
def test_check_grounded(evidence, reason):
    assert check_grounded(evidence, CHUNK, 0.85) == reason


def test_grounding_threshold_is_the_config_value():
    evidence = "the intake screen is clogged"
    ratio = grounding_ratio(evidence, CHUNK)
    assert 0.5 < ratio < 1
    assert check_grounded(evidence, CHUNK, ratio) is None
    assert check_grounded(evidence, CHUNK, min(1.0, ratio + 0.01)) == "ungrounded"


@given(st.text(min_size=1, max_size=300), st.data())
def test_any_exact_substring_of_the_chunk_is_grounded(chunk_text, data):
    start = data.draw(st.integers(0, len(chunk_text) - 1))
    end = data.draw(st.integers(start + 1, len(chunk_text)))
    evidence = chunk_text[start:end]
    if normalize(evidence):
        assert check_grounded(evidence, chunk_text, 1.0) is None
    else:
        assert check_grounded(evidence, chunk_text, 1.0) == "missing_evidence"


@given(st.text(max_size=80), st.text(max_size=200))
def test_grounding_ratio_is_a_share(evidence, chunk_text):
    assert 0.0 <= grounding_ratio(evidence, chunk_text) <= 1.0


# --------------------------------------------------------------------------- not a copy


@pytest.mark.parametrize(
    "question, reason",
    [
        ("What should an operator do when the controller raises E415?", None),
        ("Why might alarm E415 come back after cleaning?", None),
        ("Does E415 mean the controller estimates that the intake screen is blocked?", "copy"),
        ("Clean the intake screen, then acknowledge the alarm on the NCX-400 front panel?", "copy"),
        ("E415 means?", "copy"),  # shorter than n words and verbatim in the chunk
        ("Intake screen?", "copy"),
        ("Screen intake?", None),
    ],
)
def test_check_not_copy(question, reason):
    assert check_not_copy(question, CHUNK, 5, 0.5) == reason


def test_copy_overlap_values():
    assert copy_overlap("the head loss between the forebay level", CHUNK, 5) == 1.0
    assert copy_overlap("Where is the turbine installed today?", CHUNK, 5) == 0.0
    assert copy_overlap("", CHUNK, 5) == 0.0


@given(st.lists(st.sampled_from("alpha beta gamma delta epsilon zeta eta theta".split()), min_size=1, max_size=30))
def test_copy_overlap_is_a_share_and_a_verbatim_question_is_a_copy(words):
    chunk_text = " ".join(words)
    assert copy_overlap(chunk_text + "?", chunk_text, 3) == 1.0
    assert check_not_copy(chunk_text + "?", chunk_text, 3, 0.99) == "copy"
    assert 0.0 <= copy_overlap("gamma beta alpha zeta", chunk_text, 3) <= 1.0


# --------------------------------------------------------------------------- well-formed


@pytest.mark.parametrize(
    "question, n_tokens, reason",
    [
        ("How long is the warranty on a new turbine?", 10, None),
        ("Which firmware version introduced alarm E415?", 9, None),
        ("Describe how to reset the controller after E415", 9, None),
        ("The warranty lasts 24 months?", 7, None),
        ("Isn't the warranty longer for controllers", 8, None),
        ("I have alarm E415 on my NCX-400, what should I do?", 14, None),
        ("", 0, "empty"),
        ("   \n ", 0, "empty"),
        ("???", 3, "empty"),
        ("What does [...] mean?", 6, "placeholder"),
        ("What is <question>?", 5, "placeholder"),
        ("What is XXX used for?", 6, "placeholder"),
        ("Lorem ipsum dolor sit amet?", 8, "placeholder"),
        ("What does {chunk} say about alarms?", 9, "placeholder"),
        ("Who signs the ____ certificate?", 7, "placeholder"),
        ("Here are three questions about the text:", 8, "preamble"),
        ("Sure! What is alarm E415?", 7, "preamble"),
        ("Question 1: What is alarm E415?", 9, "preamble"),
        ("Q2) What is alarm E415?", 8, "preamble"),
        ("1. What is alarm E415?", 7, "preamble"),
        ("As an AI, I cannot know the threshold?", 10, "preamble"),
        ("Why?", 2, "too_short"),
        ("What " + "very " * 70 + "long question is this?", 75, "too_long"),
        ("The controller shows alarm E415.", 7, "not_a_question"),
        ("Clean the intake screen and acknowledge", 7, "not_a_question"),
    ],
)
def test_check_well_formed(question, n_tokens, reason):
    assert check_well_formed(question, n_tokens, 4, 64) == reason


def test_every_reason_code_is_listed():
    assert {"empty", "placeholder", "preamble", "too_short", "too_long", "not_a_question", "missing_evidence",
            "ungrounded", "copy", "duplicate", "near_duplicate", "roundtrip_miss"} == set(REASONS)


# --------------------------------------------------------------------------- pair


@pytest.mark.parametrize(
    "question, evidence, n_tokens, reason",
    [
        ("What should an operator do when E415 appears?", "Clean the intake screen", 10, None),
        ("Here is a question: what is E415?", "Clean the intake screen", 10, "preamble"),
        ("What should an operator do when E415 appears?", "Replace the runner", 10, "ungrounded"),
        ("Should you clean the intake screen, then acknowledge the alarm?", "Clean the intake screen", 12, "copy"),
        # well-formed is checked before grounding, grounding before copying
        ("Clean the intake screen, then acknowledge the alarm on the NCX-400.", "invented", 14, "not_a_question"),
        ("Should you clean the intake screen, then acknowledge the alarm?", "invented", 12, "ungrounded"),
    ],
)
def test_check_pair_runs_the_checks_in_order(question, evidence, n_tokens, reason):
    assert check_pair(question, evidence, CHUNK, n_tokens, SynthConfig()) == reason


def test_check_pair_reads_its_thresholds_from_the_config():
    question = "What should an operator do when E415 appears?"
    assert check_pair(question, "Clean the intake screen", CHUNK, 10, SynthConfig()) is None
    strict = SynthConfig(question_max_tokens=8)
    assert check_pair(question, "Clean the intake screen", CHUNK, 10, strict) == "too_long"
    loose = SynthConfig(grounding_min_ratio=0.3)
    assert check_pair(question, "Replace the runner", CHUNK, 10, loose) is None


# --------------------------------------------------------------------------- duplicates


def bag_of_words(texts: list[str]) -> np.ndarray:
    """A deterministic hashing encoder: the same word bag gives the same vector."""
    vectors = np.zeros((len(texts), 256), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in normalize(text).split():
            vectors[row, zlib.crc32(word.encode()) % 256] += 1.0
    return vectors


def seeded_vectors(texts: list[str]) -> np.ndarray:
    """One pseudo-random 128-d vector per normalised text: distinct texts are far apart."""
    return np.stack(
        [np.random.default_rng(zlib.crc32(normalize(text).encode())).standard_normal(128) for text in texts]
    ).astype(np.float32)


def test_exact_duplicates_after_normalisation():
    duplicates = DuplicateFilter(None, 0.95)
    assert duplicates.check("How long is the warranty?") is None
    duplicates.add("How long is the warranty?")
    assert duplicates.check("  how long is THE warranty ") == "duplicate"
    assert duplicates.check("How long is the guarantee?") is None
    assert len(duplicates) == 1


def test_near_duplicates_with_the_real_base_model():
    from domainfit.models import load_model

    model = load_model("minilm")
    duplicates = DuplicateFilter(model.encode, 0.95)
    duplicates.add("How long is the warranty on a new turbine?")
    assert duplicates.check("How long is the warranty for a new turbine?") == "near_duplicate"
    assert duplicates.check("Who founded Northwind Hydro?") is None
    duplicates.add("Who founded Northwind Hydro?")  # within one chunk: the second question sees the first
    assert duplicates.check("Who was the founder of Northwind Hydro?") == "near_duplicate"


def test_add_many_preloads_questions_on_resume():
    duplicates = DuplicateFilter(bag_of_words, 0.95)
    duplicates.add_many(["What is alarm E415?", "what is alarm e415", "Who founded the company?"])
    assert len(duplicates) == 2
    assert duplicates.check("What is alarm E415") == "duplicate"
    assert duplicates.check("Who founded company the?") == "near_duplicate"
    assert duplicates.check("Where is the Carnforth works?") is None


def test_ten_thousand_questions_stay_fast():
    duplicates = DuplicateFilter(seeded_vectors, 0.9)
    accepted = [f"What is the value of setting number {n} on controller {n % 97}?" for n in range(10_000)]
    duplicates.add_many(accepted)
    assert len(duplicates) == 10_000
    started = time.perf_counter()
    for n in range(10_000, 10_500):  # the matrix keeps growing one row at a time
        question = f"What is the value of setting number {n} on controller {n % 97}?"
        assert duplicates.check(question) is None
        duplicates.add(question)
    seconds = time.perf_counter() - started
    assert duplicates.check(accepted[17].upper()) == "duplicate"
    assert seconds < 10, f"500 checks against 10k questions took {seconds:.1f}s"


@settings(max_examples=50)
@given(st.text(alphabet=st.characters(categories=["L", "N"]), min_size=1, max_size=30))
def test_a_remembered_question_is_a_duplicate_in_any_case_or_spacing(word):
    duplicates = DuplicateFilter(None, 0.95)
    duplicates.add(f"What is {word}?")
    assume(normalize(word.upper()) == normalize(word))
    assert duplicates.check(f"  WHAT   is {word.upper()} ") == "duplicate"
    assert duplicates.check(f"what is {word}") == "duplicate"


# --------------------------------------------------------------------------- round trip


def make_chunk(chunk_id: str, text: str) -> Chunk:
    return Chunk(chunk_id=chunk_id, doc_id="d", source="d.txt", text=text, char_start=0, char_end=len(text), n_tokens=0)


def test_round_trip_keeps_questions_that_find_their_chunk():
    chunks = [
        make_chunk("alarm", CHUNK),
        make_chunk("warranty", "The NCX-400 controller hardware is under warranty for 36 months from commissioning."),
        make_chunk("badges", "Reception at Fellside Works issues photo ID badges at 08:45 on your first day."),
    ]
    checker = RoundTripChecker(chunks, top_k=1)
    assert checker.check("How many months of warranty does the controller hardware get?", "warranty") is None
    assert checker.rank("When are photo ID badges issued at reception?", "badges") == 1
    assert checker.check("How many months of warranty does the controller hardware get?", "alarm") == "roundtrip_miss"
    assert checker.check("the and of", "alarm") == "roundtrip_miss"
