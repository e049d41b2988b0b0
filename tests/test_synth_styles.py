"""Query styles: which chunk gets which prompt, in both prompt families, and what lands in pairs.jsonl."""

from __future__ import annotations

import asyncio
import collections
import hashlib
import json
from pathlib import Path

import pytest

from domainfit.artifacts import Pair, RunDir, content_hash, read_jsonl, read_rows, write_jsonl
from domainfit.config import load_config
from domainfit.errors import ConfigError
from domainfit.synth import prompts
from domainfit.synth.filters import DuplicateFilter, check_pair
from domainfit.synth.generate import AnswerChecker, GenerationReport, chunk_key, generate_pairs
from domainfit.synth.llm import Endpoint, LLMClient
from domainfit.synth.schema import question_set_model
from domainfit.synth.store import SynthStore
from domainfit.synth.styles import pick_style, style_shares
from domainfit.config import SynthConfig
from domainfit.testing import SAMPLE_PASSAGES, Answer, OpenAIStub, passage_sentences
from test_synth_llm import FAST, make_chunks

STYLES = ["question", "claim", "keywords"]

# --------------------------------------------------------------------------- which chunk gets which style


def test_style_shares_normalise_the_mix():
    assert style_shares(["question", "claim"], [3, 1]) == [0.75, 0.25]
    assert style_shares(STYLES) == pytest.approx([1 / 3] * 3)


def test_pick_style_is_stable_and_follows_the_mix():
    ids = [f"chunk-{n}" for n in range(3000)]
    picked = [pick_style(chunk_id, STYLES, [2, 1, 0]) for chunk_id in ids]
    assert picked == [pick_style(chunk_id, STYLES, [2, 1, 0]) for chunk_id in ids]
    counts = collections.Counter(picked)
    assert counts["keywords"] == 0
    assert abs(counts["question"] / len(ids) - 2 / 3) < 0.03
    assert {pick_style(chunk_id, ["claim"]) for chunk_id in ids[:50]} == {"claim"}


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"synth.query_styles": ["question", "riddle"]}, "synth.query_styles"),
        ({"synth.query_styles": ["claim", "claim"]}, "twice"),
        ({"synth.query_styles": ["question", "claim"], "synth.query_style_mix": [1.0]}, "1 shares for 2"),
        ({"synth.query_styles": ["question", "claim"], "synth.query_style_mix": [0, 0]}, "not all 0"),
        ({"synth.query_styles": []}, "synth.query_styles"),
    ],
)
def test_bad_style_settings_are_one_line_errors(overrides, message):
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(overrides=overrides, environ={})
    assert "\n" not in str(caught.value)


# --------------------------------------------------------------------------- prompts


PASSAGE = "ZX-TEST\n\nThe pump stops when the inlet pressure drops below two bar."


def test_the_question_prompts_are_the_synth_v1_text():
    """Earlier runs stay comparable (and resumable): the question style's prompts did not change."""
    assert prompts.PROMPT_VERSION == "synth-v1"
    chat = json.dumps(prompts.chat_messages(PASSAGE, 2, "question"))
    assert hashlib.sha256(chat.encode()).hexdigest() == "b433dd0f7e2cac61b44e4b5531e9a5a2f48c96ab6fbd2af62fb99144ed819041"
    completion = prompts.completion_prompt(PASSAGE, 2, "question")
    assert hashlib.sha256(completion.encode()).hexdigest() == "bedffd703c7b27cf97c422a9d27d90aa7c4b46758d6e73376496aa04ad38eb41"
    schema = json.dumps(question_set_model(2).model_json_schema(), sort_keys=True)
    assert hashlib.sha256(schema.encode()).hexdigest() == "e18b7d7e5f54712558b153b0373d7825b7253555a32a1ea28b1e027fc6c70b81"
    assert prompts.chat_messages(PASSAGE, 2) == prompts.chat_messages(PASSAGE, 2, "question")


@pytest.mark.parametrize("style, label", [("claim", "Claim"), ("keywords", "Keywords")])
def test_each_style_has_its_own_prompts_in_both_families(style, label):
    chat = prompts.chat_messages(PASSAGE, 3, style)
    assert chat[0]["content"] != prompts.SYSTEM_PROMPT
    assert chat[1]["content"].startswith(prompts.style_prompt(style).instructions.format(n=3))
    assert chat[1]["content"].endswith(prompts.passage_block(PASSAGE))
    completion = prompts.completion_prompt(PASSAGE, 3, style)
    assert completion.count(f"\n{label}: ") == 6 and "\nQuestion: " not in completion
    assert completion.endswith(prompts.passage_block(PASSAGE) + "\nEvidence:")
    assert set(prompts.style_prompt(style).examples[0][0].split()) == set(prompts.FEW_SHOT_EXAMPLES[0][0].split())


@pytest.mark.parametrize("style", STYLES)
def test_a_completion_in_a_styles_layout_parses_back(style):
    label = prompts.style_prompt(style).label
    items = [("pump inlet pressure limit", "The pump stops when the inlet pressure drops below two bar.")]
    parsed = prompts.parse_completion(prompts.render_completion(items, label), style)
    assert parsed == {"questions": [{"question": items[0][0], "evidence": items[0][1]}]}
    model = question_set_model(2, style)
    assert model.model_validate(parsed).questions[0].question == items[0][0]


def test_the_chat_schemas_name_what_they_ask_for():
    claim_schema = json.dumps(question_set_model(2, "claim").model_json_schema())
    keyword_schema = json.dumps(question_set_model(2, "keywords").model_json_schema())
    assert '"claims"' in claim_schema and '"claim"' in claim_schema and '"question"' not in claim_schema
    assert '"queries"' in keyword_schema and '"keywords"' in keyword_schema
    claims = question_set_model(2, "claim").model_validate(
        {"claims": [{"claim": "Pumps stop below two bar.", "evidence": "The pump stops."}]}
    )
    assert claims.questions[0].question == "Pumps stop below two bar."


def test_unknown_style_names_the_styles_there_are():
    with pytest.raises(ValueError, match="question, claim, keywords"):
        prompts.completion_prompt(PASSAGE, 2, "riddle")


@pytest.mark.parametrize("style", STYLES)
def test_every_styles_examples_are_well_formed_for_that_style(style):
    for passage, items in prompts.style_prompt(style).examples:
        for query, evidence in items:
            reason = check_pair(query, evidence, passage, len(query.split()) + 2, SynthConfig(), style, examples=())
            assert reason in (None, "copy"), (query, reason)


# --------------------------------------------------------------------------- over HTTP


def styled_items(style: str, passage: str) -> list[tuple[str, str]]:
    """What a model that follows each style's prompt writes: distinct queries on the passage's words."""
    items = []
    for sentence in passage_sentences(passage)[:2]:
        words = [word.strip(".,").lower() for word in sentence.split() if len(word) > 5][:4]
        if style == "question":
            query = f"Which rule covers {' and '.join(words)}?"
        elif style == "claim":
            query = f"Site rules cover {' and '.join(words)}."
        else:
            query = " ".join(reversed(words))  # not a run of the sentence's words (copy)
        items.append((query, sentence))
    return items


def style_of_prompt(prompt: str) -> str:
    """The style a request asked for, read off the prompt text that was sent."""
    for style, style_prompt in prompts.STYLE_PROMPTS.items():
        if style_prompt.instructions.split("{n}")[1][:30] in prompt or style_prompt.header in prompt:
            return style
    raise AssertionError("no style's prompt in the request")


def answer_in_style(request):
    return Answer(tuple(styled_items(style_of_prompt(request.prompt), request.passage)))


def completion_in_style(request) -> str:
    return prompts.render_completion(request.items, prompts.style_prompt(style_of_prompt(request.prompt)).label)


def run_generation(stub: OpenAIStub, chunks, run_root: Path, **overrides):
    settings = {"llm.base_url": stub.base_url, "llm.model": "stub", **FAST, **overrides}
    config = load_config(overrides=settings, environ={})
    run = RunDir(run_root).ensure()
    store = SynthStore(run)
    state = store.recover()
    checker = AnswerChecker(
        config.synth, lambda text: len(text.split()), DuplicateFilter(None, 0.95), existing_pair_ids=state.pair_ids
    )
    report = GenerationReport()

    async def main() -> LLMClient:
        async with LLMClient(
            Endpoint.remote(config.llm, stub.base_url, "stub"), config.llm,
            questions_per_chunk=config.synth.questions_per_chunk,
        ) as client:  # fmt: skip
            await generate_pairs(chunks, client, checker, store, config, resume=state, report=report)
            return client

    client = asyncio.run(main())
    rows = [read_jsonl(path) if path.exists() else [] for path in (run.pairs, run.rejected)]
    return config, report, rows[0], rows[1], client


@pytest.mark.parametrize("prompt_style", ["tools", "json", "completion"])
def test_each_chunk_is_asked_in_its_style_and_its_pairs_carry_it(tmp_path, prompt_style):
    chunks = make_chunks(sorted(SAMPLE_PASSAGES))
    with OpenAIStub(answer_in_style, completion_for=completion_in_style) as stub:
        config, report, pairs, rejects, _ = run_generation(
            stub, chunks, tmp_path / "run",
            **{"llm.prompt_style": prompt_style, "synth.query_styles": STYLES, "synth.query_style_mix": [1, 1, 1]},
        )  # fmt: skip
        requests = stub.question_requests()

    expected = {chunk.chunk_id: pick_style(chunk.chunk_id, STYLES, [1, 1, 1]) for chunk in chunks}
    assert len(set(expected.values())) == 3, "the sample should exercise every style"
    key_to_chunk = {stub.key(chunk.text): chunk.chunk_id for chunk in chunks}
    assert len(requests) == len(chunks)
    for request in requests:
        assert style_of_prompt(request.prompt) == expected[key_to_chunk[request.key]]
    assert rejects == []
    assert len(pairs) == 2 * len(chunks)
    for row in pairs:
        assert row["style"] == expected[row["chunk_id"]]
        assert row["query"].endswith("?") == (row["style"] == "question")
    assert report.pairs_by_style == collections.Counter(row["style"] for row in pairs)


def test_a_claim_written_as_a_question_is_rejected_with_its_style(tmp_path):
    chunks = make_chunks(["ZX-TURBINE"])
    evidence = passage_sentences(SAMPLE_PASSAGES["ZX-TURBINE"])[0]
    script = {"ZX-TURBINE": [Answer((("Must turbines be locked out before inspection?", evidence),
                                     ("Turbines are locked out before a runner inspection.", evidence)))]}  # fmt: skip
    with OpenAIStub(script) as stub:
        _, report, pairs, rejects, _ = run_generation(stub, chunks, tmp_path / "run", **{"synth.query_styles": ["claim"]})
    assert [(row["reason"], row["style"]) for row in rejects] == [("wrong_style", "claim")]
    assert [(row["query"], row["style"]) for row in pairs] == [
        ("Turbines are locked out before a runner inspection.", "claim")
    ]
    assert report.rejects == {"wrong_style": 1}


def test_question_runs_resume_with_the_keys_from_before_styles(tmp_path):
    """A chunk finished before styles existed is not asked again by the default (question) run."""
    chunks = make_chunks(["ZX-TURBINE", "ZX-TRAVEL"])
    with OpenAIStub(answer_in_style, completion_for=completion_in_style) as stub:
        config = load_config(overrides={"llm.base_url": stub.base_url, "llm.model": "stub"}, environ={})
        client = LLMClient(Endpoint.remote(config.llm, stub.base_url, "stub"), config.llm, questions_per_chunk=2)
        endpoint = client.endpoint
        before_styles = content_hash(
            chunks[0].chunk_id, prompts.PROMPT_VERSION, "stub", endpoint.style.value, repr(endpoint.temperature), "2",
            str(endpoint.max_tokens),
        )  # fmt: skip
        asyncio.run(client.aclose())
        assert chunk_key(chunks[0].chunk_id, client) == before_styles
        assert chunk_key(chunks[0].chunk_id, client, "claim") != before_styles
        run = RunDir(tmp_path / "run").ensure()
        old_row = {"pair_id": "old", "chunk_id": chunks[0].chunk_id, "query": "Who locks out the turbine?"}
        run.pairs.write_text(json.dumps(old_row) + "\n")
        run.synth_state.write_text(json.dumps({
            "key": before_styles, "chunk_id": chunks[0].chunk_id, "done": True, "pairs": 1, "rejects": 0,
            "pairs_bytes": run.pairs.stat().st_size, "rejects_bytes": 0,
        }) + "\n")  # fmt: skip
        _, report, pairs, _, _ = run_generation(stub, chunks, tmp_path / "run")
        assert report.already_done == 1 and stub.keys() == {"ZX-TRAVEL"}
    assert pairs[0] == old_row  # the old row is kept as it was written
    assert [pair.style for pair in read_rows(run.pairs, Pair)] == ["question"] * len(pairs)


def test_pairs_written_before_styles_read_as_questions(tmp_path):
    path = tmp_path / "pairs.jsonl"
    write_jsonl(path, [{"pair_id": "p", "chunk_id": "c", "query": "Who approves travel?"}])
    (pair,) = read_rows(path, Pair)
    assert pair.style == "question"
    assert Pair(pair_id="p", chunk_id="c", query="travel approval", style="keywords").style == "keywords"
