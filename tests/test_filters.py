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
from domainfit.synth.prompts import example_queries
from domainfit.synth.filters import (
    REASONS,
    DuplicateFilter,
    RoundTripChecker,
    check_grounded,
    check_not_copy,
    check_not_prompt_example,
    check_pair,
    check_self_contained,
    check_well_formed,
    content_words,
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


@pytest.mark.parametrize(
    "query, style, reason",
    [
        ("Contractor passes stay valid for twelve months.", "claim", None),
        ("Is a contractor pass valid for a year?", "claim", "wrong_style"),
        ("contractor pass validity period", "keywords", None),
        ("contractor pass validity?", "keywords", "wrong_style"),
        ("how long is a contractor pass valid and who issues it and what does it cost to renew", "keywords",
         "wrong_style"),
        ("1234 5678 90", "claim", "wrong_style"),
        ("contractor pass validity period", "question", "not_a_question"),
        ("Here are the claims: passes last a year.", "claim", "preamble"),
    ],
)
def test_check_well_formed_asks_each_style_for_its_own_form(query, style, reason):
    assert check_well_formed(query, 8, 4, 64, style) == reason


def test_every_reason_code_is_listed():
    assert {"empty", "placeholder", "preamble", "too_short", "too_long", "not_a_question", "wrong_style",
            "prompt_example", "missing_evidence", "ungrounded", "copy", "not_self_contained", "duplicate",
            "near_duplicate", "roundtrip_miss"} == set(REASONS)


# --------------------------------------------------------------------------- self-contained


@pytest.mark.parametrize(
    "question",
    [
        "What is the purpose of this study?",
        "What are the implications of these results?",
        "Why does this mutation occur?",
        "Is this normal?",
        "How does this compare to earlier designs?",
        "How were these measurements obtained?",
        "How does that approach differ from earlier ones?",
        "What did the authors find about the lift coefficient?",
        "What conclusions do the investigators draw?",
        "What did the researchers measure?",
        "What do the results show?",
        "What were the findings?",
        "What is the study about?",
        "What did the experiments show?",
        "What limitations does the study have?",
        "What was the main conclusion of the study?",
        "What is the main finding of the paper?",
        "What is the paper's main contribution?",
        "What is the main topic of the article?",
        "What does the text say about shock waves?",
        "According to the passage, what causes transition?",
        "In the text, which alloy is tested?",
        "What method does the present study use?",
        "What model was used in the current study?",
        "What does the proposed method improve?",
        "What is described in the above text?",
        "Which technique was described above?",
        "Which parameters are discussed in the aforementioned experiment?",
        # claims point at the passage the same way
        "This study shows that heparin reduces clotting.",
        "These results suggest a role for p53 in apoptosis.",
        "The authors propose a new turbulence model.",
    ],
)
def test_questions_that_point_at_the_passage_are_not_self_contained(question):
    assert check_self_contained(question) == "not_self_contained"


@pytest.mark.parametrize(
    "question",
    [
        "What is the boundary-layer transition Reynolds number on a flat plate?",
        "How does shock wave angle depend on Mach number?",
        "What causes flutter in swept wings at transonic speeds?",
        "What is the effect of sweep on the drag of a wing at supersonic speeds?",
        "What happens above the critical Mach number?",
        "How long is the turbine warranty?",
        "Does a visitor need an escort in the workshop?",
        "Who reviews expense claims without receipts?",
        "How often are noise surveys repeated in the turbine hall?",
        # the nouns the check looks for, followed by what names them
        "What were the results of the Framingham heart study?",
        "What is the study of boundary layers called?",
        "Who are the authors of the Federalist Papers?",
        "Which text encoding does git use by default?",
        "How is the passage of a bill through parliament delayed?",
        "What is the model number of the NCX-400 controller?",
        "What are the methods for water purification?",
        "How is the data encrypted at rest?",
        "How does the immune system respond to a viral infection?",
        "What is the current system of income taxation in Norway?",
        "What is the present value of an annuity?",
        "What is the current flowing through a superconducting coil?",
        "What was the former name of the Soviet space agency?",
        # time words after "this", "that" as a conjunction, and "this/these" pointing back into the question
        "What happened to the economy this year?",
        "Compressive stresses in a torispherical shell: which shell parameters make these stresses cause buckling?",
        "How much were Kroger's capital expenditures in 2023, and how does this compare to 2022?",
        "How many people did Kroger employ in 2023, and how many of these work in stores?",
        "Which drugs that inhibit kinase activity are approved?",
        "Laminar flow turns turbulent at Reynolds numbers near 500,000.",
        "heat transfer to a blunt body in hypersonic flow",
    ],
)
def test_questions_that_name_their_subject_are_self_contained(question):
    assert check_self_contained(question) is None


# --------------------------------------------------------------------------- not a prompt example


def test_content_words_drop_function_words_and_case():
    assert content_words("How long is a Contractor pass valid?") == {"long", "contractor", "pass", "valid"}
    assert content_words("What is it?") == frozenset()


@pytest.mark.parametrize(
    "question",
    [
        "How long is a contractor pass valid?",
        "  how long is a CONTRACTOR pass valid ",
        "How long is the contractor pass valid for?",
        "What does fault code E17 indicate on a pump controller?",
        "Does a visitor need an escort in the workshop?",
        "How many unused leave days can I carry into the next year?",
    ],
)
def test_copies_of_the_few_shot_examples_are_rejected(question):
    assert check_not_prompt_example(question, example_queries()) == "prompt_example"


@pytest.mark.parametrize(
    "question",
    [
        "How long is a visitor badge valid?",
        "Does a contractor need an escort on the roof?",
        "What does fault E415 on the NCX-400 controller mean?",
        "How many unused holiday days roll over under the Fellside leave policy?",
        "What is the boundary-layer transition Reynolds number on a flat plate?",
    ],
)
def test_questions_that_share_a_few_words_with_an_example_pass(question):
    assert check_not_prompt_example(question, example_queries()) is None


def test_an_example_with_the_chunks_name_swapped_in_is_rejected_when_its_words_are_not_the_chunks():
    overspeed = "The NCX-400 is not the last line of defence against overspeed; the mechanical brake is."
    question = "What does fault E17 on the NCX-400 indicate?"  # 3 of 5 content words from the example
    assert check_not_prompt_example(question, example_queries()) is None
    assert check_not_prompt_example(question, example_queries(), overspeed) == "prompt_example"
    # the same share of words is fine when the chunk itself is about them
    faults = "Fault E17 on the NCX-400 indicates a blocked intake screen."
    assert check_not_prompt_example(question, example_queries(), faults) is None
    assert check_pair(question, "The NCX-400 is not the last line of defence", overspeed, 10, SynthConfig()) == (
        "prompt_example"
    )


def test_every_few_shot_example_is_caught_by_the_default_list():
    from domainfit.synth.prompts import STYLE_PROMPTS

    for style, prompt in STYLE_PROMPTS.items():
        for _passage, items in prompt.examples:
            for example, _evidence in items:
                assert check_pair(example, "x", example, 8, SynthConfig(), style) == "prompt_example", example


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
        # a prompt example is caught before grounding; pointing at the passage after copying
        ("How long is a contractor pass valid?", "invented", 8, "prompt_example"),
        ("What should an operator do when this alarm appears?", "Clean the intake screen", 10, "not_self_contained"),
        ("Should this operator clean the intake screen, then acknowledge the alarm?", "Clean the intake screen", 12,
         "copy"),
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
    assert checker.check("How many months of warranty does the controller hardware get?", "unknown") == "roundtrip_miss"


def test_round_trip_top_k_sets_how_far_down_the_chunk_may_rank():
    chunks = [make_chunk(f"c{n}", f"Pump {n} needs its inlet filter cleaned every {n} weeks.") for n in range(5)]
    chunks.append(make_chunk("target", "The spare pump's inlet filter is cleaned monthly by the contractor during "
                                       "the routine site inspection, which also covers valves, gauges and lights."))
    question = "How often is the pump inlet filter cleaned?"
    rank = RoundTripChecker(chunks, top_k=6).rank(question, "target")
    assert rank is not None and rank > 1
    assert RoundTripChecker(chunks, top_k=rank).check(question, "target") is None
    assert RoundTripChecker(chunks, top_k=rank - 1).check(question, "target") == "roundtrip_miss"


def test_a_chunk_with_the_same_text_counts_as_the_questions_own():
    text = "Reception issues photo ID badges at 08:45 on your first day."
    chunks = [make_chunk("copy-a", text), make_chunk("copy-b", "  " + text.upper()), make_chunk("other", CHUNK)]
    checker = RoundTripChecker(chunks, top_k=1)
    assert checker.rank("When does reception hand out photo ID badges?", "copy-b") == 1
    assert checker.rank("When does reception hand out photo ID badges?", "other") is None


def test_round_trip_by_the_base_model_finds_paraphrases_bm25_misses():
    from domainfit.models import load_model

    model = load_model("minilm")
    chunks = [
        make_chunk("alarm", CHUNK),
        make_chunk("warranty", "The NCX-400 controller hardware is under warranty for 36 months from commissioning."),
        make_chunk("badges", "Reception at Fellside Works issues photo ID badges at 08:45 on your first day."),
        make_chunk("canteen", "The canteen serves hot lunches between noon and two o'clock on weekdays."),
    ]
    question = "For how long is new equipment covered against defects?"  # no word in common
    assert RoundTripChecker(chunks, top_k=1).check(question, "warranty") == "roundtrip_miss"
    by_model = RoundTripChecker(chunks, top_k=1, encode=model.encode)
    assert by_model.rank(question, "warranty") == 1
    assert by_model.check("When may I eat a warm meal at work?", "canteen") is None
    assert by_model.check("When may I eat a warm meal at work?", "badges") == "roundtrip_miss"
