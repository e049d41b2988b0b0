"""synth's LLM half against a scripted OpenAI-protocol server over real HTTP.

Every test drives the real ``openai`` client (and instructor) at ``domainfit/testing.py``
and checks what lands in ``pairs.jsonl`` / ``rejected.jsonl`` / ``synth_done.jsonl``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from domainfit.artifacts import Chunk, RunDir, content_hash, read_chunks, read_json, read_jsonl
from domainfit.config import load_config
from domainfit.errors import LLMError
from domainfit.synth import prompts
from domainfit.synth.filters import DuplicateFilter
from domainfit.synth.generate import AnswerChecker, GenerationReport, generate_pairs
from domainfit.synth.llm import Endpoint, LLMClient, open_endpoint
from domainfit.synth.local_server import free_port
from domainfit.synth.retry import MinuteLimiter, RetryPolicy, retry_after_seconds
from domainfit.synth.schema import QuestionSet, question_set_model
from domainfit.synth.store import SynthStore
from domainfit.testing import (
    SAMPLE_PASSAGES,
    Answer,
    Copied,
    Drop,
    DuplicateQuestions,
    Good,
    Hang,
    Malformed,
    OpenAIStub,
    RateLimited,
    ServerError,
    Ungrounded,
    good_items,
)

ROOT = Path(__file__).resolve().parents[1]
FAST = {"llm.retry_initial_delay_s": 0.01, "llm.retry_max_delay_s": 0.5, "llm.timeout_s": 5.0}


def make_chunks(keys: list[str]) -> list[Chunk]:
    chunks = []
    for key in keys:
        text = f"{key}\n\n{SAMPLE_PASSAGES[key]}"
        chunks.append(
            Chunk(
                chunk_id=content_hash(key, text),
                doc_id=key.lower(),
                source=f"{key.lower()}.txt",
                text=text,
                char_start=0,
                char_end=len(text),
                n_tokens=len(text.split()),
            )
        )
    return chunks


def generate(
    stub: OpenAIStub,
    chunks: list[Chunk],
    run_root: Path,
    *,
    encode=None,
    **overrides,
) -> tuple[GenerationReport, list[dict], list[dict], LLMClient]:
    """One generate_pairs call against the stub: (report, pair rows, reject rows, client)."""
    settings = {"llm.base_url": stub.base_url, "llm.model": "stub", **FAST, **overrides}
    config = load_config(overrides=settings, environ={})
    run = RunDir(run_root).ensure()
    store = SynthStore(run)
    state = store.recover()
    duplicates = DuplicateFilter(encode, config.synth.near_duplicate_cosine)
    duplicates.add_many(state.queries)
    checker = AnswerChecker(config.synth, lambda text: len(text.split()), duplicates, existing_pair_ids=state.pair_ids)
    report = GenerationReport()

    async def main() -> LLMClient:
        async with LLMClient(
            Endpoint.remote(config.llm, stub.base_url, "stub"),
            config.llm,
            questions_per_chunk=config.synth.questions_per_chunk,
        ) as client:
            await generate_pairs(chunks, client, checker, store, config, resume=state, report=report)
            return client

    client = asyncio.run(main())
    pairs = read_jsonl(run.pairs) if run.pairs.exists() else []
    rejects = read_jsonl(run.rejected) if run.rejected.exists() else []
    return report, pairs, rejects, client


def by_chunk(rows: list[dict], chunk: Chunk) -> list[dict]:
    return [row for row in rows if row["chunk_id"] == chunk.chunk_id]


@pytest.fixture
def stub_factory():
    started: list[OpenAIStub] = []

    def start(script=None, **options) -> OpenAIStub:
        stub = OpenAIStub(script, completion_renderer=prompts.render_completion, **options).start()
        started.append(stub)
        return stub

    yield start
    for stub in started:
        stub.stop()


# --------------------------------------------------------------------------- good answers, every mode


@pytest.mark.parametrize("style", ["tools", "json", "completion"])
def test_good_answers_become_pairs_in_every_prompt_style(stub_factory, tmp_path, style):
    stub = stub_factory()
    chunks = make_chunks(["ZX-TURBINE", "ZX-TRAVEL", "ZX-WARRANTY"])
    report, pairs, rejects, _ = generate(stub, chunks, tmp_path / "run", **{"llm.prompt_style": style})

    assert rejects == []
    for chunk in chunks:
        expected = [question for question, _ in good_items(chunk.text, 2)]
        assert [row["query"] for row in by_chunk(pairs, chunk)] == expected
    first = pairs[0]
    assert first["generator"] == {"model": "stub", "prompt_version": prompts.PROMPT_VERSION, "prompt_style": style}
    assert first["checks"]["grounding"] == 1.0 and first["checks"]["copy_overlap"] == 0.0
    assert first["evidence"] in next(c.text for c in chunks if c.chunk_id == first["chunk_id"])
    done = read_jsonl(tmp_path / "run" / "synth_done.jsonl")
    assert sorted(row["chunk_id"] for row in done if row["done"]) == sorted(c.chunk_id for c in chunks)
    assert report.pairs == 6 and report.chunks_done == 3
    assert {r.path.rsplit("/v1", 1)[1] for r in stub.question_requests()} == {
        "/completions" if style == "completion" else "/chat/completions"
    }


# --------------------------------------------------------------------------- bad answers


@pytest.mark.parametrize("style", ["tools", "completion"])
def test_malformed_answer_is_reasked_then_rejected_with_its_raw_text(stub_factory, tmp_path, style):
    stub = stub_factory({"ZX-TURBINE": [Malformed(), Malformed()], "ZX-TRAVEL": [Malformed(), Good()]})
    chunks = make_chunks(["ZX-TURBINE", "ZX-TRAVEL"])
    report, pairs, rejects, client = generate(
        stub, chunks, tmp_path / "run", **{"llm.prompt_style": style, "llm.max_reasks": 1}
    )

    turbine, travel = chunks
    assert stub.count("ZX-TURBINE") == 2 and stub.count("ZX-TRAVEL") == 2  # one re-ask each
    [reject] = by_chunk(rejects, turbine)
    assert reject["reason"].startswith("invalid_output")
    assert reject["query"] is None
    assert reject["raw"] == ('{"questions": [{"question": "unterminated' if style == "tools" else "I am not sure what you mean.")
    assert len(by_chunk(pairs, travel)) == 2 and by_chunk(rejects, travel) == []
    assert client.usage.reasks == 2 and report.rejects == {"invalid_output": 1}
    assert report.chunks_done == 2  # a bad answer is final: the chunk is done


def test_ungrounded_copied_and_duplicate_questions_are_rejected_one_by_one(stub_factory, tmp_path):
    stub = stub_factory(
        {"ZX-TURBINE": [Ungrounded()], "ZX-TRAVEL": [Copied()], "ZX-WARRANTY": [DuplicateQuestions()]}
    )
    chunks = make_chunks(["ZX-TURBINE", "ZX-TRAVEL", "ZX-WARRANTY"])
    report, pairs, rejects, _ = generate(stub, chunks, tmp_path / "run", **{"llm.max_concurrency": 1})
    turbine, travel, warranty = chunks

    [ungrounded] = by_chunk(rejects, turbine)
    assert ungrounded["reason"] == "ungrounded"
    assert ungrounded["query"] == "Which colour is the moon in this region?"
    assert json.loads(ungrounded["raw"])["evidence"] == "The moon is made of green cheese."
    assert by_chunk(pairs, turbine) == []

    [copied] = by_chunk(rejects, travel)
    assert copied["reason"] == "copy" and copied["query"].startswith("ZX-TRAVEL Rail tickets costing")
    assert [row["query"] for row in by_chunk(pairs, travel)] == [good_items(travel.text, 1)[0][0]]

    [duplicate] = by_chunk(rejects, warranty)
    assert duplicate["reason"] == "duplicate"
    assert [row["query"] for row in by_chunk(pairs, warranty)] == [duplicate["query"]]
    assert report.rejects == {"ungrounded": 1, "copy": 1, "duplicate": 1}


def test_duplicates_across_chunks_and_near_duplicates_use_the_embedding(stub_factory, tmp_path):
    from domainfit.models import load_model

    model = load_model("minilm")
    encode = lambda texts: model.encode(texts, normalize_embeddings=True)  # noqa: E731
    turbine_text = SAMPLE_PASSAGES["ZX-TURBINE"]
    first = ("How is the turbine runner inspection permit recorded?", turbine_text.split(". ")[1])
    stub = stub_factory(
        {
            "ZX-TURBINE": [Answer((first,))],
            # the same question for another chunk, grounded there too
            "ZX-TRAVEL": [Answer(((first[0], SAMPLE_PASSAGES["ZX-TRAVEL"].split(". ")[1]),))],
            "ZX-WARRANTY": [
                Answer(
                    (
                        ("How long is the warranty on a controller?", "Every controller ships with a thirty-six month warranty starting on the delivery date."),
                        ("How long is the warranty on the controller?", "Every controller ships with a thirty-six month warranty starting on the delivery date."),
                    )
                )
            ],
        }
    )
    chunks = make_chunks(["ZX-TURBINE", "ZX-TRAVEL", "ZX-WARRANTY"])
    _, pairs, rejects, _ = generate(stub, chunks, tmp_path / "run", encode=encode, **{"llm.max_concurrency": 1})
    turbine, travel, warranty = chunks

    assert [row["query"] for row in by_chunk(pairs, turbine)] == [first[0]]
    assert [row["reason"] for row in by_chunk(rejects, travel)] == ["duplicate"]
    assert [row["query"] for row in by_chunk(pairs, warranty)] == ["How long is the warranty on a controller?"]
    assert [(row["reason"], row["query"]) for row in by_chunk(rejects, warranty)] == [
        ("near_duplicate", "How long is the warranty on the controller?")
    ]


# --------------------------------------------------------------------------- transient failures


@pytest.mark.parametrize("header", ["retry-after", "retry-after-ms"])
def test_429_waits_as_long_as_retry_after_says(stub_factory, tmp_path, header):
    stub = stub_factory({"ZX-TURBINE": [RateLimited(0.4, header=header), Good()]})
    started = time.perf_counter()
    report, pairs, rejects, client = generate(stub, make_chunks(["ZX-TURBINE"]), tmp_path / "run")

    assert time.perf_counter() - started >= 0.4
    assert [r.status for r in stub.question_requests()] == [429, 200]
    assert len(pairs) == 2 and rejects == []
    assert client.usage.requests == 2 and client.usage.retries == 1


@pytest.mark.parametrize("fault", [ServerError(500), ServerError(503), Hang(3.0), Drop()], ids=["500", "503", "hang", "drop"])
def test_server_errors_timeouts_and_dropped_connections_are_retried(stub_factory, tmp_path, fault):
    stub = stub_factory({"ZX-TURBINE": [fault, Good()]})
    report, pairs, rejects, client = generate(stub, make_chunks(["ZX-TURBINE"]), tmp_path / "run", **{"llm.timeout_s": 1.0})

    assert stub.count("ZX-TURBINE") == 2
    assert len(pairs) == 2 and rejects == []
    assert client.usage.retries == 1 and report.chunks_done == 1


def test_a_chunk_that_keeps_failing_gets_an_llm_error_reject_and_the_run_goes_on(stub_factory, tmp_path):
    stub = stub_factory({"ZX-TURBINE": [ServerError(500)] * 3})
    chunks = make_chunks(["ZX-TURBINE", "ZX-TRAVEL"])
    report, pairs, rejects, _ = generate(stub, chunks, tmp_path / "run", **{"llm.max_retries": 2})

    assert stub.count("ZX-TURBINE") == 3  # first try + 2 retries
    [reject] = by_chunk(rejects, chunks[0])
    assert reject["reason"] == "llm_error: HTTP 500 after 3 attempt(s)"
    assert len(by_chunk(pairs, chunks[1])) == 2
    done = {row["chunk_id"]: row["done"] for row in read_jsonl(tmp_path / "run" / "synth_done.jsonl")}
    assert done == {chunks[0].chunk_id: False, chunks[1].chunk_id: True}  # asked again next run
    assert report.chunks_failed == 1 and report.rejects == {"llm_error": 1}

    # the next run asks only the failed chunk again, and now it succeeds
    _, pairs, _, _ = generate(stub, chunks, tmp_path / "run")
    assert stub.count("ZX-TURBINE") == 4 and stub.count("ZX-TRAVEL") == 1
    assert len(by_chunk(pairs, chunks[0])) == 2


def test_tokens_are_counted_per_attempt_including_retries_and_reasks(stub_factory, tmp_path):
    stub = stub_factory({"ZX-TURBINE": [RateLimited(0.01), Malformed(), Good()], "ZX-TRAVEL": [ServerError(), Good()]})
    report, _, _, client = generate(stub, make_chunks(["ZX-TURBINE", "ZX-TRAVEL"]), tmp_path / "run")

    prompt_tokens, completion_tokens = stub.usage_reported()
    assert (report.usage.prompt_tokens, report.usage.completion_tokens) == (prompt_tokens, completion_tokens)
    assert report.usage.requests == len(stub.question_requests()) == 5
    assert (report.usage.retries, report.usage.reasks) == (2, 1)
    assert report.failed_attempts == {"HTTP 429": 1, "HTTP 500": 1}  # why the two retries, for the manifest
    answered = [r for r in stub.question_requests() if r.status == 200]
    assert len(answered) == 3 and prompt_tokens == sum(r.prompt_tokens for r in answered) > 0


# --------------------------------------------------------------------------- fatal errors, budget, judge, concurrency


def test_unreachable_endpoint_fails_fast_naming_the_url(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/v1"
    config = load_config(overrides={"llm.base_url": url, "llm.model": "m", **FAST, "llm.max_retries": 5}, environ={})
    chunks = make_chunks(list(SAMPLE_PASSAGES)[:6])
    checker = AnswerChecker(config.synth, lambda t: len(t.split()), DuplicateFilter(None, 0.95))

    async def main() -> None:
        async with LLMClient(Endpoint.remote(config.llm, url, "m"), config.llm, questions_per_chunk=2) as client:
            await generate_pairs(chunks, client, checker, SynthStore(RunDir(tmp_path).ensure()), config)

    started = time.perf_counter()
    with pytest.raises(LLMError, match=f"cannot reach the LLM at {url}: connection refused"):
        asyncio.run(main())
    assert time.perf_counter() - started < 5
    assert all(not row["done"] for row in read_jsonl(tmp_path / "synth_done.jsonl"))


@pytest.mark.parametrize("style", ["tools", "json", "completion"])
def test_the_api_key_reaches_the_endpoint_as_a_bearer_token(stub_factory, tmp_path, style):
    stub = stub_factory()
    generate(stub, make_chunks(["ZX-TURBINE"]), tmp_path / "run", **{"llm.prompt_style": style, "llm.api_key": "sk-test-1"})
    sent = {request.authorization for request in stub.question_requests()}
    assert sent == {"Bearer sk-test-1"}


def test_a_rejected_api_key_stops_the_run_with_one_line(stub_factory, tmp_path):
    stub = stub_factory(default=ServerError(401))
    with pytest.raises(LLMError, match=r"rejected the API key \(HTTP 401\)"):
        generate(stub, make_chunks(["ZX-TURBINE"]), tmp_path / "run")
    assert stub.count("ZX-TURBINE") == 1  # never retried


def test_token_budget_stops_cleanly_and_a_rerun_continues(stub_factory, tmp_path):
    stub = stub_factory()
    chunks = make_chunks(list(SAMPLE_PASSAGES)[:8])
    report, pairs, _, _ = generate(stub, chunks, tmp_path / "run", **{"synth.token_budget": 300, "llm.max_concurrency": 1})

    assert report.stopped == "token_budget"
    assert 0 < report.chunks_done < len(chunks)
    assert report.usage.total_tokens >= 300
    assert len(pairs) == 2 * report.chunks_done

    report2, pairs, rejects, _ = generate(stub, chunks, tmp_path / "run")
    assert report2.already_done == report.chunks_done and report2.stopped is None
    assert len(pairs) == 2 * len(chunks) == len({row["pair_id"] for row in pairs})
    assert rejects == [] and all(stub.count(key) == 1 for key in list(SAMPLE_PASSAGES)[:8])


@pytest.mark.parametrize("score, kept", [(5, True), (2, False)])
def test_llm_judge_keeps_only_well_scored_pairs(stub_factory, tmp_path, score, kept):
    stub = stub_factory(judge_score=score)
    _, pairs, rejects, _ = generate(stub, make_chunks(["ZX-TURBINE"]), tmp_path / "run", **{"synth.judge": True})

    assert len([r for r in stub.requests if r.kind == "judge"]) == 2
    if kept:
        assert [row["checks"]["judge_score"] for row in pairs] == [5, 5] and rejects == []
    else:
        assert pairs == [] and [row["reason"] for row in rejects] == ["judge_low_score"] * 2


def test_requests_in_flight_never_exceed_max_concurrency(stub_factory, tmp_path):
    stub = stub_factory(latency_s=0.15)
    chunks = make_chunks(list(SAMPLE_PASSAGES)[:12])
    started = time.perf_counter()
    report, pairs, _, _ = generate(stub, chunks, tmp_path / "run", **{"llm.max_concurrency": 4})

    assert stub.max_in_flight == 4
    assert len(pairs) == 24
    assert time.perf_counter() - started < 12 * 0.15  # faster than one at a time


# --------------------------------------------------------------------------- pure parts


def test_question_set_validates_structure_and_its_size_bound():
    item = {"question": "Who approves travel?", "evidence": "Managers approve travel."}
    bounded = question_set_model(2)
    assert bounded.__name__ == "QuestionSet" and issubclass(bounded, QuestionSet)
    assert len(bounded.model_validate({"questions": [item] * 4}).questions) == 4
    with pytest.raises(ValidationError, match="at most 4"):
        bounded.model_validate({"questions": [item] * 5})
    with pytest.raises(ValidationError, match="at least one"):
        bounded.model_validate({"questions": []})
    with pytest.raises(ValidationError, match="evidence must not be empty"):
        QuestionSet.model_validate({"questions": [{"question": "Why?", "evidence": "  "}]})


def test_completion_answers_are_parsed_leniently():
    text = " Managers approve travel.\nQuestion: Who approves travel?\n\n2. evidence: Receipts are kept\nfor six years.\nQ: How long are receipts kept?\nEvidence: cut off"
    assert prompts.parse_completion(text) == {
        "questions": [
            {"question": "Who approves travel?", "evidence": "Managers approve travel."},
            {"question": "How long are receipts kept?", "evidence": "Receipts are kept for six years."},
        ]
    }
    assert prompts.parse_completion("Question: Q1?\nEvidence: E1\n<end>\nQuestion: ignored?") == {"questions": []}
    rendered = prompts.render_completion([("Who approves travel?", "Managers approve travel.")])
    assert prompts.completion_prompt("Text.", 2).endswith("</passage>\nEvidence:")
    assert prompts.parse_completion(rendered)["questions"] == [
        {"question": "Who approves travel?", "evidence": "Managers approve travel."}
    ]


def test_retry_after_and_backoff():
    class Response:
        def __init__(self, headers):
            self.headers = headers

    class Failed(Exception):
        def __init__(self, headers):
            self.response = Response(headers)

    assert retry_after_seconds(Failed({"retry-after-ms": "250"})) == 0.25
    assert retry_after_seconds(Failed({"retry-after": "2"})) == 2.0
    assert 8 < retry_after_seconds(Failed({"retry-after": time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 10))})) <= 10
    assert retry_after_seconds(Failed({})) is None
    policy = RetryPolicy(max_retries=5, initial_delay_s=0.5, max_delay_s=4)
    assert all(0 <= policy.backoff(n) <= min(4, 0.5 * 2**n) for n in range(8) for _ in range(20))
    assert 4 <= policy.backoff(0, retry_after=60) <= 4.4


def test_minute_limiter_paces_requests():
    async def main() -> float:
        limiter = MinuteLimiter(2, window_s=0.3)
        started = time.perf_counter()
        for _ in range(3):
            await limiter.acquire()
        return time.perf_counter() - started

    assert asyncio.run(main()) >= 0.29


# --------------------------------------------------------------------------- the stage and the CLI


@pytest.mark.slow  # a subprocess that loads the base model: ~15-50 s
def test_cli_synth_on_the_sample_folder_against_an_openai_compatible_server(stub_factory, tmp_path):
    docs = tmp_path / "docs"
    shutil.copytree(ROOT / "data" / "sample", docs)
    (docs / "notes.xyz").write_text("unknown format")
    stub = stub_factory(lambda request: Ungrounded() if request.index == 0 else None)
    run = tmp_path / "run"
    secret = "sk-test-0123456789abcdef"
    env = {**os.environ, "OPENAI_API_KEY": secret, "HF_HUB_OFFLINE": "1"}
    command = [
        sys.executable, "-m", "domainfit.cli", "synth", str(docs), "--out", str(run),
        "--llm-base-url", stub.base_url, "--llm-model", "stub", "--max-chunks", "12", "--no-progress",
    ]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr

    pairs, rejects = read_jsonl(run / "pairs.jsonl"), read_jsonl(run / "rejected.jsonl")
    chunk_ids = {chunk.chunk_id for chunk in read_chunks(run / "chunks.parquet")}
    assert len(pairs) >= 12 and {row["chunk_id"] for row in pairs} <= chunk_ids
    assert "ungrounded" in [row["reason"] for row in rejects]
    assert len(stub.question_requests()) == 12 and len(stub.keys()) == 12
    assert f"pairs: {len(pairs)} accepted ({len(pairs)} in pairs.jsonl); rejected: {len(rejects)}" in done.stdout
    assert "notes.xyz" in done.stdout and "chunks done: 12/12" in done.stdout
    manifest = read_json(run / "manifest.json")
    stage = manifest["stages"]["synth"]
    assert stage["status"] == "done" and stage["details"]["skipped"]["notes.xyz"]
    assert stage["counts"]["pairs_accepted"] == len(pairs) and sum(stage["counts"]["rejects"].values()) == len(rejects)
    retried = sum(stage["counts"]["failed_attempts"].values())  # attempts lost on the way (a loaded machine) are retried
    assert 12 <= stage["counts"]["requests"] <= 12 + retried and stage["counts"]["prompt_tokens"] == stub.usage_reported()[0]
    everything = (run / "manifest.json").read_text() + done.stdout + done.stderr
    assert secret not in everything and secret[4:-4] not in everything


def test_endpoint_without_a_model_uses_the_only_one_it_serves(stub_factory):
    stub = stub_factory(model="served-model")
    config = load_config(overrides={"llm.base_url": stub.base_url}, environ={})
    with open_endpoint(config.llm) as endpoint:
        assert (endpoint.model, endpoint.style.value, endpoint.local) == ("served-model", "tools", False)


def test_chunk_text_with_template_syntax_reaches_the_llm_verbatim(stub_factory, tmp_path):
    text = "ZX-BRACES\n\nThe mail merge template prints {{ customer.name }} at the top of every letter. " \
        "Conditional blocks such as {% if overdue %} mark the reminder paragraph for late payers."
    chunk = Chunk(chunk_id="braces", doc_id="d", source="d.txt", text=text, char_start=0, char_end=len(text),
                  n_tokens=len(text.split()))  # fmt: skip
    stub = stub_factory()
    _, pairs, rejects, _ = generate(stub, [chunk], tmp_path / "run")

    [request] = stub.question_requests()
    assert request.passage == text
    assert len(pairs) == 2 and rejects == []


def test_a_client_that_resets_mid_request_leaves_stderr_quiet(capsys):
    """An aborted synth closes its sockets; the stub must not print a traceback over the CLI's one line."""
    import socket
    import struct

    with OpenAIStub() as stub:
        host, port = stub.url.removeprefix("http://").split(":")
        for _ in range(5):
            sock = socket.create_connection((host, int(port)))
            sock.sendall(b"POST /v1/completions HTTP/1.1\r\nContent-Length: 100\r\n")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
            sock.close()
        time.sleep(0.3)
    assert capsys.readouterr().err == ""
